"""Dumps compressed outside pg_dump (zstd), and backups in the format written before it, restore exactly."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
from datetime import UTC, datetime

import pytest
import zstandard
from baseline_guard.backup import ExpectedDump, backup_database, restore_database
from baseline_guard.backup.codec import CorruptDump, decompressing_reader, zstd_chunks
from baseline_guard.backup.manifest import load_record, record_key
from baseline_guard.backup.s3io import MIB
from baseline_guard.errors import ChecksumMismatch, InvalidInput, PgToolFailed
from local_stack.postgres import PG_BIN_DIR

KEY = "backups/env-a/20250101T000000Z-pre_test-00000000/app.dump"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
LARGE_OBJECTS_SQL = """
SELECT lo_from_bytea(424242, convert_to(repeat('large object 大对象 ', 5000), 'UTF8'));
CREATE TABLE shop.scan (id int PRIMARY KEY, pdf oid, content bytea);
INSERT INTO shop.scan VALUES (1, 424242, decode(repeat('00ff10', 3000), 'hex'));
"""
# ~13 MB of COPY text that zstd shrinks only to about half: hex of SHA-256 output
INCOMPRESSIBLE_SQL = (
    "CREATE TABLE noise AS SELECT i, sha256(int8send(i)) AS h FROM generate_series(1, 200000) i;"
)


def _restore(s3_client, bucket, conn_info, key, expected, target, **kw):
    return restore_database(
        s3_client,
        bucket=bucket,
        key=key,
        expected=expected,
        target=conn_info(target),
        production=[],
        target_kind="project",
        pg_bin_dir=PG_BIN_DIR,
        **kw,
    )


def _leftovers(database_names, database: str) -> set[str]:
    return {n for n in database_names() if n.startswith(f"{database}__")}


def test_default_backup_is_a_zstd_frame_of_the_archive_and_restores_exactly(
    postgres, s3_client, bucket, conn_info, seeded_db, make_db, plain_dump, database_names
):
    postgres.psql(LARGE_OBJECTS_SQL, seeded_db)
    record = backup_database(
        s3_client, source=conn_info(seeded_db), bucket=bucket, key=KEY, pg_bin_dir=PG_BIN_DIR
    ).record

    data = s3_client.get_object(Bucket=bucket, Key=KEY)["Body"].read()
    assert (record.codec, record.compression) == ("zstd", "zstd:3")
    assert (hashlib.sha256(data).hexdigest(), len(data)) == (record.sha256, record.size)
    assert data[:4] == ZSTD_MAGIC
    archive = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    assert archive[:5] == b"PGDMP" and len(archive) > len(data)
    assert load_record(s3_client, bucket, KEY) == record  # the codec is in the stored record

    target = make_db("zstd", "CREATE TABLE stale (x int);")
    result = _restore(s3_client, bucket, conn_info, KEY, ExpectedDump.from_record(record), target)

    assert plain_dump(target) == plain_dump(seeded_db)  # includes the large object's data
    assert result.row_counts == record.row_counts and result.size == record.size
    check = (
        "SELECT md5(string_agg(md5(coalesce(avatar, '')) || name || coalesce(profile::text, ''), ',' ORDER BY id))"
        " FROM shop.customer"
    )
    assert postgres.psql(check, target) == postgres.psql(check, seeded_db)
    assert postgres.psql(
        "SELECT length(lo_get(424242)), md5(content) FROM shop.scan", target
    ) == postgres.psql("SELECT length(lo_get(424242)), md5(content) FROM shop.scan", seeded_db)
    assert _leftovers(database_names, target) == set()


def test_a_zstd_dump_larger_than_a_part_is_uploaded_in_parts_and_restores(
    postgres, s3_client, bucket, conn_info, make_db
):
    source = make_db("noise", INCOMPRESSIBLE_SQL)
    record = backup_database(
        s3_client, source=conn_info(source), bucket=bucket, key=KEY, part_size=5 * MIB, pg_bin_dir=PG_BIN_DIR
    ).record

    assert record.codec == "zstd" and record.size > 5 * MIB
    etag = s3_client.head_object(Bucket=bucket, Key=KEY)["ETag"].strip('"')
    assert etag.endswith(f"-{-(-record.size // (5 * MIB))}")  # multipart: one part per 5 MiB

    target = make_db("parts")
    _restore(s3_client, bucket, conn_info, KEY, ExpectedDump.from_record(record), target)
    digest = "SELECT count(*), md5(string_agg(h::text, '' ORDER BY i)) FROM noise"
    assert postgres.psql(digest, target) == postgres.psql(digest, source)


def test_a_backup_in_the_format_written_before_zstd_still_restores(
    postgres, s3_client, bucket, conn_info, seeded_db, make_db, plain_dump
):
    """The earlier engine uploaded pg_dump's own gzip archive and a record without a codec field."""
    archive = subprocess.run(
        [str(PG_BIN_DIR / "pg_dump"), "-Fc", "--compress=6", "-d", seeded_db],
        capture_output=True,
        env=postgres.env(),
        check=True,
        timeout=120,
    ).stdout
    s3_client.put_object(Bucket=bucket, Key=KEY, Body=archive)
    old_record = {
        "key": KEY,
        "database": seeded_db,
        "service": None,
        "size": len(archive),
        "sha256": hashlib.sha256(archive).hexdigest(),
        "compression": "gzip:6",
        "pg_dump_version": "18.6",
        "server_version": "18 (180006)",
        "table_count": 3,
        "row_counts": {"public.settings": 2, "shop.customer": 1500, "shop.orders": 4000},
        "row_counts_exact": True,
        "server_side_encryption": None,
        "started_at": datetime(2025, 1, 1, tzinfo=UTC).isoformat(),
        "finished_at": datetime(2025, 1, 1, 0, 1, tzinfo=UTC).isoformat(),
    }
    s3_client.put_object(Bucket=bucket, Key=record_key(KEY), Body=json.dumps(old_record).encode())

    record = load_record(s3_client, bucket, KEY)
    assert record is not None and record.codec == "none"
    target = make_db("old", "CREATE TABLE stale (x int);")
    result = _restore(s3_client, bucket, conn_info, KEY, ExpectedDump.from_record(record), target)

    assert plain_dump(target) == plain_dump(seeded_db)
    assert result.row_counts == old_record["row_counts"]


@pytest.mark.parametrize("spool", [True, False], ids=["spooled", "streamed"])
@pytest.mark.parametrize("damage", ["byte_flipped", "truncated"])
def test_a_damaged_zstd_object_is_refused_and_the_target_keeps_its_data(
    postgres, s3_client, bucket, conn_info, seeded_db, make_db, plain_dump, database_names, damage, spool
):
    record = backup_database(
        s3_client, source=conn_info(seeded_db), bucket=bucket, key=KEY, pg_bin_dir=PG_BIN_DIR
    ).record
    data = bytearray(s3_client.get_object(Bucket=bucket, Key=KEY)["Body"].read())
    if damage == "byte_flipped":
        data[len(data) // 2] ^= 0x01
    else:
        del data[len(data) * 2 // 3 :]
    s3_client.put_object(Bucket=bucket, Key=KEY, Body=bytes(data))
    target = make_db("keep", "CREATE TABLE precious (v text); INSERT INTO precious VALUES ('old data');")
    before = plain_dump(target)
    # Without the size, the damage must be found while spooling or streaming, not by the size check.
    expected = ExpectedDump(sha256=record.sha256, row_counts=record.row_counts, codec="zstd")

    with pytest.raises((ChecksumMismatch, PgToolFailed)) as caught:
        _restore(s3_client, bucket, conn_info, KEY, expected, target, spool=spool)

    message = str(caught.value) + "".join(getattr(caught.value, "__notes__", []))
    assert KEY in message
    assert "does not decompress" in message or "sha256" in message
    assert plain_dump(target) == before
    assert _leftovers(database_names, target) == set()


def test_zstd_stream_round_trip_reads_in_bounded_pieces():
    payload = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(100_000)) + b"a" * (
        8 * MIB
    )
    compressed = b"".join(zstd_chunks(io.BytesIO(payload), level=3, threads=2, read_size=256 * 1024))
    assert len(compressed) < len(payload) // 2

    reader = decompressing_reader(io.BytesIO(compressed), "zstd", "s3://b/k", read_size=64 * 1024)
    pieces = list(iter(lambda: reader.read(MIB), b""))
    assert b"".join(pieces) == payload
    assert max(len(p) for p in pieces) <= MIB  # 8 MiB of 'a' came out in pieces, not at once


def test_decompressing_refuses_what_is_not_a_zstd_frame_and_unknown_codecs():
    plain = io.BytesIO(b"PGDMP" + b"\0" * 100)
    with pytest.raises(CorruptDump, match=r"s3://b/k does not decompress"):
        decompressing_reader(plain, "zstd", "s3://b/k").read(MIB)
    assert decompressing_reader(io.BytesIO(b"PGDMP"), "none", "s3://b/k").read(MIB) == b"PGDMP"
    with pytest.raises(InvalidInput, match="expected one of none, zstd"):
        decompressing_reader(io.BytesIO(b""), "brotli", "s3://b/k")
