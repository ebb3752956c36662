"""PostgreSQL client side of the backup engine: connection info, tool versions, compression, table stats.

The password never reaches a command line or a file: client tools get it as ``PGPASSWORD`` in a
minimal environment built for them (:func:`client_env`: PATH, locale, the PG* they need, nothing
of the worker's, so no ``AIRFLOW_CONN_*``); psycopg2 gets it in-process. Database names are
checked by :mod:`baseline_guard.backup.names` before any connection is made.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection as PgConnection
from psycopg2.extensions import cursor as PgCursor

from baseline_guard.backup.codec import DEFAULT_ZSTD_LEVEL, Codec
from baseline_guard.backup.names import check_database_name
from baseline_guard.errors import BackupError, InvalidInput, PgToolFailed, ToolVersionError

_TOOL_VERSION = re.compile(r"\(PostgreSQL\) (\d+)(?:\.(\d+))?")
_COMPRESSION = re.compile(r"^(auto|none|gzip|zstd|lz4)(?::([0-9]+))?$")
_INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ")
_INHERITED_PG_ENV = ("PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY", "PGSSLCRL")
STDERR_LIMIT = 16 * 1024


@dataclass(frozen=True)
class PgConnectionInfo:
    """Where a database lives and how to log in. ``password`` is kept out of ``repr``."""

    host: str
    port: int
    user: str
    database: str
    password: str | None = field(default=None, repr=False)
    sslmode: str | None = None
    connect_timeout: int = 10

    def __post_init__(self) -> None:
        check_database_name(self.database)
        if not self.host:
            raise InvalidInput("host is empty: expected a host name, an IP address or a socket directory")

    def with_database(self, database: str) -> PgConnectionInfo:
        return PgConnectionInfo(
            self.host, self.port, self.user, database, self.password, self.sslmode, self.connect_timeout
        )

    def connect(self, database: str | None = None) -> PgConnection:
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "dbname": check_database_name(database or self.database),
            "connect_timeout": self.connect_timeout,
            "application_name": "baseline_guard_backup",
        }
        if self.password is not None:
            kwargs["password"] = self.password
        if self.sslmode:
            kwargs["sslmode"] = self.sslmode
        conn: PgConnection = psycopg2.connect(**kwargs)
        return conn

    def redact(self, text: str) -> str:
        """``text`` with the password replaced, for messages built from tool output."""
        if self.password:
            text = text.replace(self.password, "***")
        return text


@contextlib.contextmanager
def client_env(conn: PgConnectionInfo, database: str | None = None) -> Iterator[dict[str, str]]:
    """A minimal environment for a libpq client tool: PATH, locale, and the PG* it needs.

    Nothing else of the worker's environment is passed on (no ``AIRFLOW_CONN_*``, no stray
    ``PGSERVICE``/``PGOPTIONS``). The password travels as ``PGPASSWORD`` in the child's
    environment only: no file is written, so a crash leaves none behind.
    """
    env = {k: os.environ[k] for k in (*_INHERITED_ENV, *_INHERITED_PG_ENV) if k in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update(
        {
            "PGHOST": conn.host,
            "PGPORT": str(conn.port),
            "PGUSER": conn.user,
            "PGDATABASE": check_database_name(database or conn.database),
            "PGAPPNAME": "baseline_guard_backup",
            "PGCONNECT_TIMEOUT": str(conn.connect_timeout),
            "PGPASSFILE": os.devnull,
        }
    )
    if conn.sslmode:
        env["PGSSLMODE"] = conn.sslmode
    if conn.password is not None:
        env["PGPASSWORD"] = conn.password
    yield env


PIPE_SIZE = 1024 * 1024


def widen_pipe(stream: IO[bytes] | None, size: int = PIPE_SIZE) -> None:
    """Give a pipe to or from a client tool a ``size`` buffer instead of Linux's 64 KiB, where allowed.

    With 64 KiB, pg_dump stalls whenever this process is not scheduled for a moment, and so does
    pg_restore when the stream briefly stops; on a busy machine those stalls add up. Best effort:
    other systems, or a size above ``/proc/sys/fs/pipe-max-size``, keep the default.
    """
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_size is None or stream is None:
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(stream.fileno(), set_size, size)


def tool_path(name: str, bin_dir: str | os.PathLike[str] | None) -> str:
    """Path of a client tool: in ``bin_dir`` if given, else on PATH."""
    if bin_dir is not None:
        path = Path(bin_dir) / name
        if not path.is_file():
            raise InvalidInput(f"{name} not found in {bin_dir}: expected a PostgreSQL client bin directory")
        return str(path)
    found = shutil.which(name)
    if found is None:
        raise InvalidInput(f"{name} is not on PATH: install the PostgreSQL client tools or pass pg_bin_dir")
    return found


def tool_version(path: str) -> tuple[int, ...]:
    """Version of a client tool from ``--version``: ``(18, 6)``; ``(9, 6)`` for old 9.x numbering."""
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=False)
    match = _TOOL_VERSION.search(out.stdout)
    if out.returncode != 0 or match is None:
        raise ToolVersionError(
            f"{path} --version gave {out.stdout.strip()!r}: expected 'pg_dump (PostgreSQL) N.M'"
        )
    return tuple(int(x) for x in match.groups() if x is not None)


def major_of_tool(version: tuple[int, ...]) -> tuple[int, ...]:
    return version[:2] if version[0] < 10 else version[:1]


def major_of_server(version_num: int) -> tuple[int, ...]:
    """Major version from ``server_version_num``: 180006 -> (18,), 90624 -> (9, 6)."""
    return (
        (version_num // 10000, (version_num // 100) % 100)
        if version_num < 100000
        else (version_num // 10000,)
    )


def format_version(version: tuple[int, ...]) -> str:
    return ".".join(str(x) for x in version)


def fetch_value(cur: PgCursor) -> Any:
    """The first column of the row the last query returned (a database value, typed by the query)."""
    row = cur.fetchone()
    if row is None:
        raise BackupError("a query that always returns one row returned none")
    return row[0]


def server_version_num(conn: PgConnection) -> int:
    with conn.cursor() as cur:
        cur.execute("SHOW server_version_num")
        return int(fetch_value(cur))


def require_tool_for_server(tool: str, tool_ver: tuple[int, ...], server_num: int) -> None:
    """Stop unless the tool's major version is at least the server's (pg_dump cannot dump newer servers)."""
    if major_of_tool(tool_ver) < major_of_server(server_num):
        raise ToolVersionError(
            f"{Path(tool).name} {format_version(tool_ver)} is older than the server "
            f"(PostgreSQL {format_version(major_of_server(server_num))}): expected a client of major version "
            f">= {format_version(major_of_server(server_num))}; point pg_bin_dir at newer client tools"
        )


@dataclass(frozen=True)
class Compression:
    """How a dump is compressed: ``method`` is gzip, zstd, lz4 or none; ``level`` None means the default.

    zstd runs outside pg_dump (``pg_dump -Z0`` piped through multi-threaded zstd, see
    :mod:`baseline_guard.backup.codec`): pg_dump compresses on its one thread, which made it the
    backup's bottleneck. gzip and lz4 stay inside pg_dump (the archive format of older backups).
    """

    method: Literal["none", "gzip", "zstd", "lz4"]
    level: int | None = None

    def __str__(self) -> str:
        return self.method if self.level is None or self.method == "none" else f"{self.method}:{self.level}"

    @property
    def codec(self) -> Codec:
        """How the stored object wraps pg_dump's archive."""
        return "zstd" if self.method == "zstd" else "none"

    def pg_dump_arg(self, tool_ver: tuple[int, ...]) -> str:
        if self.codec != "none":
            return "0"  # the archive is compressed outside pg_dump
        if major_of_tool(tool_ver) < (16,):  # before 16 only a gzip level 0-9 is accepted
            if self.method not in ("gzip", "none"):
                raise ToolVersionError(
                    f"pg_dump {format_version(tool_ver)} cannot compress with {self.method}"
                )
            return "0" if self.method == "none" else str(6 if self.level is None else self.level)
        return str(self)


def parse_compression(spec: str) -> tuple[str, int | None]:
    """Check a compression spec (``auto``, ``none``, ``gzip[:0-9]``, ``zstd[:1-22]``, ``lz4[:1-12]``)."""
    match = _COMPRESSION.match(spec.strip().lower()) if isinstance(spec, str) else None
    if match is None:
        raise InvalidInput(
            f"compression {spec!r} is not understood: expected auto, none, gzip[:0-9], "
            "zstd[:1-22] or lz4[:1-12]"
        )
    method, level = match.group(1), match.group(2)
    limits = {"gzip": (0, 9), "zstd": (1, 22), "lz4": (1, 12)}
    if level is not None:
        if method in ("auto", "none"):
            raise InvalidInput(f"compression {spec!r}: {method} takes no level")
        low, high = limits[method]
        if not low <= int(level) <= high:
            raise InvalidInput(f"compression {spec!r}: {method} level must be {low}-{high}")
    return method, None if level is None else int(level)


def supports_compression(pg_dump: str, method: str, tool_ver: tuple[int, ...]) -> bool:
    """Whether this pg_dump build can compress with ``method`` (lz4 is a build option)."""
    if method in ("none", "gzip", "zstd"):  # zstd runs outside pg_dump
        return True
    if major_of_tool(tool_ver) < (16,):
        return False
    # The spec is validated before any connection is tried; an unreachable socket dir makes it quick.
    probe = subprocess.run(
        [pg_dump, "-Fc", "-Z", f"{method}:1", "-d", "host=/nonexistent-bg-probe dbname=probe"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("PG")},
    )
    return "compression" not in probe.stderr


def resolve_compression(spec: str, pg_dump: str, tool_ver: tuple[int, ...]) -> Compression:
    """``auto`` is zstd:3 (outside pg_dump, any pg_dump version); an explicit method must be supported."""
    method, level = parse_compression(spec)
    if method == "auto":
        return Compression("zstd", DEFAULT_ZSTD_LEVEL)
    if not supports_compression(pg_dump, method, tool_ver):
        raise ToolVersionError(
            f"{pg_dump} ({format_version(tool_ver)}) was built without {method} support: "
            "use compression 'auto', 'zstd[:level]', 'gzip[:level]' or 'none'"
        )
    match method:
        case "none" | "gzip" | "zstd" | "lz4":
            return Compression(method, level)
    raise InvalidInput(f"compression method {method!r}: expected auto, none, gzip, zstd or lz4")


@dataclass(frozen=True)
class TableStats:
    """User tables of a database and their row counts (exact, or planner estimates)."""

    rows: dict[str, int]
    exact: bool

    @property
    def table_count(self) -> int:
        return len(self.rows)


_TABLES_SQL = """
SELECT n.nspname, c.relname, c.reltuples::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""


def table_stats(conn: PgConnection, *, exact: bool) -> TableStats:
    """Tables (``schema.table``) with row counts, read in ``conn``'s current transaction/snapshot."""
    with conn.cursor() as cur:
        cur.execute(_TABLES_SQL)
        tables = cur.fetchall()
        rows: dict[str, int] = {}
        for schema, name, estimate in tables:
            if exact:
                cur.execute(
                    sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(name))
                )
                rows[f"{schema}.{name}"] = int(fetch_value(cur))
            else:
                rows[f"{schema}.{name}"] = max(int(estimate), 0)
    return TableStats(rows=rows, exact=exact)


class StderrTail:
    """Keeps the last :data:`STDERR_LIMIT` bytes a tool wrote to stderr (drained in a thread)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def drain(self, stream: IO[bytes]) -> None:
        for line in iter(stream.readline, b""):
            self._buf += line
            if len(self._buf) > STDERR_LIMIT:
                del self._buf[: len(self._buf) - STDERR_LIMIT]

    def text(self, conn: PgConnectionInfo) -> str:
        return conn.redact(self._buf.decode("utf-8", errors="replace").strip())


def tool_failed(tool: str, returncode: int, stderr: str) -> PgToolFailed:
    detail = stderr or "(no output on stderr)"
    return PgToolFailed(f"{tool} exited with status {returncode}: {detail}")
