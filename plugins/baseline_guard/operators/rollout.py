"""Dual-instance rollout: bring one service to a version, one instance at a time, never cutting the link."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from baseline_guard.environment_contract import Health, OperationState
from baseline_guard.errors import BaselineGuardError, RolloutFailed, RolloutStuck
from baseline_guard.hooks.environment import healthy_at
from baseline_guard.operators.base import EnvironmentApiOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

DEPLOY, ROLLBACK = "deploy", "rollback"


class DualInstanceRolloutOperator(EnvironmentApiOperator):
    """Roll ``version`` out to every instance of ``service`` in ``environment``, one at a time.

    For each instance: check the others are serving, take it out of rotation, wait for its
    in-flight requests to drain, deploy, then, unless it is healthy within ``defer_after_s``, **defer**
    to :class:`InstancesReadyTrigger` until the deploy finished and the instance is healthy (the
    worker slot is free meanwhile), smoke-check it
    directly and put it back. On any failure the instance is rolled back to its previous version
    (again deferring while it starts) and put back into rotation before the task fails; the other
    instances are not touched. Instances already at the version are skipped, so a rerun only
    finishes what is left.

    The state travels across deferrals with the trigger (handed back in its event): the instances
    still to roll, those rolled, the instance in hand, the step (deploy or rollback) and its
    previous version.

    :param service: service to roll out (templated)
    :param version: target version (templated)
    :param environment: environment to change; never ``production`` (templated)
    :param drain_timeout_s: how long to wait for in-flight requests to finish
    :param deploy_timeout_s: how long the deploy operation and the start may take, together with
        ``health_timeout_s``
    :param health_timeout_s: how long a new instance may take to become healthy (templated)
    :param smoke_paths: paths requested directly on the new instance; each must answer 2xx
    :param poll_interval_s: polling interval of every wait
    :param defer_after_s: an instance healthy within this many seconds of its deploy is taken at once;
        a longer start is awaited deferred (a deferral costs a round trip through the triggerer)
    """

    template_fields: Sequence[str] = ("service", "version", "environment", "health_timeout_s")
    ui_color = "#d6eaf8"

    def __init__(
        self,
        *,
        service: str,
        version: str,
        environment: str = "baseline",
        drain_timeout_s: float = 30.0,
        deploy_timeout_s: float = 120.0,
        health_timeout_s: float = 120.0,
        smoke_paths: Sequence[str] = ("/health",),
        poll_interval_s: float = 0.5,
        defer_after_s: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.service = service
        self.version = version
        self.environment = environment
        self.drain_timeout_s = drain_timeout_s
        self.deploy_timeout_s = deploy_timeout_s
        self.health_timeout_s = health_timeout_s
        self.smoke_paths = smoke_paths
        self.poll_interval_s = poll_interval_s
        self.defer_after_s = defer_after_s

    def execute(self, context: Context) -> dict[str, Any]:
        trace = self.bind_trace_id(context)
        self.env_api.require_writable(self.environment)
        svc = self.env_api.get_service(self.environment, self.service)
        self.log.info(
            "rollout start",
            service=self.service,
            environment=self.environment,
            version=self.version,
            trace_id=trace,
        )
        pending = []
        for inst in svc.instances:
            if inst.version == self.version and inst.health == Health.HEALTHY and inst.in_rotation:
                self.log.info("instance already at version", instance=inst.index, version=self.version)
            else:
                pending.append(inst.index)
        previous = sorted({i.version for i in svc.instances if i.version != self.version})
        return self._next_instance(context, pending=pending, rolled=[], previous_versions=previous)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger: the instance in hand finished its step (deploy or rollback), or not."""
        self.bind_trace_id(context)
        state = event["carry"]
        index, step = state["index"], state["step"]
        problem = self._verify(index, state["target"], event["instances"][0])
        if step == DEPLOY:
            if problem is None:
                self.env_api.set_rotation(self.environment, self.service, index, True)
                self.log.info("back in rotation", instance=index, version=self.version)
                return self._next_instance(
                    context,
                    pending=state["pending"][1:],
                    rolled=[*state["rolled"], index],
                    previous_versions=state["previous_versions"],
                )
            self.log.error("instance failed, rolling back", instance=index, reason=problem)
            return self._start(
                context, index, state["before_version"], ROLLBACK, {**state, "reason": problem}
            )
        if problem is not None:
            raise self._stuck(index, state, problem)
        self.env_api.set_rotation(self.environment, self.service, index, True)
        self.log.info("rolled back and back in rotation", instance=index, version=state["before_version"])
        raise RolloutFailed(
            f"{self.environment}/{self.service} instance {index}: {self.version} failed ({state['reason']}); "
            f"rolled back to {state['before_version']} and back in rotation; other instances untouched"
        )

    # --- one instance --------------------------------------------------------------------

    def _next_instance(
        self, context: Context, *, pending: list[int], rolled: list[int], previous_versions: list[str]
    ) -> Any:
        """Take the next pending instance out of rotation and deploy to it; the result when none is left."""
        if not pending:
            self.log.info("rollout done", service=self.service, version=self.version, instances=rolled)
            return {
                "service": self.service,
                "environment": self.environment,
                "version": self.version,
                "previous_versions": previous_versions,
                "rolled_instances": rolled,
                "changed": bool(rolled),
                "trace_id": self.env_api.trace_id,
            }
        index = pending[0]
        before = self.env_api.get_instance(self.environment, self.service, index)
        self._require_others_serving(index)
        if before.in_rotation:
            self.env_api.set_rotation(self.environment, self.service, index, False)
            self.log.info("out of rotation", instance=index)
        drained = self.env_api.wait_until_drained(
            self.environment,
            self.service,
            index,
            timeout_s=self.drain_timeout_s,
            poll_interval_s=self.poll_interval_s,
        )
        if drained.in_flight:
            self.log.warning("drain timed out, deploying anyway", instance=index, in_flight=drained.in_flight)
        state = {
            "pending": pending,
            "rolled": rolled,
            "previous_versions": previous_versions,
            "before_version": before.version,
        }
        return self._start(context, index, self.version, DEPLOY, state)

    def _start(self, context: Context, index: int, version: str, step: str, state: dict[str, Any]) -> Any:
        """Deploy ``version`` to the instance; go on at once when it is healthy within ``defer_after_s``,
        else defer until it is (raises ``TaskDeferred``)."""
        from baseline_guard.triggers.environment import InstancesReadyTrigger

        try:
            op = self.env_api.deploy(self.environment, self.service, index, version)
        except BaselineGuardError as err:
            if step == ROLLBACK:
                raise self._stuck(index, state, str(err)) from err
            # the deploy was not accepted: roll back all the same
            return self._start(
                context, index, state["before_version"], ROLLBACK, {**state, "reason": str(err)}
            )
        self.log.info("deploying", instance=index, version=version, operation=op.id, step=step)
        instance = {
            "environment": self.environment,
            "service": self.service,
            "index": index,
            "operation_id": op.id,
            "version": version,
        }
        carry = {**state, "index": index, "step": step, "target": version}
        if self._healthy_soon(instance):
            ready = {**instance, "healthy": True, "reason": None, "status": None}
            return self.execute_complete(context, {"instances": [ready], "carry": carry})
        self.defer(
            trigger=InstancesReadyTrigger(
                instances=[instance],
                timeout_s=self.deploy_timeout_s + self.health_timeout_s,
                health_timeout_s=self.health_timeout_s,
                poll_interval_s=self.poll_interval_s,
                env_api_conn_id=self.env_api_conn_id,
                trace_id=self.env_api.trace_id,
                carry=carry,
            ),
            method_name="execute_complete",
        )

    def _healthy_soon(self, instance: dict[str, Any]) -> bool:
        """Whether the deploy finished and the instance is healthy within ``defer_after_s`` (each)."""
        timeout_s, poll_interval_s = self.defer_after_s, self.poll_interval_s
        where = (instance["environment"], instance["service"], instance["index"])
        try:
            op = self.env_api.wait_for_operation(
                instance["operation_id"], timeout_s=timeout_s, poll_interval_s=poll_interval_s
            )
            if op.state != OperationState.SUCCEEDED:
                return False
            report = self.env_api.wait_until_healthy(
                *where, version=instance["version"], timeout_s=timeout_s, poll_interval_s=poll_interval_s
            )
        except BaselineGuardError:  # the trigger asks again and tells what went wrong
            return False
        return healthy_at(report, instance["version"])

    def _stuck(self, index: int, state: dict[str, Any], problem: str) -> RolloutStuck:
        return RolloutStuck(
            f"{self.environment}/{self.service} instance {index}: rollout of {self.version} failed "
            f"({state['reason']}) and rollback to {state['before_version']} failed too ({problem}); "
            "the instance is left OUT of rotation so it serves no traffic: a person must look at it"
        )

    def _verify(self, index: int, version: str, outcome: dict[str, Any]) -> str | None:
        """None when the instance came up healthy at ``version`` and passed its smoke check; else why not."""
        if not outcome["healthy"]:
            return outcome["reason"]
        try:
            url = self.env_api.get_instance(self.environment, self.service, index).url
            self.env_api.smoke_check(url, self.smoke_paths)
        except BaselineGuardError as err:
            return str(err)
        self.log.info("smoke check passed", instance=index, version=version, paths=list(self.smoke_paths))
        return None

    def _require_others_serving(self, index: int) -> None:
        others = [
            i for i in self.env_api.get_service(self.environment, self.service).instances if i.index != index
        ]
        serving = [i for i in others if i.in_rotation and i.health == Health.HEALTHY]
        if others and not serving:
            raise RolloutFailed(
                f"{self.environment}/{self.service}: refusing to take instance {index} out of rotation, "
                "no other instance is healthy and in rotation (the link would be cut); nothing was changed"
            )
