"""Benchmark: one environment patrol run at the source case's scale.

Starts the reference environment with a generated topology of ``--services`` services (two
baseline instances each, served as lightweight instances: ``reference_env.lightweight``), kills
``--down`` instances spread over the services, makes restarts of ``--failing`` services fail
(they stay down: incidents), and times one patrol run (``EnvironmentPatrolOperator.execute``),
whose instances take ``--start-delay`` seconds to become healthy after a restart. Then a second
run (nothing new to heal; the failing ones are still down) and an idle run. Prints the figures
as JSON: run times, restarts, healed/down counts, messages sent.

    uv run --frozen python bench/patrol.py [--services 200] [--down 36] [--failing 4] \
        [--start-delay 5] [--parallel 16] [--budget 100]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import tempfile
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from baseline_guard.operators.patrol import EnvironmentPatrolOperator
from local_stack.connections import env_api_connections
from local_stack.inline_deferral import DeferrableRun
from local_stack.ports import free_port
from reference_env.launcher import ReferenceEnvironment


class MemoryIncidentStore:
    """Incidents kept in memory between the runs (the operator keeps them in the guard's database)."""

    def __init__(self) -> None:
        self.incidents: dict[str, dict[str, Any]] = {}

    def advance(self, step: Any) -> Any:
        self.incidents, outcome = step(dict(self.incidents))
        return outcome


class BenchPatrol(EnvironmentPatrolOperator):
    store: MemoryIncidentStore

    def incident_store(self) -> Any:
        return nullcontext(self.store)


def write_topology(directory: Path, services: int, start_delay_s: float) -> tuple[Path, Path]:
    names = [f"svc-{i:03d}" for i in range(services)]
    topology = {
        "environments": {
            "production": {"db_prefix": "prod"},
            "baseline": {"db_prefix": "baseline", "instances": 2},
        },
        "services": [
            {
                "name": n,
                "module": f"module-{i % 40}",
                "database": n.replace("-", "_"),
                "baseline_version": "1.0.0",
                "production_version": "1.0.0",
                "test_config": {"mode": "test"},
                "production_config": {"mode": "prod"},
            }
            for i, n in enumerate(names)
        ],
    }
    catalog = {"services": {n: [{"version": "1.0.0", "start_delay_s": start_delay_s}] for n in names}}
    (directory / "topology.yaml").write_text(yaml.safe_dump(topology))
    (directory / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    return directory / "topology.yaml", directory / "catalog.yaml"


def timed_run(patrol: BenchPatrol) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    result = DeferrableRun()(patrol, {"data_interval_end": datetime.now(UTC)})  # the trigger runs here
    return time.perf_counter() - started, result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--services", type=int, default=200)
    p.add_argument("--down", type=int, default=36, help="instances killed before the first run")
    p.add_argument("--failing", type=int, default=4, help="services whose restarts fail (among the killed)")
    p.add_argument(
        "--start-delay", type=float, default=5.0, help="seconds a restarted instance takes to be healthy"
    )
    p.add_argument("--parallel", type=int, default=16, help="max_parallel_restarts")
    p.add_argument("--budget", type=float, default=100.0, help="time_budget_s")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-patrol-"))
    topology, catalog = write_topology(work, args.services, args.start_delay)
    token = secrets.token_urlsafe(16)
    env = ReferenceEnvironment(
        work / "state",
        free_port(),
        free_port(),
        token,
        topology=topology,
        catalog=catalog,
        startup_timeout=120,
        lightweight_instances=True,
    )
    started = time.perf_counter()
    with env:
        startup_s = time.perf_counter() - started
        os.environ.update(env_api_connections(env.api_port, token))
        api = httpx.Client(
            base_url=f"{env.api_url}/v1", headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        step = max(1, args.services // args.down)
        killed = [(f"svc-{(i * step) % args.services:03d}", 1 + i % 2) for i in range(args.down)]
        for name, _ in killed[: args.failing]:
            api.put(
                f"/sandbox/services/baseline/{name}/restart-fails", json={"fails": True}
            ).raise_for_status()
        for name, index in killed:
            api.post(f"/sandbox/instances/baseline/{name}/{index}/kill").raise_for_status()
        api.delete("/notifications").raise_for_status()

        patrol = BenchPatrol(
            task_id="bench",
            max_parallel_restarts=args.parallel,
            time_budget_s=args.budget,
            restart_timeout_s=90,
            poll_interval_s=1.0,
        )
        patrol.store = MemoryIncidentStore()
        first_s, first = timed_run(patrol)
        restarts = len(api.get("/sandbox/operations", params={"kind": "restart"}).json())
        messages_first = len(api.get("/notifications").json())
        second_s, second = timed_run(patrol)
        for name, _ in killed[: args.failing]:
            api.put(
                f"/sandbox/services/baseline/{name}/restart-fails", json={"fails": False}
            ).raise_for_status()
        third_s, third = timed_run(patrol)
        idle_s, _ = timed_run(patrol)
        messages = [n["body"] for n in api.get("/notifications").json()]

    figures = {
        "services": args.services,
        "instances": args.services * 2,
        "killed": args.down,
        "restart_fails_for": args.failing,
        "start_delay_s": args.start_delay,
        "max_parallel_restarts": args.parallel,
        "time_budget_s": args.budget,
        "reference_env_startup_s": round(startup_s, 1),
        "run1_s": round(first_s, 1),
        "run1_restarts": restarts,
        "run1_healed": len(first["healed"]),
        "run1_down": len(first["down"]),
        "run1_messages": messages_first,
        "run2_still_failing_s": round(second_s, 1),
        "run2_new_messages": len(second["told"]["down"]) + len(second["told"]["still_down"]),
        "run3_restarts_work_again_s": round(third_s, 1),
        "run3_recovered": len(third["told"]["recovered"]),
        "idle_run_s": round(idle_s, 2),
        "messages_total": len(messages),
        "load_average_1m": round(os.getloadavg()[0], 1),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
