"""Offsets found in the archive our backup streams are the ones ``pg_dump -f`` writes; else none are written.

The material is the pagila sample schema with rows (see ``pagila_data.py``), dumped by the
project's PostgreSQL 18 client tools: once by our backup (``pg_dump -Fc -Z0`` into a pipe, zstd
outside pg_dump, to S3 over HTTP), once by ``pg_dump -Fc -Z0 --file``.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard
from baseline_guard.backup import DumpRecord, PgConnectionInfo, backup_database
from baseline_guard.backup import archive_offsets as offsets_module
from baseline_guard.backup import spool as spooling
from baseline_guard.backup.archive_offsets import (
    K_OFFSET_NO_DATA,
    K_OFFSET_POS_NOT_SET,
    K_OFFSET_POS_SET,
    ArchiveHead,
    DataOffsetFinder,
    NotPatchable,
    read_head,
)
from baseline_guard.backup.dump import ProgressMeter
from local_stack.postgres import PG_BIN_DIR, LocalPostgres
from local_stack.s3 import LocalS3
from pagila_data import fill_pagila

KEY = "backups/env-a/20250101T000000Z-pre_test-00000000/pagila.dump"


@dataclass(frozen=True)
class Dumps:
    """The same database dumped three ways, and the record of our backup."""

    bucket: str
    record: DumpRecord
    piped: bytes  # what our backup streamed: the zstd object, decompressed
    file: bytes  # pg_dump -Fc -Z0 --file
    gzip: bytes  # pg_dump -Fc --file (pg_dump's own compression)


def _pg_dump_to_file(postgres: LocalPostgres, database: str, path: Path, *args: str) -> bytes:
    subprocess.run(
        [str(PG_BIN_DIR / "pg_dump"), "--format=custom", *args, f"--file={path}", database],
        env=postgres.env(),
        check=True,
        capture_output=True,
        timeout=120,
    )
    return path.read_bytes()


@pytest.fixture(scope="module")
def dumps(postgres: LocalPostgres, s3: LocalS3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dumps]:
    database = f"pagila_{secrets.token_hex(4)}"
    postgres.create_database(database)
    source = PgConnectionInfo(
        host=postgres.host,
        port=postgres.port,
        user=postgres.user,
        password=postgres.password,
        database=database,
    )
    fill_pagila(source)
    client, bucket = s3.client(), f"bg-offsets-{secrets.token_hex(4)}"
    client.create_bucket(Bucket=bucket)
    record = backup_database(client, source=source, bucket=bucket, key=KEY, pg_bin_dir=PG_BIN_DIR).record
    stored = client.get_object(Bucket=bucket, Key=KEY)["Body"].read()
    work = tmp_path_factory.mktemp("dumps")
    yield Dumps(
        bucket=bucket,
        record=record,
        piped=zstandard.ZstdDecompressor().stream_reader(stored).read(),
        file=_pg_dump_to_file(postgres, database, work / "file.dump", "--compress=0"),
        gzip=_pg_dump_to_file(postgres, database, work / "gzip.dump"),
    )
    postgres.psql(f'DROP DATABASE "{database}" WITH (FORCE)')


def _offsets(head: ArchiveHead) -> dict[int, tuple[int, int]]:
    return {e.dump_id: (e.offset_flag, e.offset) for e in head.entries}


def _patched(archive: bytes, chunk: int) -> bytes:
    finder = DataOffsetFinder()
    for at in range(0, len(archive), chunk):
        finder.feed(archive[at : at + chunk])
    result = bytearray(archive)
    for position, data in finder.patch().writes:
        result[position : position + len(data)] = data
    return bytes(result)


def test_the_spooled_archive_gets_the_offsets_pg_dump_writes_into_a_file(dumps, s3, tmp_path):
    piped, file = read_head(dumps.piped), read_head(dumps.file)
    # what is being compared: a pipe gave pg_dump no offsets to write; the file has them all
    assert dumps.record.codec == "zstd" and file.compression == "none" and file.version[:2] == (1, 16)
    assert {e.offset_flag for e in piped.data_entries} == {K_OFFSET_POS_NOT_SET}
    assert {e.offset_flag for e in file.data_entries} == {K_OFFSET_POS_SET}
    assert {e.offset_flag for e in piped.entries if not e.had_dumper} == {K_OFFSET_NO_DATA}
    tables = {e.tag for e in piped.data_entries if e.desc == "TABLE DATA"}
    assert {"film", "staff", "payment_p2022_01", "payment_p2026_07", "film_embedding"} <= tables
    assert [e.desc for e in piped.data_entries].count("BLOBS") == 2  # 1,194 large objects

    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    with spooling.spooled_object(
        s3.client(),
        dumps.bucket,
        KEY,
        "zstd",
        size_limit=dumps.record.size,
        spool_dir=spool_dir,
        budget=10 * len(dumps.file),
        meter=ProgressMeter(None, 1 << 20),
    ) as spooled:
        assert (spooled.stored.hexdigest(), spooled.stored.size) == (dumps.record.sha256, dumps.record.size)
        blocks = spooling.write_data_offsets(spooled)
        patched = spooled.file.read()

    assert blocks == len(file.data_entries)
    assert _offsets(read_head(patched)) == _offsets(file)
    start, end = file.created_span  # the creation time is the one thing that differs
    assert len(patched) == len(dumps.file)
    assert patched[:start] == dumps.file[:start] and patched[end:] == dumps.file[end:]


@pytest.mark.parametrize("chunk", [5, 13, 4099])
def test_blocks_are_found_wherever_the_bytes_are_cut(dumps, chunk):
    # 5 bytes: every end marker and block header is cut somewhere; 13 and 4099: at odd places
    patched = _patched(dumps.piped, chunk)

    assert _offsets(read_head(patched)) == _offsets(read_head(dumps.file))


def _data_block(dumps: Dumps, tag: str) -> int:
    (entry,) = (e for e in read_head(dumps.file).data_entries if e.tag == tag)
    return entry.offset


def _with_bytes(archive: bytes, at: int, data: bytes) -> bytes:
    return archive[:at] + data + archive[at + len(data) :]


REFUSALS = {
    "a file written by pg_dump -f": (lambda d: d.file, "already has its data offsets"),
    "compressed by pg_dump": (lambda d: d.gzip, r"compressed inside the archive \(gzip\)"),
    "not an archive": (lambda d: b"-- PostgreSQL database dump\n" * 100, "no PGDMP signature"),
    "a newer archive version": (lambda d: _with_bytes(d.piped, 6, b"\x11"), "archive version 1.17"),
    "cut inside the TOC": (lambda d: d.piped[:2000], "ends inside its header or TOC"),
    "cut inside a block": (lambda d: d.piped[:-3], r"ends at byte \d+, in a large object's OID"),
    "bytes after the last block": (lambda d: d.piped + b"\0", "1 bytes after the last data block"),
    "a block of another type": (
        lambda d: _with_bytes(d.piped, _data_block(d, "film"), b"\x03"),
        r"expected the data block of TOC entry \d+ \(TABLE DATA film\)",
    ),
    "NUL bytes inside table data": (
        lambda d: _with_bytes(d.piped, _data_block(d, "film") + 100, b"\0" * 5),
        r"expected the data block of TOC entry \d+ \(TABLE DATA film_actor\)",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_an_archive_not_known_for_certain_gets_no_offsets_and_says_why(dumps, case):
    archive_of, reason = REFUSALS[case]
    finder = DataOffsetFinder()
    archive = archive_of(dumps)
    for at in range(0, len(archive), 65536):
        finder.feed(archive[at : at + 65536])

    with pytest.raises(NotPatchable, match=reason):
        finder.patch()


def test_a_toc_longer_than_the_limit_is_not_held_in_memory(dumps, monkeypatch):
    monkeypatch.setattr(offsets_module, "TOC_LIMIT", 4096)
    finder = DataOffsetFinder()
    for at in range(0, len(dumps.piped), 1024):
        finder.feed(dumps.piped[at : at + 1024])

    with pytest.raises(NotPatchable, match="header and TOC longer than"):
        finder.patch()
