"""Create and seed the sandbox databases: ``prod_<db>`` and ``baseline_<db>`` for each service database.

Production is a few schema changes ahead of the baseline (``include/sql/README.md`` lists them).
Each database is seeded in one transaction, so it either has its whole schema and data or no
table at all; a database that already has tables is left alone (seeding is idempotent and
never undoes what the schema sync or a restore did since).

``python -m local_stack.seed`` seeds any reachable server (docker-compose's ``sandbox-seed`` service):
it reads ``PGHOST``, ``PGPORT``, ``PGUSER`` and ``PGPASSWORD`` from the environment.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from local_stack.postgres import LocalPostgres

REPO_ROOT = Path(__file__).resolve().parents[2]
SQL_DIR = REPO_ROOT / "include" / "sql"
HOTELS_JSON = REPO_ROOT / "include" / "reference_env" / "data" / "hotels.json"

SERVICE_DATABASES: tuple[str, ...] = ("hotel_search", "hotel_detail", "quote", "booking")
ENVIRONMENT_PREFIXES: tuple[str, ...] = ("prod", "baseline")


def database_name(prefix: str, service_db: str) -> str:
    """``prod_quote``, ``baseline_hotel_search``..."""
    if prefix not in ENVIRONMENT_PREFIXES:
        raise ValueError(f"unknown environment prefix {prefix!r}: expected one of {ENVIRONMENT_PREFIXES}")
    if service_db not in SERVICE_DATABASES:
        raise ValueError(f"unknown service database {service_db!r}: expected one of {SERVICE_DATABASES}")
    return f"{prefix}_{service_db}"


def all_databases() -> list[tuple[str, str, str]]:
    """``(prefix, service_db, database name)`` for every seeded database, production first."""
    return [(p, db, database_name(p, db)) for p in ENVIRONMENT_PREFIXES for db in SERVICE_DATABASES]


def _literal(value: object) -> str:
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def hotel_seed_tables(hotels_json: Path = HOTELS_JSON) -> str:
    """SQL creating the temporary tables ``seed_hotels`` and ``seed_rooms`` from ``hotels.json``."""
    hotels = json.loads(hotels_json.read_text(encoding="utf-8"))["hotels"]
    hotel_rows = ",\n".join(
        f"({_literal(h['id'])}, {_literal(h['name'])}, {_literal(h['city'])}, {int(h['stars'])}, "
        f"{_literal(h.get('currency', 'EUR'))})"
        for h in hotels
    )
    room_rows = ",\n".join(
        f"({_literal(h['id'])}, {_literal(r['type'])}, {float(r['price_per_night'])})"
        for h in hotels
        for r in h["rooms"]
    )
    return (
        "CREATE TEMP TABLE seed_hotels (id text, name text, city text, stars int, currency text) "
        "ON COMMIT DROP;\n"
        f"INSERT INTO seed_hotels VALUES\n{hotel_rows};\n"
        "CREATE TEMP TABLE seed_rooms (hotel_id text, room_type text, price_per_night numeric(10, 2)) "
        "ON COMMIT DROP;\n"
        f"INSERT INTO seed_rooms VALUES\n{room_rows};\n"
    )


def seed_script(prefix: str, service_db: str, sql_dir: Path = SQL_DIR) -> str:
    """The whole psql script for one database: schema, data, and for production the changes ahead."""
    database_name(prefix, service_db)  # validates both
    folder = sql_dir / service_db
    parts = [
        "\\set ON_ERROR_STOP 1",
        f"\\set env {prefix}",
        "BEGIN;",
        "SET client_min_messages = warning;",
        hotel_seed_tables(),
        (folder / "schema.sql").read_text(encoding="utf-8"),
        (folder / "data.sql").read_text(encoding="utf-8"),
    ]
    if prefix == "prod":
        parts.append((folder / "production_ahead.sql").read_text(encoding="utf-8"))
    parts.append("COMMIT;")
    return "\n".join(parts)


@dataclass(frozen=True)
class SeedResult:
    database: str
    seeded: bool  # False: it already had tables and was left alone


def _has_tables(pg: LocalPostgres, database: str) -> bool:
    count = pg.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public';", database=database)
    return int(count.strip()) > 0


def seed_database(pg: LocalPostgres, prefix: str, service_db: str) -> SeedResult:
    """Create one database if missing and seed it unless it already has tables."""
    name = database_name(prefix, service_db)
    pg.create_database(name)
    if _has_tables(pg, name):
        return SeedResult(name, seeded=False)
    pg.psql(seed_script(prefix, service_db), database=name)
    pg.psql("ANALYZE;", database=name)
    return SeedResult(name, seeded=True)


def seed_all(pg: LocalPostgres) -> list[SeedResult]:
    """Create and seed all eight databases (idempotent)."""
    return [seed_database(pg, prefix, db) for prefix, db, _ in all_databases()]


def main(environ: dict[str, str] | None = None) -> int:
    """Seed the server named by ``PGHOST``/``PGPORT``/``PGUSER``/``PGPASSWORD``; print what was done."""
    environ = dict(os.environ if environ is None else environ)
    missing = [v for v in ("PGHOST", "PGPASSWORD") if not environ.get(v)]
    if missing:
        print(
            f"error: {', '.join(missing)} not set: expected the server's host and password", file=sys.stderr
        )
        return 2
    port = environ.get("PGPORT", "5432")
    if not port.isdigit():
        print(f"error: PGPORT={port!r} is not a port number", file=sys.stderr)
        return 2
    server = LocalPostgres(
        pgdata=Path("/nonexistent"),  # never started here: only its psql client is used
        port=int(port),
        password=environ["PGPASSWORD"],
        user=environ.get("PGUSER", "postgres"),
        host=environ["PGHOST"],
    )
    for result in seed_all(server):
        print(f"{result.database}: {'created and seeded' if result.seeded else 'already there, left alone'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
