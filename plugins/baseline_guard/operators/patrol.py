"""Environment patrol: find instances that are down, restart them, report what could not be healed."""

from __future__ import annotations

import time
from typing import Any

from airflow.sdk.exceptions import AirflowException

from baseline_guard.environment_contract import (
    EnvironmentKind,
    Health,
    Instance,
    InstanceState,
    OperationState,
)
from baseline_guard.notifiers.admins import notify
from baseline_guard.operators.base import EnvironmentApiOperator


def is_down(inst: Instance) -> bool:
    """Down: its process is not running, or it runs but fails its health check.

    Instances out of rotation or deploying are left alone: a rollout or a person is on them.
    """
    if not inst.in_rotation or inst.state == InstanceState.DEPLOYING:
        return False
    return inst.state in (InstanceState.STOPPED, InstanceState.FAILED) or inst.health == Health.UNHEALTHY


class EnvironmentPatrolOperator(EnvironmentApiOperator):
    """Restart every down instance of the baseline and the project environments.

    Production is never touched. When a restart does not bring an instance back to healthy,
    the environment admins are told what was tried, and the task fails.

    :param restart_timeout_s: how long a restarted instance may take to become healthy
    :param poll_interval_s: polling interval while waiting
    """

    ui_color = "#fdebd0"

    def __init__(
        self, *, restart_timeout_s: float = 60.0, poll_interval_s: float = 0.5, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.restart_timeout_s = restart_timeout_s
        self.poll_interval_s = poll_interval_s

    def execute(self, context: Any) -> dict[str, list[str]]:
        self.bind_trace_id(context)
        healed, unhealed = [], []
        for env in self.env_api.list_environments():
            if env.kind == EnvironmentKind.PRODUCTION:
                continue
            for svc in self.env_api.list_services(env.name):
                for inst in filter(is_down, svc.instances):
                    name = f"{env.name}/{svc.name}#{inst.index}"
                    self.log.warning("instance down", instance=name, state=inst.state, health=inst.health)
                    outcome = self._restart(env.name, svc.name, inst.index)
                    (healed if outcome is None else unhealed).append(
                        name if outcome is None else f"{name}: {outcome}"
                    )
        self.log.info("patrol done", healed=healed, unhealed=unhealed)
        if unhealed:
            notify(
                f"Baseline Guard patrol: {len(unhealed)} instance(s) still down after a restart",
                "Tried: restart, then waited for healthy.\n" + "\n".join(f"✘ {u}" for u in unhealed),
                failure=True,
            )
            raise AirflowException(f"instances still down after a restart: {'; '.join(unhealed)}")
        return {"healed": healed, "unhealed": unhealed}

    def _restart(self, env: str, service: str, index: int) -> str | None:
        """Restart one instance; None when it came back healthy, else what went wrong."""
        try:
            op = self.env_api.restart(env, service, index)
            deadline = time.monotonic() + self.restart_timeout_s
            while not op.state.finished and time.monotonic() < deadline:
                time.sleep(self.poll_interval_s)
                op = self.env_api.get_operation(op.id)
            if op.state != OperationState.SUCCEEDED:
                return f"restart {op.state}: {op.message or 'no message'}"
            while time.monotonic() < deadline:
                health = self.env_api.instance_health(env, service, index)
                if health.health == Health.HEALTHY:
                    self.log.info("instance healed", instance=f"{env}/{service}#{index}")
                    return None
                time.sleep(self.poll_interval_s)
            return f"restarted but not healthy within {self.restart_timeout_s:.0f}s (last: {health.health})"
        except AirflowException as err:
            return str(err)
