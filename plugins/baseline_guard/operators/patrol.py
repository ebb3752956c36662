"""Environment patrol: find instances that are down, restart them in parallel, tell once per incident."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypedDict

from baseline_guard.clock import run_as_of
from baseline_guard.environment_contract import (
    EnvironmentKind,
    Health,
    Instance,
    InstanceState,
    OperationState,
)
from baseline_guard.errors import EnvironmentApiError
from baseline_guard.operators.base import EnvironmentApiOperator, GuardDbOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from baseline_guard.health.guard_state import PatrolIncidentStore

VANISHED = "vanished"


def is_down(inst: Instance) -> bool:
    """Down: its process is not running, or it runs but fails its health check.

    Instances out of rotation or deploying are left alone: a rollout or a person is on them.
    """
    if not inst.in_rotation or inst.state == InstanceState.DEPLOYING:
        return False
    return inst.state in (InstanceState.STOPPED, InstanceState.FAILED) or inst.health == Health.UNHEALTHY


class _Round(TypedDict):
    """What one patrol round found (carried through the trigger while restarted instances come back)."""

    listed: list[str]
    checked: list[str]
    vanished: list[str]
    outcomes: dict[str, str | None]


class EnvironmentPatrolOperator(EnvironmentApiOperator, GuardDbOperator):
    """Restart every down instance of the baseline and the project environments.

    Within an environment, down instances are restarted in parallel (at most
    ``max_parallel_restarts`` restart operations at a time); then the task **defers once** to
    :class:`InstancesReadyTrigger`, which waits for all restarted instances to be healthy (the
    worker slot is free meanwhile). The whole run keeps to ``time_budget_s`` (shorter than its
    execution timeout): a restart still unhealthy then counts as down, and instances not reached
    yet are reported as such. An environment deleted meanwhile (404) is skipped. Production is never
    touched. The task succeeds when the patrol did its rounds, even with instances still down; it
    fails only when it could not patrol.

    The incident transitions (``baseline_guard.protection.patrol_incidents``: "down", "still down" at most
    hourly, "recovered") are returned under ``messages``, rendered for people; the DAG sends them
    with a success callback (:class:`~baseline_guard.notifiers.results.ResultNotifier`), so a failed or
    retried try tells nothing. The open incidents are rows of the guard's database (table
    ``patrol_incident``), advanced in one transaction that locks them, so two overlapping runs (a run
    and its retry) never tell the same transition twice.

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

    def incident_store(self) -> AbstractContextManager[PatrolIncidentStore]:
        """Where the open incidents are kept: the guard's database (a benchmark may keep them in memory)."""
        return self.guard_db.patrol_incidents()

    def execute(self, context: Context) -> dict[str, Any]:
        self.bind_trace_id(context)
        deadline = time.monotonic() + self.time_budget_s
        environments = [
            e.name for e in self.env_api.list_environments() if e.kind != EnvironmentKind.PRODUCTION
        ]
        round_: _Round = {"listed": environments, "checked": [], "vanished": [], "outcomes": {}}
        restarted: list[dict[str, Any]] = []
        for env in environments:
            found = self._restart_down_instances(env, deadline)
            if found is None or VANISHED in found.values():
                self.log.info("environment vanished during the patrol; skipped", environment=env)
                round_["vanished"].append(env)
                continue
            round_["checked"].append(env)
            for key, outcome in found.items():
                if isinstance(outcome, dict):
                    restarted.append(outcome)
                else:
                    round_["outcomes"][key] = outcome
        if restarted:
            from baseline_guard.triggers.environment import InstancesReadyTrigger

            self.defer(
                trigger=InstancesReadyTrigger(
                    instances=restarted,
                    timeout_s=max(0.0, min(self.restart_timeout_s, deadline - time.monotonic())),
                    poll_interval_s=self.poll_interval_s,
                    env_api_conn_id=self.env_api_conn_id,
                    trace_id=self.env_api.trace_id,
                    carry=round_,
                ),
                method_name="execute_complete",
            )
        return self._conclude(context, **round_)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger: each restarted instance came back healthy, or did not."""
        from baseline_guard.protection.patrol_incidents import environment_of, instance_key

        self.bind_trace_id(context)
        round_ = event["carry"]
        outcomes, vanished = dict(round_["outcomes"]), list(round_["vanished"])
        for inst in event["instances"]:
            key = instance_key(inst["environment"], inst["service"], inst["index"])
            if inst["status"] == 404:
                vanished.append(inst["environment"])
            elif inst["healthy"]:
                self.log.info("instance healed", instance=key)
                outcomes[key] = None
            else:
                outcomes[key] = f"restarted but {inst['reason']}"
        vanished = sorted(set(vanished))
        checked = [env for env in round_["checked"] if env not in vanished]
        outcomes = {k: v for k, v in outcomes.items() if environment_of(k) not in vanished}
        return self._conclude(
            context, listed=round_["listed"], checked=checked, vanished=vanished, outcomes=outcomes
        )

    def _conclude(
        self,
        context: Context,
        *,
        listed: list[str],
        checked: list[str],
        vanished: list[str],
        outcomes: dict[str, str | None],
    ) -> dict[str, Any]:
        """Open, keep or close the incidents (one transaction on their rows) and say what to tell."""
        from baseline_guard.protection.patrol_incidents import (
            Transitions,
            environment_of,
            messages,
            next_incidents,
        )

        down_now = {key: why for key, why in outcomes.items() if why is not None}
        healed = sorted(key for key, why in outcomes.items() if why is None)
        now = run_as_of(context)

        def step(previous: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], Any]:
            gone = {environment_of(key) for key in previous} - set(listed)
            all_vanished = sorted({*vanished, *gone})
            incidents, told = next_incidents(
                previous, down_now, checked=checked, vanished=all_vanished, now=now
            )
            return incidents, (told, all_vanished)

        told: Transitions
        with self.incident_store() as store:
            told, vanished = store.advance(step)
        self.log.info(
            "patrol done",
            healed=len(healed),
            down=len(down_now),
            new=len(told.down),
            recovered=len(told.recovered),
            vanished=vanished,
        )
        return {
            "healed": healed,
            "down": sorted(down_now),
            "told": {
                "down": sorted(told.down),
                "still_down": sorted(told.still_down),
                "recovered": told.recovered,
            },
            "vanished": vanished,
            "messages": [{"title": t, "body": b, "failure": f} for t, b, f in messages(told)],
        }

    def _restart_down_instances(self, env: str, deadline: float) -> dict[str, Any] | None:
        """Restart the down instances of ``env`` in parallel.

        Instance key -> the instance to await (its restart succeeded), or why it is still down, or
        ``VANISHED``; None when the environment no longer exists.
        """
        from baseline_guard.protection.patrol_incidents import instance_key

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
                "instance down",
                instance=instance_key(env, name, inst.index),
                state=inst.state,
                health=inst.health,
            )
        self.env_api.get_conn()  # build the shared client before the threads use it
        workers = min(self.max_parallel_restarts, len(down))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="restart") as pool:
            results = pool.map(lambda d: self._restart(env, d[0], d[1].index, deadline), down)
            return {
                instance_key(env, name, inst.index): out
                for (name, inst), out in zip(down, results, strict=True)
            }

    def _restart(self, env: str, service: str, index: int, deadline: float) -> dict[str, Any] | str:
        """Restart one instance: the instance to await when its restart succeeded, else why not."""
        if time.monotonic() >= deadline:
            return "not restarted: the run's time budget was spent"
        try:
            op = self.env_api.restart(env, service, index)
            op = self.env_api.wait_for_operation(
                op.id,
                timeout_s=min(self.restart_timeout_s, deadline - time.monotonic()),
                poll_interval_s=self.poll_interval_s,
            )
        except EnvironmentApiError as err:
            return VANISHED if err.status == 404 else str(err)
        if not op.state.finished:
            return f"restart still {op.state} after {self.restart_timeout_s:.0f} s or the run's time budget"
        if op.state != OperationState.SUCCEEDED:
            return f"restart {op.state}: {op.message or 'no message'}"
        return {"environment": env, "service": service, "index": index}
