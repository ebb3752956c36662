"""Restore drills on the real PostgreSQL server and S3 endpoint: proven, recorded, scratch dropped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from baseline_guard.backup.identity import identify
from baseline_guard.backup.manifest import load_manifest
from baseline_guard.errors import ProductionWriteRefused
from baseline_guard.protection.drill import drill_environment, scratch_database
from baseline_guard.protection.drill_records import (
    drill_history,
    load_drill,
    make_drill_id,
    record_drill,
    update_stale_flag,
)
from local_stack.postgres import PG_BIN_DIR

ORDERS = """
CREATE TABLE orders (id serial PRIMARY KEY, amount numeric(10, 2) NOT NULL, note text);
INSERT INTO orders (amount, note) SELECT i * 1.5, 'order ' || i FROM generate_series(1, 1200) i;
CREATE TABLE audit (at timestamptz, what text);
"""
GUESTS = "CREATE TABLE guest AS SELECT i AS id, md5(i::text) AS name FROM generate_series(1, 300) i;"


def _databases(postgres) -> set[str]:
    return set(postgres.psql("SELECT datname FROM pg_database").split())


def _drill(s3_client, bucket, environment, backup_id, conn_info, databases, restore_id, at=None, **kwargs):
    return drill_environment(
        s3_client,
        bucket=bucket,
        environment=environment,
        backup_id=backup_id,
        targets={d: conn_info(d) for d in databases},
        production=kwargs.pop("production", []),
        restore_id=restore_id,
        drill_id=make_drill_id(at or datetime.now(UTC), restore_id),
        pg_bin_dir=PG_BIN_DIR,
        **kwargs,
    )


def test_a_drill_proves_the_backup_in_scratch_databases_and_leaves_the_environment_untouched(
    postgres, s3_client, bucket, conn_info, make_db, take_backup
):
    orders, guests = make_db("orders", ORDERS), make_db("guests", GUESTS)
    backup_id = take_backup("proj-a", [orders, guests])
    postgres.psql("UPDATE orders SET note = 'changed after the backup' WHERE id = 1", orders)
    before = _databases(postgres)

    result = _drill(s3_client, bucket, "proj-a", backup_id, conn_info, [orders, guests], "d0d0aaaa")

    assert result.passed, result.failures()
    by_name = {d.database: d for d in result.databases}
    assert (by_name[orders].tables, by_name[orders].rows) == (2, 1200)
    assert (by_name[guests].tables, by_name[guests].rows) == (1, 300)
    assert "public.orders" in by_name[orders].smoke
    manifest = load_manifest(s3_client, bucket, "proj-a", backup_id)
    assert by_name[orders].sha256 == manifest.database(orders).sha256
    assert all(d.scratch_dropped for d in result.databases)
    assert scratch_database(orders, "d0d0aaaa").startswith(f"{orders}__drill_")
    assert _databases(postgres) == before  # every scratch database dropped, nothing else created
    assert postgres.psql("SELECT note FROM orders WHERE id = 1", orders).strip() == "changed after the backup"
    ledger_rows = postgres.psql(
        f"SELECT count(*) FROM baseline_guard.restore_ledger WHERE target LIKE '{orders}%'", "postgres"
    )
    assert ledger_rows.strip() == "0"


def test_a_corrupt_backup_fails_the_drill_and_the_failure_is_recorded(
    postgres, s3_client, bucket, conn_info, make_db, take_backup
):
    orders, guests = make_db("orders", ORDERS), make_db("guests", GUESTS)
    good = take_backup("proj-b", [orders, guests], at=datetime.now(UTC) - timedelta(days=1))
    good_result = _drill(
        s3_client,
        bucket,
        "proj-b",
        good,
        conn_info,
        [orders, guests],
        "d0d0bbb0",
        at=datetime.now(UTC) - timedelta(hours=1),
    )  # an earlier drill, not the same second
    record_drill(s3_client, bucket, good_result)
    bad = take_backup("proj-b", [orders, guests])
    key = load_manifest(s3_client, bucket, "proj-b", bad).database(guests).key
    data = bytearray(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0x01
    s3_client.put_object(Bucket=bucket, Key=key, Body=bytes(data))
    before = _databases(postgres)

    result = _drill(s3_client, bucket, "proj-b", bad, conn_info, [orders, guests], "d0d0bbbb")
    record_drill(s3_client, bucket, result)

    assert not result.passed
    failed = {d.database: d for d in result.databases if not d.passed}
    assert list(failed) == [guests]
    assert "sha256" in failed[guests].error.lower() or "checksum" in failed[guests].error.lower()
    assert _databases(postgres) == before  # the failed scratch database is gone as well
    stored = load_drill(s3_client, bucket, "proj-b", result.drill_id)
    assert stored is not None and not stored.passed and stored.failures() == result.failures()
    history = drill_history(s3_client, bucket, "proj-b")
    assert history.latest.drill_id == result.drill_id
    assert history.last_proven.backup_id == good  # the last *proven* restore is the earlier one


def test_an_environment_database_that_is_production_s_is_refused_before_any_scratch_database(
    postgres, s3_client, bucket, conn_info, make_db, take_backup
):
    orders = make_db("orders", ORDERS)
    backup_id = take_backup("proj-c", [orders])
    before = _databases(postgres)
    production = [identify(conn_info(orders), "postgres", label="production/orders")]

    result = _drill(
        s3_client, bucket, "proj-c", backup_id, conn_info, [orders], "d0d0cccc", production=production
    )

    assert not result.passed
    assert "ProductionWriteRefused" in result.databases[0].error
    assert _databases(postgres) == before
    with pytest.raises(ProductionWriteRefused):
        _drill(
            s3_client, bucket, "proj-c", backup_id, conn_info, [orders], "d0d0cccd", target_kind="production"
        )


def test_the_stale_flag_is_raised_once_and_cleared_by_a_proven_restore(s3_client, bucket):
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    history = drill_history(s3_client, bucket, "proj-d")
    assert history.is_stale(now)  # never proven

    changes = [
        update_stale_flag(
            s3_client, bucket, "proj-d", stale=True, as_of=now + timedelta(days=i), last_proven_at=None
        )
        for i in range(3)
    ]
    cleared = update_stale_flag(s3_client, bucket, "proj-d", stale=False, as_of=now, last_proven_at=now)

    assert changes == ["raised", "unchanged", "unchanged"]
    assert cleared == "cleared"
