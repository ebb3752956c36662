"""Benchmark: streaming backup/restore against bare pg_dump -Fc / pg_restore on a realistic database.

Builds the realistic database of ``bench/realistic_db.py`` (many tables of mixed types and sizes,
about 0.9 GB at ``--scale 0.7``) on its own PostgreSQL in a temp dir, starts moto as a separate
process (so the memory measured is only ours), then, ``--repeat`` rounds with the order of the
sides rotated each round and a ``CHECKPOINT`` + ``sync`` before every timed step, times:

- backup: bare ``pg_dump -Fc`` (its default compression) to a local file, vs ``backup_database``
  streaming to the S3 endpoint in the current format (``auto``: ``pg_dump -Z0`` compressed outside
  pg_dump by two-thread zstd) and in the old format (``gzip:6`` inside pg_dump), each also hashing,
  counting rows in the dump's snapshot and uploading 16 MiB parts;
- restore: bare ``pg_restore`` (serial, as a user runs it) and bare ``pg_restore -j 2`` from that
  file into an empty database, vs ``restore_database``: the zstd object spooled (``spool=True``:
  from S3 to an unnamed local file while checking its SHA-256 and locating its data blocks, then,
  once verified, the blocks' offsets written into its TOC and ``pg_restore --jobs``, the cores, at
  least 2, into a fresh database) and streamed (``spool=False``: S3 -> zstd -> serial
  ``pg_restore`` from stdin); the old-format object spooled (its TOC kept: pg_dump compressed its
  data); exact row counts, then swapping it in and dropping the old one. Ours
  ends with its data flushed (the DROP DATABASE of the replaced database forces a checkpoint), so it
  is also compared with pg_restore + CHECKPOINT. Our restore's phases are timed too: spool (until
  the object is downloaded and verified), pg_restore + row counts + properties, swap, drop; and
  what the restore said about the data offsets. ``--without-offsets-side`` adds the zstd object
  spooled with its TOC kept as it came (no offsets, as before 2026-11-30's offsets change).

Peak memory: this process's RSS and that plus its children's (pg_dump / pg_restore), sampled every
20 ms during our steps only.

    .venv/bin/python bench/backup.py [--scale 0.7] [--repeat 3] [--part-size-mib 16] [--backup-once]
        [--without-offsets-side]

``--backup-once`` times the backups in the first round only (the restores need them), to spend a
loaded machine's time on the restore rounds.

Goals: backup <= 1.0x bare pg_dump -Fc, restore <= 1.0x bare pg_restore, peak RSS < 150 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import secrets
import shutil
import signal
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
import psycopg2
from baseline_guard.backup import (
    DumpRecord,
    ExpectedDump,
    PgConnectionInfo,
    backup_database,
    restore_database,
)
from baseline_guard.backup import spool as spooling
from baseline_guard.backup.archive_offsets import NotPatchable
from baseline_guard.backup.s3io import MIB
from local_stack.ports import free_port
from local_stack.postgres import PG_BIN_DIR, LocalPostgres
from local_stack.s3 import ACCESS_KEY, REGION, SECRET_KEY

sys.path.insert(0, str(Path(__file__).parent))
import realistic_db  # a sibling script, not a package

MB = 1_000_000
FORMATS = {"new": "auto", "old": "gzip:6"}


class PeakRss:
    """Samples this process's RSS, and that plus its children's, every 20 ms while a step runs."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self._stop = threading.Event()
        self.own = self.with_children = 0
        self.ignore: set[int] = set()  # children that are not ours to count (the S3 endpoint)

    @contextmanager
    def watch(self) -> Iterator[PeakRss]:
        self._stop.clear()
        thread = threading.Thread(target=self._sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()

    def _sample(self) -> None:
        while True:
            own = self._proc.memory_info().rss
            children = 0
            for child in self._proc.children(recursive=True):
                if child.pid not in self.ignore:
                    with contextlib.suppress(psutil.Error):  # it may end between listing and reading
                        children += child.memory_info().rss
            self.own = max(self.own, own)
            self.with_children = max(self.with_children, own + children)
            if self._stop.wait(0.02):
                return


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


class _Said(logging.Handler):
    """What the restore logged about the spooled archive's data offsets."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.offsets = "offsets: nothing logged"

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if written := re.search(r"Wrote the offsets of (\d+) data blocks", message):
            self.offsets = f"offsets of {written.group(1)} data blocks written"
        elif kept := re.search(r"keeps its TOC as it is \((.*)\): pg_restore", message):
            self.offsets = f"no offsets written: {kept.group(1)}"

    @contextmanager
    def listening(self) -> Iterator[None]:
        restore_log = logging.getLogger("baseline_guard.backup.restore")
        level = restore_log.level
        restore_log.setLevel(logging.INFO)
        restore_log.addHandler(self)
        try:
            yield
        finally:
            restore_log.removeHandler(self)
            restore_log.setLevel(level)


@contextmanager
def _data_offsets(write: bool) -> Iterator[None]:
    """With ``write`` False, spooled archives keep the TOC pg_dump wrote into the pipe (no offsets)."""
    if write:
        yield
        return

    def refuse(_spooled: object) -> int:
        raise NotPatchable("turned off by the benchmark")

    keep = spooling.write_data_offsets
    spooling.write_data_offsets = refuse  # type: ignore[assignment]
    try:
        yield
    finally:
        spooling.write_data_offsets = keep


class Bench:
    """One database, one S3 endpoint; each method times one side of one round and records it."""

    BUCKET = "bench-backups"

    def __init__(self, pg: LocalPostgres, s3: object, part_size: int, work: Path) -> None:
        self.pg, self.s3, self.part_size = pg, s3, part_size
        self.pg_dump, self.pg_restore = str(PG_BIN_DIR / "pg_dump"), str(PG_BIN_DIR / "pg_restore")
        self.dump_file = work / "bench.dump"
        self.times: dict[str, list[float]] = {}
        self.sizes: dict[str, int] = {}
        self.rss = PeakRss()
        self.records: dict[str, DumpRecord] = {}
        self.phases: dict[str, str] = {}  # the last round's phases of each of our restores
        self.backup_once = False
        self.without_offsets_side = False

    def record_time(self, what: str, seconds: float) -> None:
        self.times.setdefault(what, []).append(seconds)

    def settle(self) -> None:
        """Flush what the previous step left dirty, so its write-back is not charged to the next one."""
        self.pg.psql("CHECKPOINT")
        os.sync()

    def conn(self, database: str) -> PgConnectionInfo:
        pg = self.pg
        return PgConnectionInfo(
            host=pg.host, port=pg.port, user=pg.user, password=pg.password, database=database
        )

    def bare_dump(self, _round: int) -> None:
        self.dump_file.unlink(missing_ok=True)
        self.settle()
        argv = [self.pg_dump, "-Fc", "-f", str(self.dump_file), "bench"]
        self.record_time("bare_dump", timed(lambda: run(argv, self.pg)))
        self.sizes["bare"] = self.dump_file.stat().st_size

    def our_dump(self, fmt: str, round_: int) -> None:
        self.settle()
        with self.rss.watch():
            start = time.perf_counter()
            record = backup_database(
                self.s3,
                source=self.conn("bench"),
                bucket=self.BUCKET,
                key=f"backups/bench/run{round_}/{fmt}.dump",
                compression=FORMATS[fmt],
                part_size=self.part_size,
                pg_bin_dir=PG_BIN_DIR,
            ).record
            self.record_time(f"{fmt}_dump", time.perf_counter() - start)
        self.records[fmt] = record
        self.sizes[fmt] = record.size

    def bare_restore(self, jobs: int, _round: int) -> None:
        name = "bare_restore" if jobs == 1 else f"bare_restore_j{jobs}"
        self.pg.create_database("bare_restore", drop_existing=True)
        self.settle()
        argv = [
            self.pg_restore,
            "--exit-on-error",
            "-j",
            str(jobs),
            "-d",
            "bare_restore",
            str(self.dump_file),
        ]
        self.record_time(name, timed(lambda: run(argv, self.pg)))
        # Ours ends durable: dropping the replaced database forces a checkpoint. The fair floor for
        # that is pg_restore followed by the CHECKPOINT that writes its data out.
        flush = timed(lambda: self.pg.psql("CHECKPOINT"))
        self.record_time(f"{name}_durable", self.times[name][-1] + flush)
        self.pg.psql("DROP DATABASE bare_restore")

    def our_restore(self, fmt: str, _round: int, spool: bool = True, offsets: bool = True) -> None:
        name = f"{fmt}_restore" if spool else f"{fmt}_restore_streamed"
        name += "" if offsets else "_no_offsets"
        self.pg.create_database("restored", drop_existing=True)
        self.settle()
        record = self.records[fmt]
        marks: dict[str, float] = {}
        said = _Said()
        with self.rss.watch(), said.listening(), _data_offsets(offsets):
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
                spool=spool,
                progress=lambda _p: marks.__setitem__("fetched", time.perf_counter()),
                on_swap_step=lambda step: marks.__setitem__(step, time.perf_counter()),
            )
            end = time.perf_counter()
            self.record_time(name, end - start)
        self.phases[name] = (
            f"fetch {marks['fetched'] - start:.1f} s, then pg_restore + counts + properties "
            f"{marks['verified'] - marks['fetched']:.1f} s, swap {marks['swapped'] - marks['verified']:.1f} s, "
            f"drop of the replaced database {end - marks['swapped']:.1f} s"
            + (f"; {said.offsets}" if spool else "")
        )
        self.pg.psql("DROP DATABASE restored")

    def round(self, i: int, last: bool) -> None:
        """Rotate who goes first, so page-cache warmth and load spikes do not favour one side."""
        dumps: list[Callable[[int], None]] = [
            self.bare_dump,
            lambda r: self.our_dump("new", r),
            lambda r: self.our_dump("old", r),
        ]
        restores: list[Callable[[int], None]] = [
            lambda r: self.bare_restore(1, r),
            lambda r: self.our_restore("new", r),
            lambda r: self.bare_restore(2, r),
            lambda r: self.our_restore("new", r, spool=False),
            lambda r: self.our_restore("old", r),
        ]
        if self.without_offsets_side:
            restores.append(lambda r: self.our_restore("new", r, offsets=False))
        loads = [os.getloadavg()[0]]
        if i == 0 or not self.backup_once:
            shift = i % len(dumps)
            for step in dumps[shift:] + dumps[:shift]:
                step(i)
            loads.append(os.getloadavg()[0])
        shift = i % len(restores)
        for step in restores[shift:] + restores[:shift]:
            step(i)
            loads.append(os.getloadavg()[0])
        if last or not self.backup_once:
            self.delete_objects()
        t = {k: v[-1] for k, v in self.times.items()}
        print(
            f"round {i + 1} (load {min(loads):.1f}-{max(loads):.1f}): "
            f"pg_dump -Fc {t['bare_dump']:.1f} s, ours {t['new_dump']:.1f} s, old format {t['old_dump']:.1f} s; "
            f"pg_restore {t['bare_restore']:.1f} s, pg_restore -j 2 {t['bare_restore_j2']:.1f} s, "
            f"ours zstd spooled {t['new_restore']:.1f} s, zstd streamed {t['new_restore_streamed']:.1f} s, "
            f"old format spooled {t['old_restore']:.1f} s"
            + (
                f", zstd spooled without offsets {t['new_restore_no_offsets']:.1f} s"
                if self.without_offsets_side
                else ""
            ),
            flush=True,
        )
        for name, phases in self.phases.items():
            print(f"  {name}: {phases}", flush=True)

    def delete_objects(self) -> None:
        for record in self.records.values():  # moto keeps objects in memory
            self.s3.delete_objects(  # type: ignore[attr-defined]
                Bucket=self.BUCKET,
                Delete={
                    "Objects": [{"Key": record.key}, {"Key": record.key.removesuffix(".dump") + ".dump.json"}]
                },
            )

    def report(self, db_bytes: int, scale: float) -> None:
        med = {k: statistics.median(v) for k, v in self.times.items()}
        rounds = len(self.times["bare_restore"])
        print()
        print(
            f"database {db_bytes / MB:.0f} MB (bench/realistic_db.py --scale {scale}), "
            f"{psutil.cpu_count()} cores, {rounds} rounds, medians; parts {self.part_size // MIB} MiB"
        )
        print(
            f"dump size: pg_dump -Fc {self.sizes['bare'] / MB:.0f} MB, ours {self.sizes['new'] / MB:.0f} MB "
            f"(zstd:3 outside pg_dump), old format {self.sizes['old'] / MB:.0f} MB (gzip:6)"
        )
        sides = [
            ("backup, ours", "bare_dump", "new_dump"),
            ("backup, old format", "bare_dump", "old_dump"),
            ("restore, ours zstd spooled with offsets", "bare_restore", "new_restore"),
            ("restore, ours zstd spooled with offsets vs pg_restore -j 2", "bare_restore_j2", "new_restore"),
            ("restore, ours zstd streamed", "bare_restore", "new_restore_streamed"),
            ("restore, ours zstd streamed vs pg_restore -j 2", "bare_restore_j2", "new_restore_streamed"),
            ("restore, old format spooled", "bare_restore", "old_restore"),
            ("restore, old format spooled vs pg_restore -j 2", "bare_restore_j2", "old_restore"),
            (
                "restore, zstd spooled with offsets vs pg_restore + CHECKPOINT",
                "bare_restore_durable",
                "new_restore",
            ),
            (
                "restore, zstd spooled with offsets vs pg_restore -j 2 + CHECKPOINT",
                "bare_restore_j2_durable",
                "new_restore",
            ),
            ("restore, pg_restore -j 2 vs pg_restore", "bare_restore", "bare_restore_j2"),
        ]
        if self.without_offsets_side:
            sides += [
                ("restore, zstd spooled without offsets", "bare_restore", "new_restore_no_offsets"),
                ("restore, zstd spooled with vs without offsets", "new_restore_no_offsets", "new_restore"),
            ]
        for what, bare, ours in sides:
            ratios = [o / b for o, b in zip(self.times[ours], self.times[bare], strict=True)]
            print(
                f"{what}: bare {med[bare]:.1f} s, ours {med[ours]:.1f} s, ratio of medians "
                f"{med[ours] / med[bare]:.2f} (per round {', '.join(f'{r:.2f}' for r in ratios)})"
            )
        print(
            f"peak RSS of our steps: this process {self.rss.own / MB:.0f} MB, "
            f"with pg_dump/pg_restore {self.rss.with_children / MB:.0f} MB (goal < 150)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.7, help="realistic_db scale (0.7 is about 0.9 GB)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds, order rotated each round")
    parser.add_argument("--part-size-mib", type=int, default=16)
    parser.add_argument("--backup-once", action="store_true", help="time the backups in the first round only")
    parser.add_argument(
        "--without-offsets-side",
        action="store_true",
        help="also restore the zstd object spooled without writing its data offsets (as before)",
    )
    args = parser.parse_args()
    # Started in the background, SIGINT may be ignored: let SIGTERM clean up (moto, the server) too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    work = Path(tempfile.mkdtemp(prefix="bg-bench-backup-"))
    pg = LocalPostgres(pgdata=work / "pg", port=free_port(), password=secrets.token_urlsafe(16))
    moto = None
    try:
        pg.start()
        pg.psql("ALTER SYSTEM SET max_wal_size = '4GB'; SELECT pg_reload_conf();")
        pg.create_database("bench")
        print(f"building the realistic database, scale {args.scale} ...", flush=True)
        build_s = timed(
            lambda: realistic_db.build(
                lambda: psycopg2.connect(
                    host=pg.host, port=pg.port, user=pg.user, password=pg.password, dbname="bench"
                ),
                args.scale,
            )
        )
        db_bytes = int(pg.psql("SELECT pg_database_size('bench')").strip())
        print(f"  {db_bytes / MB:.0f} MB in {build_s:.0f} s", flush=True)

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
        bench = Bench(pg, s3, args.part_size_mib * MIB, work)
        bench.rss.ignore.add(moto.pid)
        bench.backup_once = args.backup_once
        bench.without_offsets_side = args.without_offsets_side
        print(
            f"  RSS of this process before the first step: {psutil.Process().memory_info().rss / MB:.0f} MB"
        )
        for i in range(args.repeat):
            bench.round(i, last=i == args.repeat - 1)
        bench.report(db_bytes, args.scale)
    finally:
        if moto is not None:
            moto.terminate()
            moto.wait(timeout=10)
        pg.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
