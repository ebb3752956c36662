"""Seeding: eight databases, production a few schema changes ahead of the baseline, idempotent."""

from __future__ import annotations

import pytest
from local_stack.postgres import LocalPostgres
from local_stack.seed import SERVICE_DATABASES, all_databases, database_name, seed_all, seed_database

BASELINE_TABLES = {
    "hotel_search": {"cities", "hotels", "search_requests"},
    "hotel_detail": {"hotels", "rooms", "amenities", "hotel_amenities", "price_history"},
    "quote": {"quotes", "rate_rules"},
    "booking": {"guests", "orders", "payments"},
}
PRODUCTION_ONLY_TABLES = {"hotel_detail": {"room_photos"}}


def q(pg: LocalPostgres, database: str, sql: str) -> list[list[str]]:
    return [line.split("|") for line in pg.psql(sql, database=database).splitlines() if line]


def tables(pg: LocalPostgres, database: str) -> set[str]:
    return {r[0] for r in q(pg, database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def column(pg: LocalPostgres, database: str, table: str, name: str) -> dict[str, str] | None:
    rows = q(
        pg,
        database,
        "SELECT data_type, is_nullable, coalesce(column_default, '') FROM information_schema.columns "
        f"WHERE table_schema = 'public' AND table_name = '{table}' AND column_name = '{name}'",
    )
    return dict(zip(("type", "nullable", "default"), rows[0], strict=True)) if rows else None


def enum_values(pg: LocalPostgres, database: str, type_name: str) -> list[str]:
    sql = (
        "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
        f"WHERE t.typname = '{type_name}' ORDER BY e.enumsortorder"
    )
    return [r[0] for r in q(pg, database, sql)]


def indexes(pg: LocalPostgres, database: str) -> set[str]:
    return {r[0] for r in q(pg, database, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}


def view_columns(pg: LocalPostgres, database: str, view: str) -> list[str]:
    sql = (
        "SELECT column_name FROM information_schema.columns "
        f"WHERE table_schema = 'public' AND table_name = '{view}' ORDER BY ordinal_position"
    )
    return [r[0] for r in q(pg, database, sql)]


def test_eight_databases_with_the_expected_tables(seeded_postgres: LocalPostgres) -> None:
    names = {r[0] for r in q(seeded_postgres, "postgres", "SELECT datname FROM pg_database")}
    assert {name for _, _, name in all_databases()} <= names
    assert len(all_databases()) == 8
    for service_db in SERVICE_DATABASES:
        assert tables(seeded_postgres, f"baseline_{service_db}") == BASELINE_TABLES[service_db]
        assert tables(seeded_postgres, f"prod_{service_db}") == BASELINE_TABLES[service_db] | (
            PRODUCTION_ONLY_TABLES.get(service_db, set())
        )


def test_every_database_has_realistic_data_and_schema_objects(seeded_postgres: LocalPostgres) -> None:
    total = 0
    for _, service_db, name in all_databases():
        kinds = {
            r[0]
            for r in q(
                seeded_postgres,
                name,
                "SELECT DISTINCT contype FROM pg_constraint c JOIN "
                "pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public'",
            )
        }
        assert {"p", "c", "u"} <= kinds, f"{name}: primary keys and check constraints expected"
        assert (
            q(seeded_postgres, name, "SELECT count(*) FROM pg_views WHERE schemaname = 'public'")[0][0] == "1"
        )
        assert int(
            q(seeded_postgres, name, "SELECT count(*) FROM pg_sequences WHERE schemaname = 'public'")[0][0]
        )
        assert int(q(seeded_postgres, name, "SELECT count(*) FROM pg_type WHERE typtype = 'e'")[0][0])
        if service_db != "quote":  # the quote service keeps hotel ids as plain references
            assert "f" in kinds, f"{name}: foreign keys expected"
        for table in tables(seeded_postgres, name):
            total += int(q(seeded_postgres, name, f'SELECT count(*) FROM "{table}"')[0][0])
    assert 1_000 <= total <= 10_000
    hotels = q(seeded_postgres, "baseline_hotel_detail", "SELECT id, name FROM hotels WHERE id = 'h-1001'")
    assert hotels == [["h-1001", "Hotel Lumière"]]
    # data is generated per environment, never copied: the guests differ
    assert q(
        seeded_postgres, "prod_booking", "SELECT count(*) FROM guests WHERE email LIKE '%baseline%'"
    ) == [["0"]]
    assert q(
        seeded_postgres, "baseline_booking", "SELECT count(*) FROM guests WHERE email LIKE '%baseline%'"
    ) == [["150"]]


def test_production_schema_is_ahead_by_safe_changes(seeded_postgres: LocalPostgres) -> None:
    pg = seeded_postgres
    # new nullable columns
    assert column(pg, "prod_hotel_search", "hotels", "latitude") == {
        "type": "numeric",
        "nullable": "YES",
        "default": "",
    }
    assert column(pg, "baseline_hotel_search", "hotels", "latitude") is None
    # new enum values
    assert enum_values(pg, "prod_hotel_search", "hotel_category")[-1] == "boutique"
    assert "boutique" not in enum_values(pg, "baseline_hotel_search", "hotel_category")
    assert enum_values(pg, "prod_booking", "order_status") == ["confirmed", "cancelled", "refunded"]
    assert enum_values(pg, "baseline_booking", "order_status") == ["confirmed", "cancelled"]
    # changed views
    assert view_columns(pg, "prod_hotel_search", "hotel_listing")[-2:] == ["latitude", "longitude"]
    assert "latitude" not in view_columns(pg, "baseline_hotel_search", "hotel_listing")
    assert view_columns(pg, "prod_booking", "order_summary")[-1] == "channel"
    assert "channel" not in view_columns(pg, "baseline_booking", "order_summary")
    # new column with a default
    assert column(pg, "prod_booking", "orders", "channel") == {
        "type": "text",
        "nullable": "NO",
        "default": "'web'::text",
    }
    assert column(pg, "baseline_booking", "orders", "channel") is None
    # new index
    assert "quotes_created_at_idx" in indexes(pg, "prod_quote")
    assert "quotes_created_at_idx" not in indexes(pg, "baseline_quote")
    # new table (with its foreign key to an existing one)
    assert "room_photos" in tables(pg, "prod_hotel_detail")
    assert "room_photos" not in tables(pg, "baseline_hotel_detail")


def test_exactly_one_destructive_difference_a_column_production_dropped(
    seeded_postgres: LocalPostgres,
) -> None:
    pg = seeded_postgres
    assert column(pg, "prod_quote", "quotes", "legacy_promo_code") is None
    assert column(pg, "baseline_quote", "quotes", "legacy_promo_code") is not None
    # dropping it in the baseline would lose data
    held = q(pg, "baseline_quote", "SELECT count(*) FROM quotes WHERE legacy_promo_code IS NOT NULL")[0][0]
    assert int(held) > 0
    # nowhere else does the baseline have a column production lacks, or a different column type
    sql = (
        "SELECT table_name || '.' || column_name || ':' || data_type FROM information_schema.columns "
        "WHERE table_schema = 'public'"
    )
    for service_db in SERVICE_DATABASES:
        baseline = {r[0] for r in q(pg, f"baseline_{service_db}", sql)}
        prod = {r[0] for r in q(pg, f"prod_{service_db}", sql)}
        missing_in_prod = baseline - prod
        expected = {"quotes.legacy_promo_code:text"} if service_db == "quote" else set()
        assert missing_in_prod == expected, service_db


def test_seeding_twice_changes_nothing(seeded_postgres: LocalPostgres) -> None:
    pg = seeded_postgres
    pg.psql(
        "INSERT INTO cities (name, country_code) VALUES ('Porto', 'PT')", database="baseline_hotel_search"
    )
    try:
        results = seed_all(pg)
        assert [r.seeded for r in results] == [False] * 8
        assert q(pg, "baseline_hotel_search", "SELECT count(*) FROM cities") == [["5"]]
        assert q(pg, "prod_hotel_search", "SELECT count(*) FROM cities") == [["4"]]
    finally:
        pg.psql("DELETE FROM cities WHERE name = 'Porto'", database="baseline_hotel_search")


def test_an_empty_database_left_by_an_interrupted_seed_is_seeded(seeded_postgres: LocalPostgres) -> None:
    pg = seeded_postgres
    pg.create_database("baseline_quote", drop_existing=True)
    assert tables(pg, "baseline_quote") == set()
    result = seed_database(pg, "baseline", "quote")
    assert result.seeded
    assert tables(pg, "baseline_quote") == BASELINE_TABLES["quote"]
    assert q(pg, "baseline_quote", "SELECT count(*) FROM quotes") == [["320"]]


def test_a_failing_seed_leaves_no_half_seeded_database(seeded_postgres: LocalPostgres, tmp_path) -> None:
    from local_stack import seed

    broken = tmp_path / "sql"
    for service_db in SERVICE_DATABASES:
        (broken / service_db).mkdir(parents=True)
        for part in ("schema.sql", "data.sql", "production_ahead.sql"):
            (broken / service_db / part).write_text((seed.SQL_DIR / service_db / part).read_text())
    (broken / "quote" / "data.sql").write_text("INSERT INTO quotes (id) VALUES (NULL);")
    pg = seeded_postgres
    pg.create_database("scratch_quote", drop_existing=True)
    with pytest.raises(RuntimeError, match="psql on scratch_quote failed"):
        pg.psql(seed.seed_script("baseline", "quote", sql_dir=broken), database="scratch_quote")
    assert tables(pg, "scratch_quote") == set()


def test_unknown_names_are_refused_with_what_was_expected() -> None:
    with pytest.raises(ValueError, match=r"unknown environment prefix 'staging': expected one of"):
        database_name("staging", "quote")
    with pytest.raises(ValueError, match=r"unknown service database 'orders': expected one of"):
        database_name("prod", "orders")


def test_seed_command_seeds_a_server_named_by_pg_variables(seeded_postgres: LocalPostgres) -> None:
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "PGHOST": "127.0.0.1",
        "PGPORT": str(seeded_postgres.port),
        "PGUSER": "postgres",
        "PGPASSWORD": seeded_postgres.password,
    }
    done = subprocess.run(
        [sys.executable, "-m", "local_stack.seed"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "baseline_quote: already there, left alone" in done.stdout
    assert len(done.stdout.splitlines()) == 8
    assert seeded_postgres.password not in done.stdout + done.stderr

    env.pop("PGPASSWORD")
    refused = subprocess.run(
        [sys.executable, "-m", "local_stack.seed"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 2
    assert "PGPASSWORD not set" in refused.stderr
