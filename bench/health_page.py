"""Benchmark: the Baseline health page and its JSON over 30 days of check history, and the cost of
recording one check run.

Generates the history straight into a real PostgreSQL (``COPY``): ``--environments`` environments,
``--runs-per-day`` check runs a day in total, ``--scenarios`` scenario results per run, outages (a
module failing for a few consecutive runs, re-checked every minute) and flaky failures (passing on
the re-check). Then rebuilds the derived tables, serves the page app with Airflow's own auth manager
(``baseline_guard.ui.standalone``), signs in, and times ``GET /baseline-guard/``,
``GET /baseline-guard/api/health`` and the Prometheus scrape ``GET /baseline-guard/metrics`` (served from
its 30 s cache), and the scrape's history read itself (what a scrape costs once per cache period: the
snapshot read and rendered in-process, on one pooled connection). Finally it times ``HistoryStore.record`` of one check run of
``--record-scenarios`` results (new connection each time, as the operator does).

    .venv/bin/python bench/health_page.py [--environments 20] [--runs-per-day 1800] [--days 30]
    .venv/bin/python bench/health_page.py --record-only [--days 7]   # recording cost only, no page server

Recording is timed twice: passing runs, then runs that alternately fail in one module and pass (each
opens or closes an incident). The load average is printed with it (the machine may be shared).

Goal: page and JSON under 1 s; a scrape under 100 ms at p95 with at most one history read per cache
period; recording under 5% of a check run (300 cases take ~2.3 s: < 115 ms).

Full size (the 30-day x 20-environment history; on a quiet machine, it takes several minutes):

    .venv/bin/python bench/health_page.py --environments 20 --runs-per-day 1800 --days 30 --repeat 50
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg2
from baseline_guard.health import migrate
from baseline_guard.health.records import CheckRecord, ScenarioRecord, Trigger
from baseline_guard.health.store import HistoryStore
from baseline_guard.ui.app import HistoryReports
from baseline_guard.ui.metrics import exposition, metrics_registry
from local_stack.ports import free_port
from local_stack.postgres import LocalPostgres

MODULES = ["search", "catalog", "pricing", "booking", "payment", "loyalty", "reviews", "maps"]
INTERFACES = {m: f"POST /{m}" for m in MODULES}


def generate(
    dsn: str, *, environments: int, runs_per_day: int, days: int, scenarios: int, seed: int = 7
) -> int:
    """COPY the history into the database; returns the number of check runs."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    start = now - timedelta(days=days)
    names = ["baseline", *(f"proj-{i:02d}" for i in range(1, environments))]
    per_env_interval = timedelta(days=1) / (runs_per_day / environments)
    runs, results = io.StringIO(), io.StringIO()
    run_id = 0
    for env in names:
        at = start + per_env_interval * rng.random()
        broken: tuple[str, int] | None = None  # (module, failing runs left)
        while at < now:
            if broken is None and rng.random() < 0.004:
                broken = (rng.choice(MODULES), rng.randint(1, 6))
            flaky = broken is None and rng.random() < 0.003
            failing = broken[0] if broken else (rng.choice(MODULES) if flaky else None)
            run_id += 1
            failed_count = 0
            for n in range(scenarios):
                module = MODULES[n % len(MODULES)]
                ok = module != failing
                failed_count += not ok
                results.write(
                    f"{run_id}\t{env}\t{at.isoformat()}\tsuite\tscenario_{n:03d}\t{ok}\t{rng.uniform(20, 400):.1f}"
                    f"\t{module}\t{INTERFACES[module]}\t{env}/{module}/{n % 2 + 1}\t1.{n % 4}.0\n"
                )
            modules = "{" + ",".join(MODULES) + "}"
            failed_modules = "{" + (failing or "") + "}"
            trigger = Trigger.RECHECK if failing is None and (broken or flaky) else Trigger.HOURLY
            runs.write(
                f"{run_id}\t{env}\t\\N\tbusiness_check\tscheduled__{run_id}\trun_business_checks\t1\t{trigger}"
                f"\t{at.isoformat()}\t{(at + timedelta(seconds=3)).isoformat()}\t3000\t{failing is None}"
                f"\t{scenarios}\t{failed_count}\t{modules}\t{failed_modules}\t\\N\n"
            )
            if broken:
                left = broken[1] - 1
                broken = (broken[0], left) if left > 0 else None
                at += timedelta(minutes=1)  # re-checked every minute while failing
            elif flaky:
                at += timedelta(minutes=1)
            else:
                at += per_env_interval
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        runs.seek(0)
        cur.copy_expert(
            "COPY check_run (id, environment, routing_key, dag_id, run_id, task_id, try_number, trigger, "
            "started_at, finished_at, duration_ms, passed, scenarios, failed, modules, failed_modules, "
            "report_url) FROM STDIN",
            runs,
        )
        cur.execute("SELECT setval(pg_get_serial_sequence('check_run', 'id'), %s)", (run_id,))
        results.seek(0)
        cur.copy_expert(
            "COPY check_result (run, environment, checked_at, suite, scenario, passed, duration_ms, "
            "module, interface, instance, version) FROM STDIN",
            results,
        )
    with conn.cursor() as cur:
        conn.autocommit = True
        cur.execute("VACUUM ANALYZE")
    store = HistoryStore(conn)
    for env in names:
        store.rebuild(env)
    conn.close()
    return run_id


def serve(pg: LocalPostgres, database: str, home: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    (home / "pw.json").write_text(json.dumps({"admin": "bench"}))
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "pw.json"),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW_CONN_BASELINE_GUARD_DB": json.dumps(pg.airflow_connection(database)),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "baseline_guard.ui.standalone", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(base + "/baseline-guard/api/health", timeout=5)
            break
        except httpx.TransportError:
            time.sleep(1)
    token = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": "bench"}, timeout=30)
    return proc, base, token.json()["access_token"]


def timed(client: httpx.Client, url: str, repeat: int) -> tuple[list[float], int]:
    times, size = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = client.get(url)
        times.append(time.perf_counter() - t0)
        r.raise_for_status()
        size = len(r.content)
    return times, size


def record_cost(
    dsn: str, scenarios: int, repeat: int, *, failing_every: int = 0, start: int = 0
) -> list[float]:
    """Times ``HistoryStore.record`` of ``repeat`` check runs of ``scenarios`` results into the baseline's
    history, each on a new connection as the operator records. ``failing_every=2``: every other run
    fails in one module (an incident opens, the next run closes it: the most work a record does)."""
    times = []
    for n in range(start, start + repeat):
        at = datetime.now(UTC) + timedelta(seconds=n)
        failing = "pricing" if failing_every and n % failing_every == 0 else None
        record = CheckRecord(
            "baseline",
            at,
            at + timedelta(seconds=2),
            Trigger.HOURLY,
            tuple(
                ScenarioRecord(
                    f"scenario_{i:03d}",
                    "suite",
                    MODULES[i % 8] != failing,
                    50.0,
                    MODULES[i % 8],
                    INTERFACES[MODULES[i % 8]],
                    f"baseline/{MODULES[i % 8]}/1",
                    "1.0.0",
                )
                for i in range(scenarios)
            ),
            dag_id="business_check",
            run_id=f"bench_{n}_{secrets.token_hex(3)}",
            task_id="t",
            try_number=1,
        )
        t0 = time.perf_counter()
        store = HistoryStore.connect(dsn)
        store.record(record)
        store.conn.close()
        times.append(time.perf_counter() - t0)
    return times


def scrape_read_cost(dsn: str, repeat: int) -> tuple[list[float], int]:
    """Times what a scrape costs when the cache has expired: the snapshot read (health report and the
    history's totals) and its rendering, in-process; returns the times and the text's size."""
    reports = HistoryReports(lambda: dsn, max_connections=1)
    reports.snapshot()  # warm: the pool's connection
    times, size = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        snapshot = reports.snapshot()
        size = len(exposition(metrics_registry(lambda snapshot=snapshot: snapshot)))
        times.append(time.perf_counter() - t0)
    return times, size


def load() -> str:
    return "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg()) + " (1 / 5 / 15 min)"


def fmt(times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    return f"median {statistics.median(ms):.0f} ms, p95 {ms[int(len(ms) * 0.95) - 1]:.0f} ms, max {ms[-1]:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--environments", type=int, default=20)
    parser.add_argument("--runs-per-day", type=int, default=1800, help="check runs a day, all environments")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--scenarios", type=int, default=40, help="scenario results per generated run")
    parser.add_argument("--record-scenarios", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--record-only",
        action="store_true",
        help="generate the history and time recording only (no page server)",
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bg-bench-health-"))
    pg = LocalPostgres(pgdata=root / "data", port=free_port(), password=secrets.token_urlsafe(16)).start()
    proc = None
    try:
        pg.create_database("baseline_guard")
        dsn = pg.uri("baseline_guard")
        migrate.upgrade(dsn)
        t0 = time.perf_counter()
        runs = generate(
            dsn,
            environments=args.environments,
            runs_per_day=args.runs_per_day,
            days=args.days,
            scenarios=args.scenarios,
        )
        counts = pg.psql(
            "SELECT (SELECT count(*) FROM check_result) || ' ' || (SELECT count(*) FROM incident) || ' '"
            " || pg_size_pretty(pg_database_size('baseline_guard'))",
            "baseline_guard",
        ).split()
        print(
            f"history: {runs} check runs, {counts[0]} scenario results, {counts[1]} incidents, "
            f"{' '.join(counts[2:])} on disk; generated, loaded and rebuilt in {time.perf_counter() - t0:.0f} s"
        )
        if not args.record_only:
            proc, base, token = serve(pg, "baseline_guard", root)
            with httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
            ) as client:
                timed(client, "/baseline-guard/api/health", 2)  # warm: connection pool, imports
                page, page_size = timed(client, "/baseline-guard/", args.repeat)
                data, data_size = timed(client, "/baseline-guard/api/health", args.repeat)
                scrape, scrape_size = timed(client, "/baseline-guard/metrics", args.repeat)
            print(f"page  GET /baseline-guard/            {fmt(page)} ({page_size // 1024} KiB)")
            print(f"JSON  GET /baseline-guard/api/health  {fmt(data)} ({data_size // 1024} KiB)")
            print(
                f"scrape GET /baseline-guard/metrics    {fmt(scrape)} ({scrape_size // 1024} KiB, from the cache)"
            )
            read, read_size = scrape_read_cost(dsn, args.repeat)
            print(
                f"scrape's history read + render       {fmt(read)} ({read_size // 1024} KiB; once per 30 s "
                f"cache period, {load()})"
            )
        print(f"recording, {load()}")
        passing = record_cost(dsn, args.record_scenarios, args.repeat)
        print(f"record one check run of {args.record_scenarios} results, passing:        {fmt(passing)}")
        alternating = record_cost(dsn, args.record_scenarios, args.repeat, failing_every=2, start=args.repeat)
        print(f"record one check run of {args.record_scenarios} results, fail/pass/...:  {fmt(alternating)}")
        print(f"after recording, {load()}")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        pg.destroy()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
