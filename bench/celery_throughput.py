"""Benchmark: 75 ``business_check`` runs queued at once, through Celery and through standalone.

Starts the local stack (``python -m local_stack up``, free ports, a fresh state directory) in each
mode in turn, lets it settle, measures its memory at rest (every process of the stack: PostgreSQL,
S3, the reference environment and Airflow), then triggers ``--runs`` business-check runs over REST
at once and waits for all of them. Prints, per mode: runs per minute (first trigger to last run
finished), p50 / p99 from a run queued to running and from a task queued to running, and memory.

    .venv/bin/python bench/celery_throughput.py [--runs 75] [--modes celery,standalone]

The case study runs about 1,800 check runs a day (75 an hour). ``business_check`` allows 4 active
runs at a time (``max_active_runs``), the same in both modes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "include" / "local_stack"))

from local_stack_helpers import StackRun, stack_env  # noqa: E402

SETTLE_S = 60.0
FINISHED = {"success", "failed"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def stack_memory(state_dir: Path, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "local_stack", "--state-dir", str(state_dir), "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stdout
    return out.strip().rsplit(": ", 1)[-1]


class Airflow:
    def __init__(self, base_url: str) -> None:
        token = httpx.post(
            f"{base_url}/auth/token", json={"username": "admin", "password": "admin"}, timeout=60
        )
        token.raise_for_status()
        self.client = httpx.Client(
            base_url=f"{base_url}/api/v2",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=120,
        )

    def wait_for_dag(self, dag_id: str, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while self.client.get(f"/dags/{dag_id}").status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} not parsed within {timeout:.0f}s")
            time.sleep(3)

    def trigger(self, dag_id: str, run_id: str) -> None:
        body = {"logical_date": None, "dag_run_id": run_id, "conf": {"environment": "baseline"}}
        for _ in range(5):  # a 5xx under load: the run id makes the retry idempotent
            answer = self.client.post(f"/dags/{dag_id}/dagRuns", json=body)
            if answer.status_code in (200, 409):
                return
            time.sleep(2)
        answer.raise_for_status()

    def runs(self, dag_id: str, run_ids: set[str]) -> list[dict[str, Any]]:
        answer = self.client.get(f"/dags/{dag_id}/dagRuns", params={"limit": 1000, "run_type": "manual"})
        return [r for r in answer.json()["dag_runs"] if r["dag_run_id"] in run_ids]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.client.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()["task_instances"]


def measure(mode: str, runs: int) -> dict[str, Any]:
    state_dir = Path(tempfile.mkdtemp(prefix=f"bg-bench-{mode}-"))
    run = StackRun(
        state_dir=state_dir,
        env=stack_env(),
        args=["--airflow-timeout", "1500"] + (["--celery"] if mode == "celery" else []),
    )
    try:
        run.start().wait_ready(1800)
        base = f"http://127.0.0.1:{run.env['BG_AIRFLOW_PORT']}"
        airflow = Airflow(base)
        airflow.wait_for_dag("business_check")
        time.sleep(SETTLE_S)
        memory = stack_memory(state_dir, run.env)
        ids = {f"bench-{mode}-{i:03d}-{uuid.uuid4().hex[:6]}" for i in range(runs)}
        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda r: airflow.trigger("business_check", r), sorted(ids)))
        while len(done := [r for r in airflow.runs("business_check", ids) if r["state"] in FINISHED]) < runs:
            time.sleep(5)
        wall = time.monotonic() - t0
        tis = [ti for r in done for ti in airflow.task_instances("business_check", r["dag_run_id"])]
        run_waits = [w for r in done if (w := seconds_between(r["queued_at"], r["start_date"])) is not None]
        task_waits = [
            w for t in tis if (w := seconds_between(t.get("queued_when"), t["start_date"])) is not None
        ]
        return {
            "mode": mode,
            "runs": runs,
            "succeeded": sum(r["state"] == "success" for r in done),
            "wall_s": round(wall, 1),
            "runs_per_min": round(runs / wall * 60, 1),
            "run_queued_to_running_p50_s": round(statistics.median(run_waits), 1),
            "run_queued_to_running_p99_s": round(percentile(run_waits, 99), 1),
            "task_queued_to_running_p50_s": round(statistics.median(task_waits), 2),
            "task_queued_to_running_p99_s": round(percentile(task_waits, 99), 2),
            "memory_at_rest": memory,
            "hosts": sorted({t["hostname"] for t in tis if t.get("hostname")}),
        }
    finally:
        run.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=75)
    parser.add_argument("--modes", default="celery,standalone", help="comma-separated: celery, standalone")
    args = parser.parse_args(argv)
    for mode in args.modes.split(","):
        print(json.dumps(measure(mode, args.runs)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
