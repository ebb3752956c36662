"""A spooled restore verifies the archive, writes its data offsets, then runs ``pg_restore --jobs``.

Every object is spooled by default (measured faster than streaming); short of disk space, or with
``spool=False``, it is streamed into a serial ``pg_restore``.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from baseline_guard.backup import ExpectedDump, archive_offsets, backup_database, restore_database
from baseline_guard.backup import spool as spooling
from baseline_guard.backup.archive_offsets import (
    BLOCK_TYPES,
    K_OFFSET_POS_NOT_SET,
    K_OFFSET_POS_SET,
    read_head,
)
from baseline_guard.errors import ChecksumMismatch
from local_stack.postgres import PG_BIN_DIR

KEY = "backups/env-a/20250101T000000Z-pre_test-00000000/app.dump"


@dataclass(frozen=True)
class LoggedPgRestore:
    """A bin dir whose ``pg_restore`` logs each command line, then runs the real one.

    Given an archive as ``/dev/fd/N``, it first copies what that path opens (what pg_restore and
    its parallel workers read) to ``seen``, where the path points to ``seen_link``, and what the
    spool directory holds meanwhile to ``spool_listing``.
    """

    bin_dir: Path
    calls: Path
    spool_dir: Path
    seen: Path
    seen_link: Path
    spool_listing: Path


@pytest.fixture
def logged_pg_restore(tmp_path: Path) -> LoggedPgRestore:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    logged = LoggedPgRestore(
        tmp_path / "bin",
        tmp_path / "pg_restore.calls",
        spool_dir,
        tmp_path / "seen.dump",
        tmp_path / "seen.link",
        tmp_path / "spool.listing",
    )
    logged.bin_dir.mkdir()
    script = logged.bin_dir / "pg_restore"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{logged.calls}"\n'
        'for arg in "$@"; do archive=$arg; done\n'
        'case "$archive" in /dev/fd/*)\n'
        f'  cat "$archive" > "{logged.seen}"; readlink "$archive" > "{logged.seen_link}"\n'
        f'  ls -A "{spool_dir}" > "{logged.spool_listing}";;\n'
        "esac\n"
        f'exec "{PG_BIN_DIR / "pg_restore"}" "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    logged.calls.touch()
    return logged


def _restores(calls: Path) -> list[str]:
    """The pg_restore runs that restored something (not the ``--version`` probes)."""
    return [line for line in calls.read_text().splitlines() if "--version" not in line]


@dataclass
class SpoolCase:
    """Backs ``source_db`` up to ``KEY`` and restores it through the logged ``pg_restore``."""

    s3_client: Any
    bucket: str
    conn_info: Callable[[str], Any]
    source_db: str
    pg_restore: LoggedPgRestore

    def backup(self, compression: str = "auto"):
        return backup_database(
            self.s3_client,
            source=self.conn_info(self.source_db),
            bucket=self.bucket,
            key=KEY,
            compression=compression,
            pg_bin_dir=PG_BIN_DIR,
        ).record

    def restore(self, record, target: str, **kw):
        return restore_database(
            self.s3_client,
            bucket=self.bucket,
            key=KEY,
            expected=ExpectedDump.from_record(record),
            target=self.conn_info(target),
            production=[],
            target_kind="project",
            pg_bin_dir=self.pg_restore.bin_dir,
            spool_dir=self.pg_restore.spool_dir,
            **kw,
        )

    def restores(self) -> list[str]:
        return _restores(self.pg_restore.calls)

    def backup_and_restore_spooled(self, target: str, caplog: pytest.LogCaptureFixture):
        """Back up the source (zstd), restore it spooled with two jobs, logging at INFO: (record, result)."""
        record = self.backup()
        with caplog.at_level(logging.INFO, logger="baseline_guard.backup.restore"):
            return record, self.restore(record, target, jobs=2, spool=True)

    @property
    def spool_dir(self) -> Path:
        return self.pg_restore.spool_dir


@pytest.fixture
def case(s3_client, bucket, conn_info, seeded_db, logged_pg_restore) -> SpoolCase:
    return SpoolCase(s3_client, bucket, conn_info, seeded_db, logged_pg_restore)


@pytest.mark.parametrize(
    ("compression", "offsets"),
    [
        ("auto", "Wrote the offsets of 3 data blocks"),
        ("none", "Wrote the offsets of 3 data blocks"),
        ("gzip:6", "keeps its TOC as it is (the data is compressed inside the archive (gzip)"),
    ],
)
def test_by_default_a_restore_is_spooled_and_runs_parallel_pg_restore_and_restores_exactly(
    case, make_db, plain_dump, caplog, compression, offsets
):
    record = case.backup(compression)
    target = make_db("old", "CREATE TABLE stale (x int);")

    with caplog.at_level(logging.INFO, logger="baseline_guard.backup.restore"):
        result = case.restore(record, target, jobs=2)

    assert plain_dump(target) == plain_dump(case.source_db)
    assert result.row_counts == record.row_counts and sum(result.row_counts.values()) == 5502
    (run,) = case.restores()
    assert "--jobs=2" in run.split() and run.split()[-1].startswith("/dev/fd/")
    assert offsets in caplog.text
    assert list(case.spool_dir.iterdir()) == []  # the spool never had a name


def _block_at(archive: bytes, entry, int_size: int) -> bytes:
    return archive[entry.offset : entry.offset + 2 + int_size]


def _block_header(entry, int_size: int) -> bytes:
    kind = BLOCK_TYPES[entry.desc]
    return bytes([kind, 0]) + entry.dump_id.to_bytes(int_size, "little")


def test_a_spooled_zstd_restore_gets_the_data_offsets_and_restores_exactly_with_two_jobs(
    case, pagila_db, make_db, plain_dump, caplog
):
    case.source_db = pagila_db
    target = make_db("old", "CREATE TABLE stale (x int);")

    record, result = case.backup_and_restore_spooled(target, caplog)

    assert plain_dump(target) == plain_dump(pagila_db)  # rows, large objects, the empty partition
    assert result.row_counts == record.row_counts and result.row_counts["public.payment_p2026_07"] == 0
    (run,) = case.restores()
    assert "--jobs=2" in run.split() and run.split()[-1].startswith("/dev/fd/")
    # what pg_restore and its workers open as /dev/fd/N: every data block's offset, each pointing
    # at that block's header
    seen = case.pg_restore.seen.read_bytes()
    head = read_head(seen)
    assert {e.offset_flag for e in head.data_entries} == {K_OFFSET_POS_SET}
    assert all(
        _block_at(seen, e, head.int_size) == _block_header(e, head.int_size) for e in head.data_entries
    )
    assert f"Wrote the offsets of {len(head.data_entries)} data blocks" in caplog.text
    # the spool never had a name: not while pg_restore ran, not after
    assert case.pg_restore.seen_link.read_text().strip().endswith("(deleted)")
    assert case.pg_restore.spool_listing.read_text() == ""
    assert list(case.spool_dir.iterdir()) == []


def test_an_archive_whose_blocks_are_not_found_for_certain_is_restored_as_it_came(
    case, pagila_db, make_db, plain_dump, caplog, monkeypatch
):
    monkeypatch.setattr(archive_offsets, "MINOR_VERSIONS", range(12, 16))  # as if 1.16 were unknown
    case.source_db = pagila_db
    target = make_db("old")

    case.backup_and_restore_spooled(target, caplog)

    assert plain_dump(target) == plain_dump(pagila_db)
    assert "keeps its TOC as it is (archive version 1.16.0" in caplog.text
    monkeypatch.undo()
    head = read_head(case.pg_restore.seen.read_bytes())
    assert {e.offset_flag for e in head.data_entries} == {K_OFFSET_POS_NOT_SET}


def test_offsets_written_part_way_leave_an_archive_pg_restore_reads_exactly(
    case, pagila_db, make_db, plain_dump, caplog, monkeypatch
):
    real_pwrite, calls = os.pwrite, []

    def pwrite_failing_at_41(fd: int, data: bytes, position: int) -> int:
        calls.append(position)
        if len(calls) == 41:  # 20 entries complete, the 21st with its offset but not its flag
            raise OSError(errno.EIO, "Input/output error")
        return real_pwrite(fd, data, position)

    monkeypatch.setattr(archive_offsets.os, "pwrite", pwrite_failing_at_41)
    case.source_db = pagila_db
    target = make_db("old")

    case.backup_and_restore_spooled(target, caplog)

    assert plain_dump(target) == plain_dump(pagila_db)
    assert "failed part way: [Errno 5] Input/output error" in caplog.text
    flags = [e.offset_flag for e in read_head(case.pg_restore.seen.read_bytes()).data_entries]
    assert flags[:20] == [K_OFFSET_POS_SET] * 20 and set(flags[20:]) == {K_OFFSET_POS_NOT_SET}


def test_a_corrupt_object_is_refused_before_pg_restore_starts_and_leaves_no_copy(
    case, s3_client, bucket, make_db, plain_dump, database_names
):
    record = case.backup()
    data = bytearray(s3_client.get_object(Bucket=bucket, Key=KEY)["Body"].read())
    data[len(data) // 2] ^= 0x01  # same size: only the checksum or the zstd frame can tell
    s3_client.put_object(Bucket=bucket, Key=KEY, Body=bytes(data))
    target = make_db("keep", "CREATE TABLE precious (v text); INSERT INTO precious VALUES ('old data');")
    before = plain_dump(target)

    with pytest.raises(ChecksumMismatch) as caught:
        case.restore(record, target, spool=True)

    assert KEY in str(caught.value)
    assert case.restores() == []
    assert plain_dump(target) == before
    assert {n for n in database_names() if n.startswith(f"{target}__")} == set()


@pytest.mark.parametrize("short", ["before_spooling", "while_spooling"])
def test_too_little_spool_space_falls_back_to_streaming(
    case, make_db, plain_dump, monkeypatch, caplog, short
):
    record = case.backup()
    # before: not even the object fits; while: the estimate fits, the archive (larger) does not
    spare = 10 if short == "before_spooling" else record.size + 1
    monkeypatch.setattr(spooling, "free_bytes", lambda _dir: spooling.KEEP_FREE + spare)
    monkeypatch.setattr(spooling, "ZSTD_SIZE_ESTIMATE", 1)
    target = make_db("old", "CREATE TABLE stale (x int);")

    with caplog.at_level(logging.INFO, logger="baseline_guard.backup.restore"):
        result = case.restore(record, target, spool=True)

    assert plain_dump(target) == plain_dump(case.source_db)
    assert result.row_counts == record.row_counts
    (run,) = case.restores()
    assert "--jobs" not in run and "/dev/fd/" not in run  # serial, from its standard input
    assert "streaming it into a serial pg_restore" in caplog.text
    assert ("outgrew" in caplog.text) == (short == "while_spooling")


def test_a_disk_that_fills_up_while_spooling_falls_back_to_streaming(
    case, make_db, plain_dump, monkeypatch, caplog
):
    record = case.backup()
    target = make_db("old")
    # the spool's writes get what a full disk answers: /dev/full fails every write with ENOSPC
    monkeypatch.setattr(spooling.tempfile, "TemporaryFile", lambda **_kw: open("/dev/full", "w+b"))  # noqa: SIM115

    with caplog.at_level(logging.INFO, logger="baseline_guard.backup.restore"):
        case.restore(record, target)

    assert plain_dump(target) == plain_dump(case.source_db)
    assert "filled up while spooling: No space left on device" in caplog.text
    (run,) = case.restores()
    assert "--jobs" not in run and "/dev/fd/" not in run


def test_a_restore_asked_not_to_spool_streams_into_a_serial_pg_restore(case, make_db, plain_dump):
    record = case.backup()
    target = make_db("old")

    case.restore(record, target, spool=False)

    assert record.codec == "zstd"
    assert plain_dump(target) == plain_dump(case.source_db)
    (run,) = case.restores()
    assert "--jobs" not in run and "/dev/fd/" not in run
