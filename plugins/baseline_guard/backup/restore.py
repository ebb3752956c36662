"""Restore: a dump from S3 into ``pg_restore`` on a fresh copy, verified, then swapped in.

A restore has two steps, so that an environment's databases are replaced all together or not at all:

1. :func:`prepare_restore`, per database: refuse a target that is one of production's databases
   (by server identity, before any write); take a per-database lock and undo what earlier
   restores recorded in the server's ledger (:mod:`baseline_guard.backup.ledger`); record the copy;
   spool the object to an unnamed local file and check its SHA-256 and size
   (:mod:`baseline_guard.backup.spool`; the archive's data offsets, which pg_dump could not write
   into the pipe it dumped to, are written in once it is verified), then create
   ``<db>__restore_<id>`` and run ``pg_restore --exit-on-error --jobs`` from the file; short of
   disk space (or when asked), create the copy and stream the object into a serial
   ``pg_restore`` instead, hashing it on the way; check tables and rows against the manifest;
   give the copy the database-level properties (ACL, settings, comment, connection limit)
   recorded at backup time, or the target's current ones for an older backup.
   The copy is then recorded as verified; on failure it is dropped and the reason recorded.
2. :func:`baseline_guard.backup.swap.swap_restored`, once for every database of the restore.

:func:`restore_database` does both for a single database.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Any, BinaryIO

from psycopg2 import sql
from psycopg2.extensions import connection as PgConnection

from baseline_guard.backup import ledger
from baseline_guard.backup import spool as spooling
from baseline_guard.backup.archive_offsets import NotPatchable
from baseline_guard.backup.codec import Codec, HashingReader, decompressing_reader
from baseline_guard.backup.dump import ProgressCallback, ProgressMeter
from baseline_guard.backup.identity import DatabaseIdentity, identify, refuse_production_target
from baseline_guard.backup.manifest import DumpRecord
from baseline_guard.backup.names import dbname_target
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
from baseline_guard.backup.properties import DatabaseProperties, apply_properties, read_properties
from baseline_guard.backup.s3io import MIB, head_or_none
from baseline_guard.backup.swap import StepCallback, copy_name, swap_restored
from baseline_guard.environment_contract import EnvironmentKind
from baseline_guard.errors import (
    BackupError,
    ChecksumMismatch,
    InvalidInput,
    ProductionWriteRefused,
    RestoreVerificationFailed,
    ToolVersionError,
)

READ_CHUNK = 1 * MIB
RESTORE_ID_RE = re.compile(r"[0-9a-f]{8}")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExpectedDump:
    """What the restored object and database must match (from the manifest's DumpRecord)."""

    sha256: str
    size: int | None = None
    row_counts: dict[str, int] | None = None
    row_counts_exact: bool = True
    pg_dump_version: str | None = None
    properties: DatabaseProperties | None = None
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
            properties=record.database_properties,
            codec=record.codec,
        )


@dataclass(frozen=True)
class PreparedCopy:
    """A verified copy waiting to be swapped in for ``database``."""

    database: str
    copy: str
    restore_id: str
    key: str
    sha256: str
    size: int
    table_count: int
    row_counts: dict[str, int]
    properties_from: str


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


def restore_database(
    client: Any,
    *,
    bucket: str,
    key: str,
    expected: ExpectedDump,
    target: PgConnectionInfo,
    production: Sequence[DatabaseIdentity],
    target_kind: EnvironmentKind | str | None = None,
    maintenance_database: str = "postgres",
    no_owner: bool = False,
    pg_bin_dir: str | PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    progress_every: int = 64 * MIB,
    swap_timeout_s: float = 30.0,
    restore_id: str | None = None,
    on_swap_step: StepCallback | None = None,
    spool: bool = True,
    spool_dir: str | PathLike[str] | None = None,
    jobs: int | None = None,
) -> RestoreResult:
    """Restore ``s3://bucket/key`` into ``target.database``: prepare a verified copy, then swap it in.

    :param production: every database the environment API lists for production; a target that is
        one of them (same name and server) is refused before anything is written
    :param target_kind: kind of the environment the target belongs to; ``production`` is refused
    :param on_swap_step: called with each step of the swap (``verified``, ``closed``, ``swapped``, ``cleaned``)
    :param spool, spool_dir, jobs: see :func:`prepare_restore`
    """
    restore_id = restore_id or secrets.token_hex(4)
    prepared = prepare_restore(
        client,
        bucket=bucket,
        key=key,
        expected=expected,
        target=target,
        production=production,
        restore_id=restore_id,
        target_kind=target_kind,
        maintenance_database=maintenance_database,
        no_owner=no_owner,
        pg_bin_dir=pg_bin_dir,
        progress=progress,
        progress_every=progress_every,
        spool=spool,
        spool_dir=spool_dir,
        jobs=jobs,
    )
    (outcome,) = swap_restored(
        [target],
        restore_id,
        production=production,
        maintenance_database=maintenance_database,
        timeout_s=swap_timeout_s,
        on_step=on_swap_step,
    )
    return RestoreResult(
        database=target.database,
        key=key,
        sha256=prepared.sha256,
        size=prepared.size,
        table_count=prepared.table_count,
        row_counts=prepared.row_counts,
        replaced_existing=outcome.replaced_existing,
    )


def prepare_restore(
    client: Any,
    *,
    bucket: str,
    key: str,
    expected: ExpectedDump,
    target: PgConnectionInfo,
    production: Sequence[DatabaseIdentity],
    restore_id: str,
    target_kind: EnvironmentKind | str | None = None,
    maintenance_database: str = "postgres",
    no_owner: bool = False,
    pg_bin_dir: str | PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    progress_every: int = 64 * MIB,
    spool: bool = True,
    spool_dir: str | PathLike[str] | None = None,
    jobs: int | None = None,
) -> PreparedCopy:
    """Restore ``s3://bucket/key`` into a verified copy of ``target.database``; the target is untouched.

    :param restore_id: 8 hex characters naming this restore (the same for every database of it)
    :param maintenance_database: a database on the same server holding the ledger, connected to
        while the copy is created and dropped
    :param no_owner: pass ``--no-owner`` (objects owned by the restoring user instead of their owners)
    :param spool: download and verify the whole object into an unnamed local file first, write
        the data offsets into its TOC, then run ``pg_restore --jobs`` from it (a corrupt object is
        refused before the copy is created; measured faster than streaming, see
        docs/benchmarks.md); when the spool directory has too little free space (or off Linux) the
        object is streamed into a serial ``pg_restore`` instead, checked as it goes. False: always
        stream
    :param spool_dir: where to spool (default: the system's temporary directory)
    :param jobs: ``pg_restore --jobs`` for a spooled archive (default: the cores available, at least 2)
    """
    refuse_production(target_kind, target.database)
    jobs = _restore_jobs(jobs)
    if not isinstance(restore_id, str) or RESTORE_ID_RE.fullmatch(restore_id) is None:
        raise InvalidInput(f"restore id {restore_id!r}: expected 8 lowercase hex characters")
    if not bucket or not key:
        raise InvalidInput(f"bucket {bucket!r} / key {key!r}: expected the dump's bucket and key")
    if target.database == maintenance_database:
        raise InvalidInput(f"target database {target.database} is the maintenance database: expected another")
    refuse_production_target(identify(target, maintenance_database), production)

    admin = target.connect(maintenance_database)
    admin.autocommit = True
    try:
        ledger.ensure_ledger(admin)
        ledger.take_lock(admin, target.database)
        ledger.reopen_blocked(admin)
        ledger.clean_up_target(admin, target.database)
        copy = copy_name(target.database, restore_id)
        existing = _database_settings(admin, target.database)
        current_properties = read_properties(admin, target.database)
        ledger.record_copy(admin, copy, target.database, restore_id)
        copy_oid: int | None = None
        try:
            pg_restore, restore_version = _restore_tool(pg_bin_dir, expected)
            stored_size = _check_object(client, bucket, key, expected)
            meter = ProgressMeter(progress, progress_every)
            with contextlib.ExitStack() as stack:
                spooled = (
                    _spool_verified(stack, client, bucket, key, expected, stored_size, spool_dir, meter)
                    if spool
                    else None
                )
                _create_database(admin, copy, existing)
                copy_oid = ledger.database_oid(admin, copy)
                ledger.set_copy_state(admin, copy, ledger.CREATING, oid=copy_oid)
                tool = (pg_restore, restore_version)
                if spooled is not None:
                    size = stored_size
                    _file_restore(spooled, tool, target.with_database(copy), no_owner, jobs)
                else:
                    size = _stream_restore(
                        client, bucket, key, expected, tool, target.with_database(copy), no_owner, meter
                    )
            stats = _verify_tables(target, copy, expected)
            properties, source = _properties_to_apply(expected, current_properties)
            if properties is not None:
                apply_properties(admin, copy, properties)
            ledger.set_copy_state(admin, copy, ledger.VERIFIED)
        except BaseException as err:
            if copy_oid is not None:  # only the database this call created
                with contextlib.suppress(Exception):
                    ledger.drop_recorded(admin, copy, copy_oid)
            with contextlib.suppress(Exception):
                reason = str(err)[:2000] or type(err).__name__
                ledger.set_copy_state(admin, copy, ledger.FAILED, reason=reason)
            raise
    finally:
        admin.close()
    return PreparedCopy(
        database=target.database,
        copy=copy,
        restore_id=restore_id,
        key=key,
        sha256=expected.sha256,
        size=size,
        table_count=stats.table_count,
        row_counts=stats.rows,
        properties_from=source,
    )


def _restore_tool(
    pg_bin_dir: str | PathLike[str] | None, expected: ExpectedDump
) -> tuple[str, tuple[int, ...]]:
    pg_restore = tool_path("pg_restore", pg_bin_dir)
    restore_version = tool_version(pg_restore)
    _check_tool_reads_archive(restore_version, expected)
    return pg_restore, restore_version


def _restore_jobs(jobs: int | None) -> int:
    if jobs is None:
        return max(
            2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 2
        )
    if not isinstance(jobs, int) or not 1 <= jobs <= 64:
        raise InvalidInput(f"pg_restore jobs {jobs!r}: expected a whole number from 1 to 64")
    return jobs


def _check_object(client: Any, bucket: str, key: str, expected: ExpectedDump) -> int:
    """The object's size, once it exists with the size the manifest records."""
    head = head_or_none(client, bucket, key)
    if head is None:
        raise BackupError(f"s3://{bucket}/{key} does not exist")
    if expected.size is not None and head["ContentLength"] != expected.size:
        raise ChecksumMismatch(
            f"s3://{bucket}/{key} is {head['ContentLength']} bytes, the manifest says "
            f"{expected.size}: refusing to restore it"
        )
    return int(head["ContentLength"])


def _check_tool_reads_archive(restore_version: tuple[int, ...], expected: ExpectedDump) -> None:
    if not expected.pg_dump_version:
        return
    dumped_by = tuple(int(x) for x in expected.pg_dump_version.split(".") if x.isdigit())
    if major_of_tool(restore_version) < major_of_tool(dumped_by):
        raise ToolVersionError(
            f"pg_restore {format_version(restore_version)} cannot read an archive written by pg_dump "
            f"{expected.pg_dump_version}: expected pg_restore of major version >= "
            f"{format_version(major_of_tool(dumped_by))}"
        )


def _properties_to_apply(
    expected: ExpectedDump, current: DatabaseProperties | None
) -> tuple[DatabaseProperties | None, str]:
    """The backup's recorded properties; for a backup that predates them, the target's current ones."""
    if expected.properties is not None:
        return expected.properties, "backup"
    if current is not None:
        return current, "target"
    return None, "defaults"


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


def _spool_verified(
    stack: contextlib.ExitStack,
    client: Any,
    bucket: str,
    key: str,
    expected: ExpectedDump,
    stored_size: int,
    spool_dir: str | PathLike[str] | None,
    meter: ProgressMeter,
) -> BinaryIO | None:
    """The object's archive in an unnamed file, checked against the manifest; None: stream it instead."""
    where = f"s3://{bucket}/{key}"
    if not spooling.supported():
        return None
    directory = spool_dir if spool_dir is not None else tempfile.gettempdir()
    try:
        budget = spooling.spool_budget(directory, stored_size, expected.codec)
        spooled = stack.enter_context(
            spooling.spooled_object(
                client,
                bucket,
                key,
                expected.codec,
                size_limit=expected.size,
                spool_dir=directory,
                budget=budget,
                meter=meter,
            )
        )
    except spooling.SpoolFull as full:
        log.info("Not spooling %s (%s): streaming it into a serial pg_restore", where, full)
        meter.bytes_done = 0
        return None
    mismatch = _stored_mismatch(where, spooled.stored, expected)
    if mismatch is not None:
        raise mismatch
    meter.finish()
    _write_data_offsets(spooled, where)
    return spooled.file


def _write_data_offsets(spooled: spooling.SpooledArchive, where: str) -> None:
    """Give the verified spooled archive the data offsets pg_dump could not write into a pipe."""
    try:
        blocks = spooling.write_data_offsets(spooled)
    except NotPatchable as why:
        log.info(
            "Spooled archive of %s keeps its TOC as it is (%s): pg_restore looks for its data", where, why
        )
        return
    except OSError as err:  # each entry is left unset or complete: pg_restore looks for the unset ones
        log.warning("Writing data offsets into the spooled archive of %s failed part way: %s", where, err)
        return
    log.info("Wrote the offsets of %d data blocks into the TOC of the spooled archive of %s", blocks, where)


def _restore_argv(pg_restore: str, temp: PgConnectionInfo, no_owner: bool) -> list[str]:
    argv = [pg_restore, "--exit-on-error", "--no-password", f"--dbname={dbname_target(temp.database)}"]
    if no_owner:
        argv.append("--no-owner")
    return argv


@contextlib.contextmanager
def _pg_restore_process(
    argv: list[str], temp: PgConnectionInfo, **popen: Any
) -> Iterator[tuple[subprocess.Popen[bytes], StderrTail]]:
    """pg_restore running with its stderr drained into a tail; killed if still running on the way out."""
    tail = StderrTail()
    with client_env(temp) as env:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, **popen)
        drain = threading.Thread(target=tail.drain, args=(proc.stderr,), daemon=True)
        drain.start()
        try:
            yield proc, tail
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            drain.join(timeout=10)


def _file_restore(
    archive: BinaryIO, tool: tuple[str, tuple[int, ...]], temp: PgConnectionInfo, no_owner: bool, jobs: int
) -> None:
    """Run ``pg_restore --jobs`` on the verified spooled archive (its workers reopen ``/dev/fd/N`` too)."""
    pg_restore, version = tool
    fd = archive.fileno()
    argv = [*_restore_argv(pg_restore, temp, no_owner), f"--jobs={jobs}", f"/dev/fd/{fd}"]
    with _pg_restore_process(argv, temp, stdin=subprocess.DEVNULL, pass_fds=(fd,)) as (proc, tail):
        returncode = proc.wait()
    if returncode != 0:
        raise tool_failed(
            f"pg_restore {format_version(version)} --jobs={jobs} into {temp.database}",
            returncode,
            tail.text(temp),
        )


def _stream_restore(
    client: Any,
    bucket: str,
    key: str,
    expected: ExpectedDump,
    tool: tuple[str, tuple[int, ...]],
    temp: PgConnectionInfo,
    no_owner: bool,
    meter: ProgressMeter,
) -> int:
    """Pipe the object into pg_restore; returns its size once pg_restore and the checksum both agree."""
    pg_restore, version = tool
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    stored = HashingReader(body)  # the object as stored: what the manifest's sha256 and size describe
    archive = decompressing_reader(stored, expected.codec, f"s3://{bucket}/{key}")
    too_big = False
    popen = {"stdin": subprocess.PIPE, "bufsize": 0}
    with (
        contextlib.closing(body),
        _pg_restore_process(_restore_argv(pg_restore, temp, no_owner), temp, **popen) as (
            proc,
            tail,
        ),
    ):
        widen_pipe(proc.stdin)
        stopped_early = False
        while block := (stored.read(READ_CHUNK) if stopped_early else archive.read(READ_CHUNK)):
            meter.add(stored.size - meter.bytes_done)
            if expected.size is not None and stored.size > expected.size:
                too_big = True
                break
            if not stopped_early:
                try:
                    proc.stdin.write(block)  # type: ignore[union-attr]
                except BrokenPipeError:
                    # pg_restore stopped early (its status and stderr say why); the rest of the
                    # object is still read and hashed so the checksum verdict is about all of it
                    stopped_early = True
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()  # type: ignore[union-attr]
        returncode = proc.wait()
    mismatch = _stored_mismatch(f"s3://{bucket}/{key}", stored, expected)
    if mismatch is not None:
        if returncode != 0 and not too_big:
            mismatch.add_note(f"pg_restore stopped on it with status {returncode}: {tail.text(temp)}")
        raise mismatch
    if returncode != 0:
        raise tool_failed(
            f"pg_restore {format_version(version)} into {temp.database}", returncode, tail.text(temp)
        )
    meter.finish()
    return stored.size


def _stored_mismatch(where: str, stored: HashingReader, expected: ExpectedDump) -> ChecksumMismatch | None:
    """Why the object read does not match its manifest record (size, SHA-256), or None when it does."""
    if expected.size is not None and stored.size > expected.size:
        return ChecksumMismatch(
            f"{where} is longer than the {expected.size} bytes the manifest records: refused"
        )
    sha = stored.hexdigest()
    if sha != expected.sha256 or (expected.size is not None and stored.size != expected.size):
        recorded = f" ({expected.size} bytes)" if expected.size is not None else ""
        return ChecksumMismatch(
            f"{where} has sha256 {sha} ({stored.size} bytes), the manifest says "
            f"{expected.sha256}{recorded}: tampered or corrupt, not restored"
        )
    return None


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
