"""Backup to the real S3 endpoint and restore into the real PostgreSQL server."""

from __future__ import annotations

import hashlib

import pytest
from baseline_guard.backup import ExpectedDump, ServerSideEncryption, backup_database, restore_database
from baseline_guard.errors import (
    ChecksumMismatch,
    PgToolFailed,
    ProductionWriteRefused,
    RestoreVerificationFailed,
)
from local_stack.postgres import PG_BIN_DIR


def _backup(s3_client, bucket, conn_info, database, key="backups/env-a/x/db.dump", **kwargs):
    return backup_database(
        s3_client, source=conn_info(database), bucket=bucket, key=key, pg_bin_dir=PG_BIN_DIR, **kwargs
    )


def _leftovers(database_names, database: str) -> set[str]:
    return {n for n in database_names() if n.startswith(f"{database}__")}


def test_backup_then_restore_into_empty_database_reproduces_the_source(
    postgres, s3_client, bucket, conn_info, seeded_db, make_db, plain_dump, database_names
):
    seen: list[int] = []
    outcome = _backup(
        s3_client,
        bucket,
        conn_info,
        seeded_db,
        compression="gzip:6",
        progress=lambda p: seen.append(p.bytes_done),
        progress_every=64 * 1024,
    )
    record = outcome.record

    body = s3_client.get_object(Bucket=bucket, Key=record.key)
    data = body["Body"].read()
    assert body["ServerSideEncryption"] == "AES256"
    assert (hashlib.sha256(data).hexdigest(), len(data)) == (record.sha256, record.size)
    assert data[:5] == b"PGDMP"
    assert record.row_counts == {"public.settings": 2, "shop.customer": 1500, "shop.orders": 4000}
    assert record.table_count == 3 and record.row_counts_exact
    assert record.compression == "gzip:6" and record.pg_dump_version.startswith("18")
    assert seen and seen[-1] == record.size

    target = make_db("empty")
    result = restore_database(
        s3_client,
        bucket=bucket,
        key=record.key,
        expected=ExpectedDump.from_record(record),
        target=conn_info(target),
        production=[],
        target_kind="project",
        pg_bin_dir=PG_BIN_DIR,
    )

    assert plain_dump(target) == plain_dump(seeded_db)
    assert result.row_counts == record.row_counts and result.replaced_existing
    assert postgres.psql("SELECT last_value FROM shop.orders_id_seq", target).strip() == "5000"
    assert _leftovers(database_names, target) == set()


def test_restore_replaces_existing_data_and_ends_open_sessions(
    postgres, s3_client, bucket, conn_info, seeded_db, make_db, plain_dump, database_names
):
    record = _backup(s3_client, bucket, conn_info, seeded_db, compression="none").record
    target = make_db("busy", "CREATE TABLE stale (x int); INSERT INTO stale VALUES (1);")
    session = conn_info(target).connect()  # an application still connected to the old database
    try:
        restore_database(
            s3_client,
            bucket=bucket,
            key=record.key,
            expected=ExpectedDump.from_record(record),
            target=conn_info(target),
            production=[],
            target_kind="baseline",
            pg_bin_dir=PG_BIN_DIR,
        )
    finally:
        session.close()
    assert plain_dump(target) == plain_dump(seeded_db)
    assert _leftovers(database_names, target) == set()


@pytest.mark.parametrize(
    ("tampering", "refusal"),
    [("other_valid_dump", ChecksumMismatch), ("one_byte_flipped", (ChecksumMismatch, PgToolFailed))],
)
def test_tampered_object_is_refused_and_target_keeps_its_data(
    postgres, s3_client, bucket, conn_info, seeded_db, make_db, tampering, refusal, plain_dump, database_names
):
    record = _backup(s3_client, bucket, conn_info, seeded_db, compression="none").record
    if tampering == "other_valid_dump":
        other = make_db("other", "CREATE TABLE shop_orders (id int); INSERT INTO shop_orders VALUES (7);")
        forged = _backup(s3_client, bucket, conn_info, other, key="elsewhere/other.dump", compression="none")
        data = s3_client.get_object(Bucket=bucket, Key=forged.record.key)["Body"].read()
        expected = ExpectedDump(sha256=record.sha256)  # size unknown to the caller: only the hash can tell
    else:
        data = bytearray(s3_client.get_object(Bucket=bucket, Key=record.key)["Body"].read())
        data[len(data) // 2] ^= 0x01
        expected = ExpectedDump.from_record(record)
    s3_client.put_object(Bucket=bucket, Key=record.key, Body=bytes(data))
    target = make_db("keep", "CREATE TABLE precious (v text); INSERT INTO precious VALUES ('old data');")
    before = plain_dump(target)

    with pytest.raises(refusal) as caught:
        restore_database(
            s3_client,
            bucket=bucket,
            key=record.key,
            expected=expected,
            target=conn_info(target),
            production=[],
            target_kind="project",
            pg_bin_dir=PG_BIN_DIR,
        )

    message = str(caught.value) + "".join(getattr(caught.value, "__notes__", []))
    assert "sha256" in message
    assert plain_dump(target) == before
    assert _leftovers(database_names, target) == set()


def test_restore_that_does_not_match_the_manifest_row_counts_is_not_swapped_in(
    postgres, s3_client, bucket, conn_info, seeded_db, make_db, plain_dump, database_names
):
    record = _backup(s3_client, bucket, conn_info, seeded_db, compression="none").record
    lying = ExpectedDump.from_record(
        record.model_copy(update={"row_counts": {**record.row_counts, "shop.orders": 4001}})
    )
    target = make_db("keep", "CREATE TABLE precious (v text); INSERT INTO precious VALUES ('old data');")

    with pytest.raises(RestoreVerificationFailed, match=r"shop.orders 4001 != 4000"):
        restore_database(
            s3_client,
            bucket=bucket,
            key=record.key,
            expected=lying,
            target=conn_info(target),
            production=[],
            target_kind="project",
            pg_bin_dir=PG_BIN_DIR,
        )

    assert postgres.psql("SELECT v FROM precious", target).strip() == "old data"
    assert _leftovers(database_names, target) == set()


def test_restore_aimed_at_production_is_refused_before_anything_is_written(
    postgres, s3_client, bucket, conn_info, seeded_db, make_db, plain_dump, database_names
):
    record = _backup(s3_client, bucket, conn_info, seeded_db, compression="none").record
    target = make_db("prod", "CREATE TABLE precious (v text); INSERT INTO precious VALUES ('prod data');")
    databases_before = database_names()

    with pytest.raises(ProductionWriteRefused, match="production"):
        restore_database(
            s3_client,
            bucket=bucket,
            key=record.key,
            expected=ExpectedDump.from_record(record),
            target=conn_info(target),
            production=[],
            target_kind="production",
            pg_bin_dir=PG_BIN_DIR,
        )

    assert database_names() == databases_before
    assert postgres.psql("SELECT v FROM precious", target).strip() == "prod data"


def test_restore_of_a_database_that_does_not_exist_yet_creates_it(
    postgres, s3_client, bucket, conn_info, seeded_db, plain_dump, database_names
):
    record = _backup(s3_client, bucket, conn_info, seeded_db, compression="none").record
    target = f"fresh_{record.sha256[:8]}"
    assert target not in database_names()

    result = restore_database(
        s3_client,
        bucket=bucket,
        key=record.key,
        expected=ExpectedDump.from_record(record),
        target=conn_info(target),
        production=[],
        target_kind=None,
        pg_bin_dir=PG_BIN_DIR,
    )

    assert not result.replaced_existing
    assert plain_dump(target) == plain_dump(seeded_db)


def test_kms_encryption_is_applied_to_dump_and_record(s3_client, bucket, conn_info, seeded_db):
    sse = ServerSideEncryption("aws:kms", "alias/backups")
    record = _backup(s3_client, bucket, conn_info, seeded_db, compression="none", sse=sse).record
    dump_head = s3_client.head_object(Bucket=bucket, Key=record.key)
    record_head = s3_client.head_object(Bucket=bucket, Key=record.key.removesuffix(".dump") + ".dump.json")
    assert dump_head["ServerSideEncryption"] == record_head["ServerSideEncryption"] == "aws:kms"
    assert record.server_side_encryption == "aws:kms"


def test_rows_written_during_the_dump_are_neither_dumped_nor_counted(
    postgres, s3_client, bucket, conn_info, seeded_db, make_db
):
    writes: list[int] = []

    def write_while_dumping(progress) -> None:
        if not writes:
            postgres.psql(
                "INSERT INTO shop.orders (customer_id, amount) SELECT 1, 1 FROM generate_series(1, 25)",
                seeded_db,
            )
        writes.append(progress.bytes_done)

    record = _backup(
        s3_client,
        bucket,
        conn_info,
        seeded_db,
        compression="none",
        progress=write_while_dumping,
        progress_every=16 * 1024,
    ).record

    assert len(writes) > 1  # the insert committed while the dump was still streaming
    assert postgres.psql("SELECT count(*) FROM shop.orders", seeded_db).strip() == "4025"
    assert record.row_counts["shop.orders"] == 4000
    target = make_db("snap")
    result = restore_database(
        s3_client,
        bucket=bucket,
        key=record.key,
        expected=ExpectedDump.from_record(record),
        target=conn_info(target),
        production=[],
        target_kind="project",
        pg_bin_dir=PG_BIN_DIR,
    )
    assert result.row_counts["shop.orders"] == 4000
