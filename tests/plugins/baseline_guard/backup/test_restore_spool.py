"""A spooled restore verifies the archive, then runs ``pg_restore --jobs``; short of disk space it streams.

By default old-format objects are spooled and zstd objects streamed (measured faster for each).
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from baseline_guard.backup import ExpectedDump, backup_database, restore_database
from baseline_guard.backup import spool as spooling
from baseline_guard.errors import ChecksumMismatch
from local_stack.postgres import PG_BIN_DIR

KEY = "backups/env-a/20250101T000000Z-pre_test-00000000/app.dump"


@pytest.fixture
def logged_pg_restore(tmp_path: Path) -> tuple[Path, Path]:
    """A bin dir whose ``pg_restore`` writes each of its command lines to a log, then runs the real one."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "pg_restore.calls"
    bin_dir.mkdir()
    script = bin_dir / "pg_restore"
    script.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\nexec "{PG_BIN_DIR / "pg_restore"}" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    calls.touch()
    return bin_dir, calls


def _restores(calls: Path) -> list[str]:
    """The pg_restore runs that restored something (not the ``--version`` probes)."""
    return [line for line in calls.read_text().splitlines() if "--version" not in line]


@dataclass
class SpoolCase:
    """Backs ``seeded_db`` up to ``KEY`` and restores it through the logged ``pg_restore``."""

    s3_client: Any
    bucket: str
    conn_info: Callable[[str], Any]
    seeded_db: str
    bin_dir: Path
    calls: Path
    spool_dir: Path

    def backup(self, compression: str = "auto"):
        return backup_database(
            self.s3_client,
            source=self.conn_info(self.seeded_db),
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
            pg_bin_dir=self.bin_dir,
            spool_dir=self.spool_dir,
            **kw,
        )

    def restores(self) -> list[str]:
        return _restores(self.calls)


@pytest.fixture
def case(s3_client, bucket, conn_info, seeded_db, logged_pg_restore, tmp_path) -> SpoolCase:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    return SpoolCase(s3_client, bucket, conn_info, seeded_db, *logged_pg_restore, spool_dir)


@pytest.mark.parametrize(("compression", "spool"), [("auto", True), ("gzip:6", None)])
def test_a_spooled_restore_runs_parallel_pg_restore_and_restores_exactly(
    case, make_db, plain_dump, compression, spool
):
    record = case.backup(compression)
    target = make_db("old", "CREATE TABLE stale (x int);")

    result = case.restore(record, target, jobs=2, spool=spool)

    assert plain_dump(target) == plain_dump(case.seeded_db)
    assert result.row_counts == record.row_counts and sum(result.row_counts.values()) == 5502
    (run,) = case.restores()
    assert "--jobs=2" in run.split() and run.split()[-1].startswith("/dev/fd/")
    assert list(case.spool_dir.iterdir()) == []  # the spool never had a name


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

    assert plain_dump(target) == plain_dump(case.seeded_db)
    assert result.row_counts == record.row_counts
    (run,) = case.restores()
    assert "--jobs" not in run and "/dev/fd/" not in run  # serial, from its standard input
    assert "streaming it into a serial pg_restore" in caplog.text
    assert ("outgrew" in caplog.text) == (short == "while_spooling")


def test_by_default_a_zstd_object_is_streamed(case, make_db, plain_dump):
    record = case.backup()
    target = make_db("old")

    case.restore(record, target)

    assert record.codec == "zstd"
    assert plain_dump(target) == plain_dump(case.seeded_db)
    (run,) = case.restores()
    assert "--jobs" not in run and "/dev/fd/" not in run
