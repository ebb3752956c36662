"""Benchmark: streaming backup/restore against bare pg_dump/pg_restore on a ~1 GB database.

Builds a pgbench database (``-s 70`` is about 1 GB) on its own PostgreSQL in a temp dir, starts
moto as a separate process (so this process's memory is only ours), then times, in one run:

- bare ``pg_dump -Fc`` to a local file vs ``backup_database`` streaming to the S3 endpoint
  (same compression; ours also hashes, counts rows in the dump's snapshot and uploads);
- bare ``pg_restore`` from that file into an empty database vs ``restore_database`` streaming
  from S3 into a fresh database, checking SHA-256 and row counts, then swapping it in.

Our restore ends with its data flushed (DROP DATABASE of the replaced database forces a
checkpoint), so it is also compared with bare ``pg_restore`` followed by ``CHECKPOINT``.
Before each timed step a CHECKPOINT and sync flush what the previous step left dirty, so neither
side pays for the other's write-back. Peak memory is this process's RSS (sampled during each phase, and ``ru_maxrss``).

    .venv/bin/python bench/backup.py [--scale 70] [--repeat 3] [--compression auto] [--part-size-mib 16]

Goals: backup <= 1.15x bare pg_dump, restore <= 1.15x bare pg_restore, peak RSS < 200 MB.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import psutil
from baseline_guard.backup import (
    DumpRecord,
    ExpectedDump,
    PgConnectionInfo,
    backup_database,
    restore_database,
)
from baseline_guard.backup.pgtools import resolve_compression, tool_version
from baseline_guard.backup.s3io import MIB
from local_stack.ports import free_port
from local_stack.postgres import PG_BIN_DIR, LocalPostgres
from local_stack.s3 import ACCESS_KEY, REGION, SECRET_KEY

MB = 1_000_000


class PeakRss:
    """Samples this process's RSS every 20 ms while a phase runs."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()

    @contextmanager
    def watch(self) -> Iterator[PeakRss]:
        self.peak = self._proc.memory_info().rss
        self._stop.clear()
        thread = threading.Thread(target=self._sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._proc.memory_info().rss)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(argv: list[str], pg: LocalPostgres) -> None:
    out = subprocess.run(argv, env=pg.env(), capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{Path(argv[0]).name} failed: {out.stderr.strip()}")


def start_moto(port: int, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"moto did not start: see {log}")


class Bench:
    """One database, one S3 endpoint; each method times one side and records it."""

    BUCKET = "bench-backups"

    def __init__(self, pg: LocalPostgres, s3: object, compression: str, part_size: int, work: Path) -> None:
        self.pg, self.s3, self.part_size = pg, s3, part_size
        self.pg_dump, self.pg_restore = str(PG_BIN_DIR / "pg_dump"), str(PG_BIN_DIR / "pg_restore")
        self.dump_version = tool_version(self.pg_dump)
        self.compression = resolve_compression(compression, self.pg_dump, self.dump_version)
        self.dump_file = work / "bench.dump"
        self.times: dict[str, list[float]] = {
            "bare_dump": [],
            "ours_dump": [],
            "bare_restore": [],
            "bare_restore_durable": [],
            "ours_restore": [],
        }
        self.peaks = {"dump": 0, "restore": 0}
        self.rss = PeakRss()

    def settle(self) -> None:
        """Flush what the previous step left dirty, so its write-back is not charged to the next one."""
        self.pg.psql("CHECKPOINT")
        os.sync()

    def conn(self, database: str) -> PgConnectionInfo:
        pg = self.pg
        return PgConnectionInfo(
            host=pg.host, port=pg.port, user=pg.user, password=pg.password, database=database
        )

    def bare_dump(self) -> None:
        self.dump_file.unlink(missing_ok=True)
        self.settle()
        argv = [
            self.pg_dump,
            "-Fc",
            f"--compress={self.compression.pg_dump_arg(self.dump_version)}",
            "-f",
            str(self.dump_file),
            "bench",
        ]
        self.times["bare_dump"].append(timed(lambda: run(argv, self.pg)))

    def our_dump(self, key: str) -> DumpRecord:
        self.settle()
        with self.rss.watch():
            start = time.perf_counter()
            record = backup_database(
                self.s3,
                source=self.conn("bench"),
                bucket=self.BUCKET,
                key=key,
                compression=str(self.compression),
                part_size=self.part_size,
                pg_bin_dir=PG_BIN_DIR,
            ).record
            self.times["ours_dump"].append(time.perf_counter() - start)
        self.peaks["dump"] = max(self.peaks["dump"], self.rss.peak)
        return record

    def bare_restore(self) -> None:
        self.pg.create_database("bare_restore", drop_existing=True)
        self.settle()
        argv = [self.pg_restore, "--exit-on-error", "-d", "bare_restore", str(self.dump_file)]
        self.times["bare_restore"].append(timed(lambda: run(argv, self.pg)))
        # Ours ends durable: dropping the replaced database forces a checkpoint. The fair floor for
        # that is pg_restore followed by the CHECKPOINT that writes its data out.
        flush = timed(lambda: self.pg.psql("CHECKPOINT"))
        self.times["bare_restore_durable"].append(self.times["bare_restore"][-1] + flush)
        self.pg.psql("DROP DATABASE bare_restore")

    def our_restore(self, record: DumpRecord) -> None:
        self.pg.create_database("restored", drop_existing=True)
        self.settle()
        with self.rss.watch():
            start = time.perf_counter()
            restore_database(
                self.s3,
                bucket=self.BUCKET,
                key=record.key,
                expected=ExpectedDump.from_record(record),
                target=self.conn("restored"),
                target_kind="baseline",
                production=[],
                pg_bin_dir=PG_BIN_DIR,
            )
            self.times["ours_restore"].append(time.perf_counter() - start)
        self.peaks["restore"] = max(self.peaks["restore"], self.rss.peak)

    def round(self, i: int) -> DumpRecord:
        """Alternate who goes first, so page-cache warmth and load spikes do not favour one side."""
        key = f"backups/bench/run{i}/bench.dump"
        if i % 2 == 0:
            self.bare_dump()
            record = self.our_dump(key)
            self.bare_restore()
            self.our_restore(record)
        else:
            record = self.our_dump(key)
            self.bare_dump()
            self.our_restore(record)
            self.bare_restore()
        t = {k: v[-1] for k, v in self.times.items()}
        print(
            f"run {i + 1}: pg_dump {t['bare_dump']:.1f} s, ours {t['ours_dump']:.1f} s; "
            f"pg_restore {t['bare_restore']:.1f} s, ours {t['ours_restore']:.1f} s",
            flush=True,
        )
        return record

    def report(self, db_bytes: int, scale: int, dump_bytes: int) -> None:
        med = {k: statistics.median(v) for k, v in self.times.items()}
        best = {k: min(v) for k, v in self.times.items()}
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB
        print()
        print(
            f"database {db_bytes / MB:.0f} MB (pgbench -s {scale}), dump {dump_bytes / MB:.0f} MB "
            f"({self.compression}), parts {self.part_size // MIB} MiB, {psutil.cpu_count()} cores, "
            f"{len(self.times['bare_dump'])} runs"
        )
        for what, bare, ours in (
            ("backup ", "bare_dump", "ours_dump"),
            ("restore", "bare_restore", "ours_restore"),
            ("restore vs pg_restore + CHECKPOINT", "bare_restore_durable", "ours_restore"),
        ):
            print(
                f"{what}: median bare {med[bare]:.1f} s, ours {med[ours]:.1f} s, ratio {med[ours] / med[bare]:.2f}"
                f" | best bare {best[bare]:.1f} s, ours {best[ours]:.1f} s, ratio {best[ours] / best[bare]:.2f}"
                " (goal <= 1.15)"
            )
        print(
            f"peak RSS: backup {self.peaks['dump'] / MB:.0f} MB, restore {self.peaks['restore'] / MB:.0f} MB, "
            f"ru_maxrss {maxrss:.0f} MB (goal < 200)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=70, help="pgbench scale (70 is about 1 GB)")
    parser.add_argument("--repeat", type=int, default=3, help="alternate bare/ours this many times")
    parser.add_argument("--compression", default="auto")
    parser.add_argument("--part-size-mib", type=int, default=16)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bg-bench-backup-"))
    pg = LocalPostgres(pgdata=work / "pg", port=free_port(), password=secrets.token_urlsafe(16))
    moto = None
    try:
        pg.start()
        pg.psql("ALTER SYSTEM SET max_wal_size = '4GB'; SELECT pg_reload_conf();")
        pg.create_database("bench")
        print(f"building pgbench -s {args.scale} ...", flush=True)
        pgbench = [str(PG_BIN_DIR / "pgbench"), "-i", "-q", "-s", str(args.scale), "bench"]
        init_s = timed(lambda: run(pgbench, pg))
        db_bytes = int(pg.psql("SELECT pg_database_size('bench')").strip())
        print(f"  {db_bytes / MB:.0f} MB in {init_s:.0f} s")

        port = free_port()
        moto = start_moto(port, work / "moto.log")
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        s3.create_bucket(Bucket=Bench.BUCKET)
        bench = Bench(pg, s3, args.compression, args.part_size_mib * MIB, work)
        records = [bench.round(i) for i in range(args.repeat)]
        bench.report(db_bytes, args.scale, records[-1].size)
    finally:
        if moto is not None:
            moto.terminate()
            moto.wait(timeout=10)
        pg.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
