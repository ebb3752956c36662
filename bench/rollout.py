"""Benchmark: a dual-instance rollout under continuous traffic through the gateway.

Starts a reference environment (real service processes behind the real gateway), sends
requests to the service being rolled out in a bounded loop on 127.0.0.1 from two client
threads, and rolls a version whose instances take ``start_delay_s`` to become healthy.
Prints requests sent / failed, the rollout time, and the rollout time against the floor of
two health waits (the instances are rolled one after the other, by design).

    uv run --frozen python bench/rollout.py [--service quote] [--start-delay 3]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import tempfile
import threading
import time
from pathlib import Path

import httpx
from baseline_guard.operators.rollout import DualInstanceRolloutOperator
from local_stack.connections import env_api_connections
from local_stack.inline_deferral import DeferrableRun
from local_stack.ports import free_port
from reference_env.launcher import ReferenceEnvironment

PATHS = {
    "hotel-search": "/hotels?city=Paris",
    "hotel-detail": "/hotels/h-1001",
    "quote": "/health",
    "order": "/health",
}


def traffic(url: str, stop: threading.Event, counts: dict[str, int], lock: threading.Lock) -> None:
    with httpx.Client(timeout=5.0) as client:
        while not stop.is_set() and counts["sent"] < 200_000:
            try:
                ok = client.get(url).status_code == 200
            except httpx.HTTPError:
                ok = False
            with lock:
                counts["sent"] += 1
                counts["failed"] += 0 if ok else 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--service", default="hotel-search", choices=sorted(PATHS))
    p.add_argument(
        "--start-delay", type=float, default=3.0, help="seconds each new instance takes to be healthy"
    )
    args = p.parse_args()

    token = secrets.token_urlsafe(16)
    with ReferenceEnvironment(Path(tempfile.mkdtemp()), free_port(), free_port(), token) as env:
        os.environ.update(env_api_connections(env.api_port, token))
        version = "7.0.0-bench"
        httpx.post(
            f"{env.api_url}/v1/catalog",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "service": args.service,
                "version": version,
                "behaviour": "slow_start",
                "start_delay_s": args.start_delay,
            },
        ).raise_for_status()
        counts, lock, stop = {"sent": 0, "failed": 0}, threading.Lock(), threading.Event()
        url = f"{env.gateway_url}/{args.service}{PATHS[args.service]}"
        threads = [threading.Thread(target=traffic, args=(url, stop, counts, lock)) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(1.0)  # traffic flowing before the rollout starts
        started = time.perf_counter()
        result = DeferrableRun()(  # with its deferrals: the trigger runs in this process
            DualInstanceRolloutOperator(
                task_id="bench", service=args.service, version=version, poll_interval_s=0.1
            )
        )
        rollout_s = time.perf_counter() - started
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join()
    floor = 2 * args.start_delay
    figures = {
        "service": args.service,
        "instances_rolled": len(result["rolled_instances"]),
        "requests_sent": counts["sent"],
        "requests_failed": counts["failed"],
        "rollout_s": round(rollout_s, 2),
        "health_waits_s": floor,
        "rollout_vs_health_waits": round(rollout_s / floor, 2),
        "overhead_s": round(rollout_s - floor, 2),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
