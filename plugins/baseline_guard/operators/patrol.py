"""Environment patrol: find instances that are down, restart them in parallel, tell once per incident."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import Variable

from baseline_guard.environment_contract import (
    EnvironmentKind,
    Health,
    Instance,
    InstanceState,
    OperationState,
)
from baseline_guard.hooks.environment import EnvironmentApiError
from baseline_guard.notifiers.channels import send
from baseline_guard.operators.base import EnvironmentApiOperator
from baseline_guard.patrol_incidents import environment_of, instance_key, messages, next_incidents

INCIDENTS_VARIABLE = "baseline_guard_patrol_incidents"
VANISHED = "vanished"


def is_down(inst: Instance) -> bool:
    """Down: its process is not running, or it runs but fails its health check.

    Instances out of rotation or deploying are left alone: a rollout or a person is on them.
    """
    if not inst.in_rotation or inst.state == InstanceState.DEPLOYING:
        return False
    return inst.state in (InstanceState.STOPPED, InstanceState.FAILED) or inst.health == Health.UNHEALTHY


class IncidentStore:
    """The open incidents, in one Airflow Variable: read once at the start of a run, written once at its end."""

    def __init__(self, key: str = INCIDENTS_VARIABLE) -> None:
        self.key = key

    def load(self) -> dict[str, dict[str, Any]]:
        return json.loads(Variable.get(self.key, default="{}"))

    def save(self, incidents: dict[str, dict[str, Any]]) -> None:
        Variable.set(self.key, json.dumps(incidents, indent=1, sort_keys=True))


class EnvironmentPatrolOperator(EnvironmentApiOperator):
    """Restart every down instance of the baseline and the project environments.

    Within an environment, down instances are restarted in parallel (at most
    ``max_parallel_restarts`` at a time). The whole run keeps to ``time_budget_s`` (shorter than its
    execution timeout): a restart still unhealthy then counts as down, and instances not reached
    yet are reported as such. The admins hear once per incident (``baseline_guard.patrol_incidents``):
    "down", "still down" at most hourly, "recovered". An environment deleted meanwhile (404) is
    skipped. Production is never touched. The task succeeds when the patrol did its rounds, even with
    instances still down (the incident messages tell); it fails only when it could not patrol.

    :param restart_timeout_s: how long a restarted instance may take to become healthy
    :param poll_interval_s: polling interval while waiting
    :param max_parallel_restarts: restarts in flight at once within an environment
    :param time_budget_s: the longest one patrol run may take
    """

    template_fields: Sequence[str] = ()
    ui_color = "#fdebd0"

    def __init__(
        self,
        *,
        restart_timeout_s: float = 90.0,
        poll_interval_s: float = 1.0,
        max_parallel_restarts: int = 8,
        time_budget_s: float = 180.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_parallel_restarts < 1 or time_budget_s <= 0:
            raise ValueError(
                f"max_parallel_restarts must be >= 1 and time_budget_s > 0, got {max_parallel_restarts}, "
                f"{time_budget_s}"
            )
        self.restart_timeout_s = restart_timeout_s
        self.poll_interval_s = poll_interval_s
        self.max_parallel_restarts = max_parallel_restarts
        self.time_budget_s = time_budget_s

    def incident_store(self) -> IncidentStore:
        return IncidentStore()

    def execute(self, context: Any) -> dict[str, Any]:
        self.bind_trace_id(context)
        deadline = time.monotonic() + self.time_budget_s
        store = self.incident_store()
        previous = store.load()
        healed: list[str] = []
        down_now: dict[str, str] = {}
        checked: list[str] = []
        vanished: list[str] = []
        environments = self.env_api.list_environments()
        listed = {env.name for env in environments}
        vanished += sorted({environment_of(key) for key in previous} - listed)
        for env in environments:
            if env.kind == EnvironmentKind.PRODUCTION:
                continue
            outcomes = self._patrol_environment(env.name, deadline)
            if outcomes is None or VANISHED in outcomes.values():
                self.log.info("environment vanished during the patrol; skipped", environment=env.name)
                vanished.append(env.name)
                continue
            checked.append(env.name)
            for key, outcome in outcomes.items():
                if outcome is None:
                    healed.append(key)
                else:
                    down_now[key] = outcome
        incidents, told = next_incidents(
            previous, down_now, checked=checked, vanished=vanished, now=_run_time(context)
        )
        store.save(incidents)
        for title, body, failure in messages(told):
            send(title, body, failure=failure)
        self.log.info(
            "patrol done", healed=len(healed), down=len(down_now), new=len(told.down),
            recovered=len(told.recovered), vanished=vanished,
        )  # fmt: skip
        return {
            "healed": healed,
            "down": sorted(down_now),
            "told": {"down": sorted(told.down), "still_down": sorted(told.still_down),
                     "recovered": told.recovered},
            "vanished": vanished,
        }  # fmt: skip

    def _patrol_environment(self, env: str, deadline: float) -> dict[str, str | None] | None:
        """Restart the down instances of ``env`` in parallel; instance key -> None (healed) or why it is down.

        None when the environment no longer exists.
        """
        try:
            services = self.env_api.list_services(env)
        except EnvironmentApiError as err:
            if err.status == 404:
                return None
            raise
        down = [(svc.name, inst) for svc in services for inst in svc.instances if is_down(inst)]
        if not down:
            return {}
        for name, inst in down:
            self.log.warning(
                "instance down", instance=instance_key(env, name, inst.index), state=inst.state,
                health=inst.health,
            )  # fmt: skip
        self.env_api.get_conn()  # build the shared client before the threads use it
        workers = min(self.max_parallel_restarts, len(down))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="restart") as pool:
            results = pool.map(lambda d: self._restart(env, d[0], d[1].index, deadline), down)
            return {
                instance_key(env, name, inst.index): out
                for (name, inst), out in zip(down, results, strict=True)
            }

    def _restart(self, env: str, service: str, index: int, budget_deadline: float) -> str | None:
        """Restart one instance; None when it came back healthy, else what went wrong (or ``VANISHED``)."""
        if time.monotonic() >= budget_deadline:
            return "not restarted: the run's time budget was spent"
        deadline = min(time.monotonic() + self.restart_timeout_s, budget_deadline)
        try:
            op = self.env_api.restart(env, service, index)
            while not op.state.finished and time.monotonic() < deadline:
                time.sleep(self.poll_interval_s)
                op = self.env_api.get_operation(op.id)
            if not op.state.finished:
                return (
                    f"restart still {op.state} after {self.restart_timeout_s:.0f}s or the run's time budget"
                )
            if op.state != OperationState.SUCCEEDED:
                return f"restart {op.state}: {op.message or 'no message'}"
            health = None
            while time.monotonic() < deadline:
                health = self.env_api.instance_health(env, service, index).health
                if health == Health.HEALTHY:
                    self.log.info("instance healed", instance=instance_key(env, service, index))
                    return None
                time.sleep(self.poll_interval_s)
            return f"restarted but not healthy in time (last: {health})"
        except EnvironmentApiError as err:
            return VANISHED if err.status == 404 else str(err)


def _run_time(context: Any) -> datetime:
    """The run's time (one time source); now when run outside Airflow."""
    dag_run = context.get("dag_run") if hasattr(context, "get") else None
    run_after = getattr(dag_run, "run_after", None)
    return run_after if isinstance(run_after, datetime) else datetime.now(UTC)
