"""Restore: stream a dump from S3 into ``pg_restore`` on a fresh database, verify, then swap it in.

Order of events, so that a failed, tampered or interrupted restore leaves the previous data intact:

1. refuse a target of kind ``production`` (before any connection);
2. check the object's size, take a per-database advisory lock, drop leftovers of a crashed restore;
3. create ``<db>__restore_<id>`` and stream the object into ``pg_restore --exit-on-error``, hashing it;
4. only if pg_restore succeeded, SHA-256 and size match, and tables/rows match the manifest:
   block new connections to ``<db>``, terminate the ones left, rename ``<db>`` to ``<db>__old_<id>``
   and the new one to ``<db>`` in one transaction, drop the old one;
5. on any failure the temporary database is dropped and ``<db>`` is untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass
from os import PathLike
from typing import Any

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection as PgConnection

from baseline_guard.backup.codec import Codec, HashingReader, decompressing_reader
from baseline_guard.backup.dump import ProgressCallback, ProgressMeter
from baseline_guard.backup.errors import (
    BackupError,
    ChecksumMismatch,
    RestoreVerificationFailed,
    ToolVersionError,
)
from baseline_guard.backup.manifest import DumpRecord
from baseline_guard.backup.pgtools import (
    PgConnectionInfo,
    StderrTail,
    TableStats,
    client_env,
    format_version,
    major_of_tool,
    table_stats,
    tool_failed,
    tool_path,
    tool_version,
    widen_pipe,
)
from baseline_guard.backup.s3io import MIB, head_or_none
from baseline_guard.environment_contract import EnvironmentKind
from baseline_guard.errors import InvalidInput, ProductionWriteRefused

MAX_NAME_BYTES = 63
READ_CHUNK = 1 * MIB


@dataclass(frozen=True)
class ExpectedDump:
    """What the restored object and database must match (from the manifest's DumpRecord)."""

    sha256: str
    size: int | None = None
    row_counts: dict[str, int] | None = None
    row_counts_exact: bool = True
    pg_dump_version: str | None = None
    codec: Codec = "none"

    def __post_init__(self) -> None:
        if not isinstance(self.sha256, str) or len(self.sha256) != 64 or not _is_hex(self.sha256):
            raise InvalidInput(
                f"sha256 {self.sha256!r}: expected 64 lowercase hex characters from the manifest"
            )

    @classmethod
    def from_record(cls, record: DumpRecord) -> ExpectedDump:
        return cls(
            sha256=record.sha256,
            size=record.size,
            row_counts=record.row_counts,
            row_counts_exact=record.row_counts_exact,
            pg_dump_version=record.pg_dump_version,
            codec=record.codec,
        )


@dataclass(frozen=True)
class RestoreResult:
    database: str
    key: str
    sha256: str
    size: int
    table_count: int
    row_counts: dict[str, int]
    replaced_existing: bool


def _is_hex(value: str) -> bool:
    return all(c in "0123456789abcdef" for c in value)


def refuse_production(target_kind: EnvironmentKind | str | None, database: str) -> None:
    """Raise before anything is written when the target environment is production (or of unknown kind)."""
    if target_kind is None:
        return
    try:
        kind = EnvironmentKind(target_kind)
    except ValueError:
        raise InvalidInput(
            f"environment kind {target_kind!r}: expected one of {', '.join(EnvironmentKind)}"
        ) from None
    if kind is EnvironmentKind.PRODUCTION:
        raise ProductionWriteRefused(
            f"refusing to restore into database {database} of a production environment"
        )


def derived_name(database: str, tag: str, short_id: str) -> str:
    """``<db>__<tag>_<id>``, the database part shortened so the whole fits PostgreSQL's 63 bytes."""
    suffix = f"__{tag}_{short_id}"
    base = database
    while len((base + suffix).encode()) > MAX_NAME_BYTES:
        base = base[:-1]
    return base + suffix


def _lock_key(database: str) -> int:
    return int.from_bytes(
        hashlib.sha256(f"baseline_guard.restore:{database}".encode()).digest()[:8], "big", signed=True
    )


def restore_database(
    client: Any,
    *,
    bucket: str,
    key: str,
    expected: ExpectedDump,
    target: PgConnectionInfo,
    target_kind: EnvironmentKind | str | None,
    maintenance_database: str = "postgres",
    no_owner: bool = False,
    pg_bin_dir: str | PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    progress_every: int = 64 * MIB,
    swap_timeout_s: float = 30.0,
) -> RestoreResult:
    """Restore ``s3://bucket/key`` into ``target.database``, replacing it only once the copy is verified.

    :param target_kind: kind of the environment the target belongs to; ``production`` is refused
        before anything is written. None when the caller has no environment (ad hoc restore).
    :param maintenance_database: a database on the same server to connect to while ``target``
        is created, renamed and dropped
    :param no_owner: pass ``--no-owner`` (objects owned by the restoring user instead of their owners)
    """
    refuse_production(target_kind, target.database)
    if not bucket or not key:
        raise InvalidInput(f"bucket {bucket!r} / key {key!r}: expected the dump's bucket and key")
    if target.database == maintenance_database:
        raise InvalidInput(f"target database {target.database} is the maintenance database: expected another")
    pg_restore = tool_path("pg_restore", pg_bin_dir)
    restore_version = tool_version(pg_restore)
    if expected.pg_dump_version:
        dumped_by = tuple(int(x) for x in expected.pg_dump_version.split(".") if x.isdigit())
        if major_of_tool(restore_version) < major_of_tool(dumped_by):
            raise ToolVersionError(
                f"pg_restore {format_version(restore_version)} cannot read an archive written by pg_dump "
                f"{expected.pg_dump_version}: expected pg_restore of major version >= "
                f"{format_version(major_of_tool(dumped_by))}"
            )
    head = head_or_none(client, bucket, key)
    if head is None:
        raise BackupError(f"s3://{bucket}/{key} does not exist")
    if expected.size is not None and head["ContentLength"] != expected.size:
        raise ChecksumMismatch(
            f"s3://{bucket}/{key} is {head['ContentLength']} bytes, the manifest says "
            f"{expected.size}: refusing to restore it"
        )

    admin = target.connect(maintenance_database)
    admin.autocommit = True
    try:
        _take_lock(admin, target.database)
        _drop_leftovers(admin, target.database)
        short_id = secrets.token_hex(4)
        temp_db = derived_name(target.database, "restore", short_id)
        existing = _database_settings(admin, target.database)
        _create_database(admin, temp_db, existing)
        try:
            size = _stream_restore(
                client,
                bucket,
                key,
                expected,
                pg_restore,
                restore_version,
                target.with_database(temp_db),
                no_owner,
                ProgressMeter(progress, progress_every),
            )
            stats = _verify_tables(target, temp_db, expected)
            _swap_in(
                admin,
                temp_db,
                target.database,
                derived_name(target.database, "old", short_id),
                existing is not None,
                swap_timeout_s,
            )
        except BaseException:
            with contextlib.suppress(Exception):
                _drop_database(admin, temp_db)
            raise
    finally:
        admin.close()
    return RestoreResult(
        database=target.database,
        key=key,
        sha256=expected.sha256,
        size=size,
        table_count=stats.table_count,
        row_counts=stats.rows,
        replaced_existing=existing is not None,
    )


def _take_lock(admin: PgConnection, database: str) -> None:
    with admin.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", (_lock_key(database),))
        if not cur.fetchone()[0]:
            raise BackupError(f"another restore of database {database} is running on this server")


def _drop_leftovers(admin: PgConnection, database: str) -> None:
    """Drop temporary/old copies a crashed restore of this database left (we hold its lock)."""
    with admin.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database")
        names = [row[0] for row in cur.fetchall()]
    for name in names:
        for tag in ("restore", "old"):
            if _is_hex(name[-8:]) and derived_name(database, tag, name[-8:]) == name:
                _drop_database(admin, name)


def _database_settings(admin: PgConnection, database: str) -> dict[str, str] | None:
    with admin.cursor() as cur:
        cur.execute(
            "SELECT pg_encoding_to_char(encoding), datcollate, datctype, pg_get_userbyid(datdba) "
            "FROM pg_database WHERE datname = %s",
            (database,),
        )
        row = cur.fetchone()
    if row is None:
        return None
    return {"encoding": row[0], "collate": row[1], "ctype": row[2], "owner": row[3]}


def _create_database(admin: PgConnection, name: str, like: dict[str, str] | None) -> None:
    statement = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
    if like is not None:
        statement += sql.SQL(" ENCODING {} LC_COLLATE {} LC_CTYPE {} OWNER {}").format(
            sql.Literal(like["encoding"]),
            sql.Literal(like["collate"]),
            sql.Literal(like["ctype"]),
            sql.Identifier(like["owner"]),
        )
    with admin.cursor() as cur:
        cur.execute(statement)


def _drop_database(admin: PgConnection, name: str) -> None:
    with admin.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _stream_restore(
    client: Any,
    bucket: str,
    key: str,
    expected: ExpectedDump,
    pg_restore: str,
    version: tuple[int, ...],
    temp: PgConnectionInfo,
    no_owner: bool,
    meter: ProgressMeter,
) -> int:
    """Pipe the object into pg_restore; returns its size once pg_restore and the checksum both agree."""
    argv = [pg_restore, "--exit-on-error", "--no-password", f"--dbname={temp.database}"]
    if no_owner:
        argv.append("--no-owner")
    tail = StderrTail()
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    stored = HashingReader(body)  # the object as stored: what the manifest's sha256 and size describe
    archive = decompressing_reader(stored, expected.codec, f"s3://{bucket}/{key}")
    too_big = False
    with contextlib.closing(body), client_env(temp) as env:
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, bufsize=0
        )
        widen_pipe(proc.stdin)
        drain = threading.Thread(target=tail.drain, args=(proc.stderr,), daemon=True)
        drain.start()
        try:
            try:
                while block := archive.read(READ_CHUNK):
                    meter.add(stored.size - meter.bytes_done)
                    if expected.size is not None and stored.size > expected.size:
                        too_big = True
                        break
                    proc.stdin.write(block)  # type: ignore[union-attr]
            except BrokenPipeError:
                pass  # pg_restore stopped early; its exit status and stderr say why
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()  # type: ignore[union-attr]
            returncode = proc.wait()
            drain.join(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    where = f"s3://{bucket}/{key}"
    if too_big:
        raise ChecksumMismatch(
            f"{where} is longer than the {expected.size} bytes the manifest records: refused"
        )
    if returncode != 0:
        err = tool_failed(
            f"pg_restore {format_version(version)} into {temp.database}", returncode, tail.text(temp)
        )
        if stored.hexdigest() != expected.sha256:
            err.add_note(f"{where} also does not match the manifest's sha256 (tampered or corrupt)")
        raise err
    sha = stored.hexdigest()
    if sha != expected.sha256 or (expected.size is not None and stored.size != expected.size):
        recorded = f" ({expected.size} bytes)" if expected.size is not None else ""
        raise ChecksumMismatch(
            f"{where} has sha256 {sha} ({stored.size} bytes), the manifest says "
            f"{expected.sha256}{recorded}: tampered or corrupt, not restored"
        )
    meter.finish()
    return stored.size


def _verify_tables(target: PgConnectionInfo, temp_db: str, expected: ExpectedDump) -> TableStats:
    conn = target.connect(temp_db)
    try:
        conn.set_session(readonly=True)
        stats = table_stats(conn, exact=True)
    finally:
        conn.close()
    if expected.row_counts is None:
        return stats
    missing = sorted(set(expected.row_counts) - set(stats.rows))
    extra = sorted(set(stats.rows) - set(expected.row_counts))
    problems = []
    if missing:
        problems.append(f"missing tables {missing}")
    if extra:
        problems.append(f"unexpected tables {extra}")
    if expected.row_counts_exact:
        wrong = {
            t: (n, stats.rows[t])
            for t, n in expected.row_counts.items()
            if t in stats.rows and stats.rows[t] != n
        }
        if wrong:
            problems.append(
                "row counts differ (manifest, restored): "
                + ", ".join(f"{t} {a} != {b}" for t, (a, b) in sorted(wrong.items()))
            )
    if problems:
        raise RestoreVerificationFailed(
            f"restored copy of {target.database} does not match the manifest: " + "; ".join(problems)
        )
    return stats


def _swap_in(
    admin: PgConnection, temp_db: str, database: str, old_db: str, replace: bool, timeout_s: float
) -> None:
    """Put ``temp_db`` in place of ``database`` (atomic rename in one transaction), then drop the old one."""
    ident = sql.Identifier
    with admin.cursor() as cur:
        if not replace:
            cur.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(ident(temp_db), ident(database)))
            return
        cur.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(ident(database)))
        try:
            _rename_when_idle(admin, temp_db, database, old_db, timeout_s)
        except BaseException:
            with contextlib.suppress(Exception):
                cur.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(ident(database)))
            raise
        _drop_database(admin, old_db)


def _rename_when_idle(
    admin: PgConnection, temp_db: str, database: str, old_db: str, timeout_s: float
) -> None:
    ident = sql.Identifier
    deadline = time.monotonic() + timeout_s
    while True:
        with admin.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            )
        admin.autocommit = False
        try:
            with admin.cursor() as cur:
                cur.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(ident(database), ident(old_db)))
                cur.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(ident(temp_db), ident(database)))
            admin.commit()
            return
        except psycopg2.errors.ObjectInUse:
            admin.rollback()
            if time.monotonic() > deadline:
                raise BackupError(
                    f"database {database} still has sessions after {timeout_s:.0f} s; "
                    "the previous data was kept"
                ) from None
            time.sleep(0.2)
        finally:
            admin.autocommit = True
