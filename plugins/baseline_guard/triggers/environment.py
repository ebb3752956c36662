"""Wait, in the triggerer, until instances of an environment are healthy after a deploy or a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from baseline_guard.environment_contract import OperationState
from baseline_guard.errors import EnvironmentApiError
from baseline_guard.hooks.environment import EnvironmentHook, healthy_at


class InstancesReadyTrigger(BaseTrigger):
    """Wait for each instance's operation (if any) to finish, then for the instance to be healthy.

    All instances are awaited at once and told in one event:
    ``{"instances": [{**instance, "healthy": bool, "reason": str | None, "status": int | None}],
    "carry": carry}``
    (``reason`` says why an instance is not healthy, ``status`` is the API's HTTP status when a call
    failed, e.g. 404 when the environment vanished). The connection is read by its id in the
    triggerer, so no token is stored with the trigger.

    :param instances: ``{"environment", "service", "index"}`` plus optional ``"operation_id"`` (an
        operation to finish first) and ``"version"`` (the version the health check must report)
    :param timeout_s: how long to wait, for all instances together
    :param health_timeout_s: how long an instance may take to become healthy once its operation has
        finished (within ``timeout_s``); None: until ``timeout_s``. A version that deploys but never
        gets healthy is told after this, not after the whole deploy budget.
    :param poll_interval_s: polling interval
    :param env_api_conn_id: Airflow connection id of the environment API
    :param trace_id: ``X-Trace-Id`` of the calls (the task's)
    :param carry: the deferring task's state, handed back unchanged in the event (the resume
        method reads it there; ``dag.test()`` passes a resumed task the event only, not ``kwargs``)
    """

    def __init__(
        self,
        *,
        instances: list[dict[str, Any]],
        timeout_s: float,
        health_timeout_s: float | None = None,
        poll_interval_s: float = 1.0,
        env_api_conn_id: str = EnvironmentHook.default_conn_name,
        trace_id: str | None = None,
        carry: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.instances = instances
        self.timeout_s = timeout_s
        self.health_timeout_s = health_timeout_s
        self.poll_interval_s = poll_interval_s
        self.env_api_conn_id = env_api_conn_id
        self.trace_id = trace_id
        self.carry = carry or {}

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "instances": self.instances,
                "timeout_s": self.timeout_s,
                "health_timeout_s": self.health_timeout_s,
                "poll_interval_s": self.poll_interval_s,
                "env_api_conn_id": self.env_api_conn_id,
                "trace_id": self.trace_id,
                "carry": self.carry,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = EnvironmentHook(self.env_api_conn_id, trace_id=self.trace_id)
        deadline = time.monotonic() + self.timeout_s
        try:
            outcomes = await asyncio.gather(*(self._ready(hook, inst, deadline) for inst in self.instances))
        finally:
            await hook.aclose()
        yield TriggerEvent({"instances": list(outcomes), "carry": self.carry})

    async def _ready(self, hook: EnvironmentHook, inst: dict[str, Any], deadline: float) -> dict[str, Any]:
        try:
            reason = await self._not_ready_reason(hook, inst, deadline)
        except EnvironmentApiError as err:
            return {**inst, "healthy": False, "reason": str(err), "status": err.status}
        return {**inst, "healthy": reason is None, "reason": reason, "status": None}

    async def _not_ready_reason(
        self, hook: EnvironmentHook, inst: dict[str, Any], deadline: float
    ) -> str | None:
        """None once the instance is healthy; else why it is not, for people."""
        if inst.get("operation_id"):
            op = await hook.await_operation(
                inst["operation_id"], timeout_s=_left(deadline), poll_interval_s=self.poll_interval_s
            )
            if not op.state.finished:
                return f"{op.kind} still {op.state} after {self.timeout_s:.0f} s"
            if op.state != OperationState.SUCCEEDED:
                return f"{op.kind} {op.state}: {op.message or 'no message'}"
        budget = _left(deadline)
        if self.health_timeout_s is not None:
            budget = min(budget, self.health_timeout_s)
        report = await hook.await_healthy(
            inst["environment"],
            inst["service"],
            inst["index"],
            version=inst.get("version"),
            timeout_s=budget,
            poll_interval_s=self.poll_interval_s,
        )
        if healthy_at(report, inst.get("version")):
            return None
        waited = (
            self.timeout_s if self.health_timeout_s is None else min(self.timeout_s, self.health_timeout_s)
        )
        return f"not healthy within {waited:.0f} s (last health: {report.health}{_at(report.version)})"


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _at(version: str | None) -> str:
    return f", version {version}" if version else ""
