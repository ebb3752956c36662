"""Benchmark: time to locate, end to end through Airflow on the local stack.

From a release that answers wrong reaching the baseline to the admins' message naming module,
interface and instance. Needs the local stack with Airflow running (``bash scripts/start.sh`` or
``python -m local_stack up`` with the same ``BG_*_PORT`` variables), then:

    .venv/bin/python bench/time_to_locate.py [--repeat 1] [--timeout 300]

Per repeat:

1. deploys ``quote`` ``1.9.2-wrong`` (answers 200 but wrong) to instance 2 of the baseline through
   the environment API and waits for the operation to succeed: the clock starts then;
2. emits the environment change as the environment manager would, an asset event on
   ``environment_changed`` through Airflow's REST API (``POST /api/v2/assets/events``, as the admin);
3. waits for the admins' message at the sink that names ``pricing · POST /quotes`` and
   ``baseline/quote/2``: the clock stops then;
4. puts the good version back and waits for the "pass again" message, so a repeat starts clean.

It prints the seconds and where they went (event → run queued → task started → checks done →
message), from the run's and task instances' timestamps Airflow records.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime
from typing import Any

import httpx
from local_stack.config import StackConfig

FAULTY = "1.9.2-wrong"
INSTANCE = 2


def _env_api(cfg: StackConfig) -> httpx.Client:
    return httpx.Client(
        base_url=f"{cfg.env_api_url}/v1",
        headers={"Authorization": f"Bearer {cfg.secrets.env_api_token}"},
        timeout=30,
    )


def _airflow(cfg: StackConfig) -> httpx.Client:
    token = httpx.post(
        f"{cfg.airflow_url}/auth/token", json={"username": "admin", "password": "admin"}, timeout=30
    )
    token.raise_for_status()
    return httpx.Client(
        base_url=f"{cfg.airflow_url}/api/v2",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        timeout=30,
    )


def _deploy(api: httpx.Client, version: str) -> None:
    op = api.post(
        f"/environments/baseline/services/quote/instances/{INSTANCE}/deploy", json={"version": version}
    )
    op.raise_for_status()
    op_id = op.json()["id"]
    while (state := api.get(f"/operations/{op_id}").json())["state"] not in ("succeeded", "failed"):
        time.sleep(0.1)
    if state["state"] != "succeeded":
        raise SystemExit(f"deploy of quote {version} failed: {state.get('message')}")


def _emit_change(airflow: httpx.Client, asset_id: int, source: str) -> None:
    answer = airflow.post(
        "/assets/events",
        json={
            "asset_id": asset_id,
            "extra": {"environment": "baseline", "source": source, "changes": ["quote"]},
        },
    )
    answer.raise_for_status()


def _wait_message(api: httpx.Client, seen: int, needles: list[str], timeout: float) -> tuple[float, dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sent = api.get("/notifications", params={"channel": "admins"}).json()
        for message in sent[seen:]:
            text = json.dumps(message, ensure_ascii=False)
            if all(n in text for n in needles):
                return time.monotonic(), message
        time.sleep(0.1)
    raise SystemExit(f"no admins' message with {needles} within {timeout:.0f}s")


def _latest_run(airflow: httpx.Client) -> dict[str, Any]:
    runs = airflow.get("/dags/business_check/dagRuns", params={"order_by": "-run_after", "limit": 1}).json()
    return runs["dag_runs"][0]


def _stamp(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _breakdown(airflow: httpx.Client, run: dict[str, Any], emitted_at: datetime) -> dict[str, float]:
    tis = airflow.get(f"/dags/business_check/dagRuns/{run['dag_run_id']}/taskInstances").json()[
        "task_instances"
    ]
    ti = {t["task_id"]: t for t in tis}
    points = {
        "run queued": _stamp(run.get("queued_at")),
        "choose_target started": _stamp(ti.get("choose_target", {}).get("start_date")),
        "checks started": _stamp(ti.get("run_business_checks", {}).get("start_date")),
        "checks ended": _stamp(ti.get("run_business_checks", {}).get("end_date")),
    }
    out, previous = {}, emitted_at
    for name, moment in points.items():
        if moment is not None:
            out[name] = round((moment - previous).total_seconds(), 2)
            previous = moment
    return out


def measure(cfg: StackConfig, timeout: float, good_version: str) -> tuple[float, dict[str, float]]:
    api, airflow = _env_api(cfg), _airflow(cfg)
    assets = airflow.get("/assets", params={"name_pattern": "environment_changed"}).json()["assets"]
    asset_id = assets[0]["id"]
    seen = len(api.get("/notifications", params={"channel": "admins"}).json())

    _deploy(api, FAULTY)
    started = time.monotonic()
    emitted_at = datetime.now().astimezone()
    _emit_change(airflow, asset_id, "bench/time_to_locate")
    located, message = _wait_message(
        api, seen, ["pricing · POST /quotes", f"baseline/quote/{INSTANCE}"], timeout
    )
    seconds = located - started
    breakdown = _breakdown(airflow, _latest_run(airflow), emitted_at)
    print(f"located in {seconds:.1f} s: {message.get('title', '')}")

    seen = len(api.get("/notifications", params={"channel": "admins"}).json())
    _deploy(api, good_version)
    _emit_change(airflow, asset_id, "bench/time_to_locate (repair)")
    _wait_message(api, seen, ["pass again", "baseline"], timeout)
    return seconds, breakdown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    cfg = StackConfig.load()
    api = _env_api(cfg)
    good = next(
        i["version"]
        for i in api.get("/environments/baseline/services/quote").json()["instances"]
        if i["index"] == INSTANCE
    )
    if good == FAULTY:
        raise SystemExit("instance 2 of quote already runs the faulty version: deploy a good one first")
    results = []
    for _ in range(args.repeat):
        seconds, breakdown = measure(cfg, args.timeout, good)
        print(f"  from the environment change: {breakdown}")
        results.append(seconds)
    print(f"time to locate: median {statistics.median(results):.1f} s over {len(results)} (goal <= 30 s)")
    return 0 if statistics.median(results) <= 30 else 1


if __name__ == "__main__":
    sys.exit(main())
