"""Benchmark: a generated suite of business-check cases against the real sandbox gateway.

Starts the reference environment (API + gateway + two instances of each sandbox service) with the
launcher, warms it up, generates ``--cases`` scenarios cycling through four business flows (search;
open a hotel; search → open → quote; search → open → quote → order → read the order back), runs them
with the engine and prints wall time, cases per second and HTTP calls per second.

    .venv/bin/python bench/business_checks.py [--cases 300] [--concurrency 32] [--repeat 3]

Goal: 300 cases in under 5 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from baseline_guard.checks import CheckRun, load_suites, run_checks
from local_stack.ports import free_port
from reference_env.launcher import ReferenceEnvironment

CITIES = ["Paris", "Berlin", "Rome", "Lisbon"]
ROOMS = ["single", "double", "suite"]


def search_step() -> dict[str, Any]:
    return {
        "name": "search",
        "module": "search",
        "interface": "GET /hotels",
        "path": "/hotel-search/hotels",
        "query": {"city": "{{ city }}"},
        "capture": {"hotel_id": "$.hotels[0].id"},
        "assert": {
            "status": 200,
            "max_ms": 1000,
            "json": [{"path": "$.hotels[*].city", "each": True, "equals": "{{ city }}"}],
        },
    }


def detail_step(room: str) -> dict[str, Any]:
    return {
        "name": "open hotel",
        "module": "catalog",
        "interface": "GET /hotels/{id}",
        "path": "/hotel-detail/hotels/{{ hotel_id }}",
        "capture": {"price": {"jsonpath": f"$.rooms[?@.type == '{room}'].price_per_night", "first": True}},
        "assert": {
            "status": 200,
            "max_ms": 1000,
            "json": [{"path": "$.rooms[*].price_per_night", "each": True, "gte": 1}],
        },
    }


def quote_step() -> dict[str, Any]:
    return {
        "name": "quote",
        "module": "pricing",
        "interface": "POST /quotes",
        "method": "POST",
        "path": "/quote/quotes",
        "json": {
            "hotel_id": "{{ hotel_id }}",
            "room_type": "{{ room }}",
            "nights": "{{ nights }}",
            "guests": 2,
        },
        "capture": {"quote_id": "$.quote_id", "total": "$.total"},
        "assert": {
            "status": 201,
            "max_ms": 1000,
            "json": [{"path": "$.total", "equals_expr": "price * nights"}],
        },
    }


def order_steps() -> list[dict[str, Any]]:
    return [
        {
            "name": "order",
            "module": "booking",
            "interface": "POST /orders",
            "method": "POST",
            "path": "/order/orders",
            "json": {"quote_id": "{{ quote_id }}", "guest_name": "Bench", "email": "bench@example.com"},
            "capture": {"order_id": "$.order_id"},
            "assert": {"status": 201, "max_ms": 1000, "json": [{"path": "$.total", "equals": "{{ total }}"}]},
        },
        {
            "name": "read order",
            "module": "booking",
            "interface": "GET /orders/{id}",
            "path": "/order/orders/{{ order_id }}",
            "assert": {"status": 200, "max_ms": 1000, "json": [{"path": "$.status", "equals": "confirmed"}]},
        },
    ]


def generated_suite(cases: int) -> dict[str, Any]:
    scenarios = []
    for n in range(cases):
        room = ROOMS[n % 3]
        flow = n % 4
        if flow == 0:
            steps = [search_step()]
        elif flow == 1:
            steps = [search_step(), detail_step(room)]
        elif flow == 2:
            steps = [search_step(), detail_step(room), quote_step()]
        else:
            steps = [search_step(), detail_step(room), quote_step(), *order_steps()]
        scenarios.append(
            {
                "name": f"case-{n:04d}",
                "tags": ["bench"],
                "vars": {"city": CITIES[n % 4], "room": room, "nights": 1 + n % 7},
                "steps": steps,
            }
        )
    return {"description": f"{cases} generated cases", "scenarios": scenarios}


def calls(run: CheckRun) -> int:
    return sum(1 for s in run.scenarios for step in s.steps if step.attempts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed runs (the best and the median are printed)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-checks-") as tmp:
        suite_file = Path(tmp) / "bench.yaml"
        suite_file.write_text(yaml.safe_dump(generated_suite(args.cases), sort_keys=False))
        started = time.perf_counter()
        suites = load_suites(suite_file)
        load_ms = (time.perf_counter() - started) * 1000

        env = ReferenceEnvironment(
            Path(tmp) / "refenv",
            api_port=free_port(),
            gateway_port=free_port(),
            token=secrets.token_urlsafe(24),
        )
        env.start()
        try:
            with httpx.Client(base_url=env.gateway_url, timeout=20) as gateway:
                for _ in range(4):
                    for service in ("hotel-search", "hotel-detail", "quote", "order"):
                        gateway.get(f"/{service}/health")
            run_checks(
                suites, env.gateway_url, environment="baseline", concurrency=args.concurrency
            )  # warm-up
            walls, runs = [], []
            for _ in range(args.repeat):
                started = time.perf_counter()
                run = run_checks(
                    suites, env.gateway_url, environment="baseline", concurrency=args.concurrency
                )
                walls.append(time.perf_counter() - started)
                runs.append(run)
        finally:
            env.stop()

    best = min(walls)
    run = runs[walls.index(best)]
    print(
        f"business checks benchmark: {args.cases} cases, {calls(run)} HTTP calls through the sandbox gateway"
    )
    print(f"  suite load+validate: {load_ms:.0f} ms")
    print(f"  concurrency {args.concurrency}, {args.repeat} timed runs")
    print(f"  wall time: best {best:.2f} s, median {statistics.median(walls):.2f} s")
    print(f"  cases/s: {args.cases / best:.0f} (best), {args.cases / statistics.median(walls):.0f} (median)")
    print(f"  HTTP calls/s: {calls(run) / best:.0f} (best)")
    print(f"  passed: {run.passed_count}/{len(run.scenarios)}")
    print(f"  goal (< 5 s): {'met' if best < 5 else 'MISSED'}")
    return 0 if run.passed else 1


if __name__ == "__main__":
    sys.exit(main())
