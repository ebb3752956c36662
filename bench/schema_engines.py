"""Compare diff engines on the corpus and the issue's reproductions: which plan converges?

For every pair, each engine plans the whole change (safety off, as if every held statement were
approved) and the plan is applied to the baseline in one transaction. Then the independent check
(:mod:`baseline_guard.schema.snapshot`: both ``pg_dump --schema-only`` outputs compared per
object) counts what is still different, and the engine diffs again (a converging engine plans
nothing the second time).

Engines:
- ``migradiff``: migradiff 1.7.2 alone (``add_all_changes``), as the sync used it before;
- ``results``: ``results`` 2.0.1789346060 (migra's successor, psycopg 3, ``add_all_changes_ordered``),
  run in its own virtualenv because it does not share this project's lock:
  ``uv venv /tmp/rv && uv pip install --python /tmp/rv/bin/python results==2.0.1789346060 'psycopg[binary]'``;
- ``ours``: this project's engine (migradiff + the plan layer + the savepoint apply), approving all.

Run: ``.venv/bin/python bench/schema_engines.py --results-python /tmp/rv/bin/python``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
from baseline_guard.schema import diff_schemas, sync_schema
from baseline_guard.schema.connect import Database
from baseline_guard.schema.diff import plan_statements
from baseline_guard.schema.snapshot import compare, snapshot
from local_stack.ports import free_port
from local_stack.postgres import LocalPostgres

RESULTS_PLAN = """
import json, sys
import psycopg
from results.dbdiff import Migration
with psycopg.connect(sys.argv[1]) as src, psycopg.connect(sys.argv[2]) as tgt:
    m = Migration(tgt.cursor(), src.cursor(), schema="public")
    m.set_safety(False)
    m.add_all_changes_ordered()
    print(json.dumps([str(s) for s in m.statements]))
"""


def reproductions() -> dict[str, tuple[str, str]]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from schema_reproductions import REPRODUCTIONS

    return REPRODUCTIONS


def plan_migradiff(prod: str, base: str) -> list[str]:
    src, tgt = Database.parse(prod, "source"), Database.parse(base, "target")
    with src.connect(read_only=True) as s, tgt.connect(read_only=True) as t:
        return plan_statements(s, t, ["public"]).statements


def plan_results(python: str, prod: str, base: str) -> list[str]:
    out = subprocess.run(
        [python, "-c", RESULTS_PLAN, prod, base], capture_output=True, text=True, timeout=600, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1])
    return json.loads(out.stdout)


def apply_all(dsn: str, statements: list[str]) -> str | None:
    """Apply in one transaction; the first error, or None."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
        conn.commit()
        return None
    except psycopg2.Error as exc:
        conn.rollback()
        return " ".join(str(exc).split())[:90]
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-python", help="python of a virtualenv with results installed")
    parser.add_argument("--only", help="only pairs whose name contains this")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "material"))
    import corpus

    cases: list[tuple[str, Path | str | None, Path | str | None]] = [
        (p.name, p.source, p.target) for p in corpus.pairs()
    ]
    cases += [(name, src, tgt or None) for name, (src, tgt) in reproductions().items()]
    engines = ["migradiff", "ours"] + (["results"] if args.results_python else [])
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        server = LocalPostgres(
            pgdata=Path(tmp) / "data", port=free_port(), password=secrets.token_urlsafe(16)
        )
        server.start()
        try:
            print("| pair | " + " | ".join(engines) + " |")
            print("|---|" + "---|" * len(engines))
            for name, source, target in cases:
                if args.only and args.only not in name:
                    continue
                cells = []
                for engine in engines:
                    for db, material in (("prod", source), ("base", target)):
                        server.create_database(db, drop_existing=True)
                        if isinstance(material, Path):
                            conn = psycopg2.connect(server.uri(db))
                            conn.autocommit = True
                            corpus.load(conn.cursor(), material)
                            conn.close()
                        elif material:
                            server.psql(material, db)
                    prod, base = server.uri("prod"), server.uri("base")
                    cells.append(_run_engine(engine, args.results_python, prod, base))
                print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
        finally:
            server.destroy()
    return 0


def _run_engine(engine: str, results_python: str | None, prod: str, base: str) -> str:
    try:
        if engine == "ours":
            result = sync_schema(prod, base, apply_destructive=True)
            count, error = len(result.applied) + len(result.held), None
            if result.held:
                error = f"{len(result.held)} refused"
        else:
            plan = (
                plan_migradiff(prod, base)
                if engine == "migradiff"
                else plan_results(results_python, prod, base)
            )
            count, error = len(plan), apply_all(base, plan)
        if engine == "ours":
            again = [s.sql for s in diff_schemas(prod, base).statements]
        elif engine == "migradiff":
            again = plan_migradiff(prod, base)
        else:
            again = plan_results(results_python, prod, base)
    except Exception as exc:  # a crash is a result too
        return f"crash: {type(exc).__name__}"
    residuals = compare(
        snapshot(Database.parse(prod, "source"), {"public"}),
        snapshot(Database.parse(base, "target"), {"public"}),
    )
    real = [r for r in residuals if not r.needs_rebuild]
    verdict = "yes" if not real and not error else "no"
    detail = f"{count} stmts"
    if error:
        detail += f", apply failed: {error}"
    detail += f", {len(real)} residual" + (f", 2nd plan {len(again)}" if again else "")
    return f"{verdict} ({detail})"


if __name__ == "__main__":
    sys.exit(main())
