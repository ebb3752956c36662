"""Dual-instance rollout: bring one service to a version, one instance at a time, never cutting the link."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from airflow.sdk.exceptions import AirflowException

from baseline_guard.environment_contract import Health, Instance, OperationState, Service
from baseline_guard.errors import RolloutFailed, RolloutStuck
from baseline_guard.operators.base import EnvironmentApiOperator


class DualInstanceRolloutOperator(EnvironmentApiOperator):
    """Roll ``version`` out to every instance of ``service`` in ``environment``, one at a time.

    For each instance: check the others are serving, take it out of rotation, wait for its
    in-flight requests to drain, deploy, wait until healthy, smoke-check it directly, put it
    back. On any failure the instance is rolled back to its previous version and put back into
    rotation before the task fails; the other instances are not touched. Instances already at
    the version are skipped, so a rerun only finishes what is left.

    :param service: service to roll out (templated)
    :param version: target version (templated)
    :param environment: environment to change; never ``production`` (templated)
    :param drain_timeout_s: how long to wait for in-flight requests to finish
    :param deploy_timeout_s: how long the deploy operation may take
    :param health_timeout_s: how long a new instance may take to become healthy (templated)
    :param smoke_paths: paths requested directly on the new instance; each must answer 2xx
    :param poll_interval_s: polling interval of every wait
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

    def execute(self, context: Any) -> dict[str, Any]:
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
        rolled: list[int] = []
        previous = sorted({i.version for i in svc.instances if i.version != self.version})
        for inst in svc.instances:
            if inst.version == self.version and inst.health == Health.HEALTHY and inst.in_rotation:
                self.log.info("instance already at version", instance=inst.index, version=self.version)
                continue
            self._roll_instance(inst.index)
            rolled.append(inst.index)
        self.log.info(
            "rollout done", service=self.service, version=self.version, instances=rolled, trace_id=trace
        )
        return {
            "service": self.service,
            "environment": self.environment,
            "version": self.version,
            "previous_versions": previous,
            "rolled_instances": rolled,
            "changed": bool(rolled),
            "trace_id": trace,
        }

    # --- one instance --------------------------------------------------------------------

    def _roll_instance(self, index: int) -> None:
        before = self._instance(index)
        self._require_others_serving(index)
        if before.in_rotation:
            self.env_api.set_rotation(self.environment, self.service, index, False)
            self.log.info("out of rotation", instance=index)
        self._wait("drain", lambda: self._instance(index).in_flight == 0, self.drain_timeout_s, fatal=False)
        try:
            self._deploy_and_verify(index, self.version)
        except Exception as err:
            self.log.error("instance failed, rolling back", instance=index, reason=str(err))
            self._roll_back(index, before.version, reason=str(err))
            raise RolloutFailed(
                f"{self.environment}/{self.service} instance {index}: {self.version} failed ({err}); "
                f"rolled back to {before.version} and back in rotation; other instances untouched"
            ) from err
        self.env_api.set_rotation(self.environment, self.service, index, True)
        self.log.info("back in rotation", instance=index, version=self.version)

    def _deploy_and_verify(self, index: int, version: str) -> None:
        op = self.env_api.deploy(self.environment, self.service, index, version)
        self.log.info("deploying", instance=index, version=version, operation=op.id)

        def finished() -> bool:
            nonlocal op
            op = self.env_api.get_operation(op.id)
            return op.state.finished

        self._wait(f"deploy operation {op.id}", finished, self.deploy_timeout_s)
        if op.state != OperationState.SUCCEEDED:
            raise AirflowException(f"deploy of {version} failed: {op.message or op.state}")
        last: list[Health] = []

        def healthy() -> bool:
            report = self.env_api.instance_health(self.environment, self.service, index)
            last[:] = [report.health]
            return report.health == Health.HEALTHY and report.version in (None, version)

        self._wait(
            "health", healthy, float(self.health_timeout_s), detail=lambda: f"last health: {last[-1:]}"
        )
        self._smoke(index, version)

    def _smoke(self, index: int, version: str) -> None:
        url = self._instance(index).url
        if not url:
            raise AirflowException("instance has no address to smoke-check")
        with httpx.Client(base_url=url, timeout=10.0) as client:
            for path in self.smoke_paths:
                response = client.get(path, headers={"X-Trace-Id": self.env_api.trace_id})
                if response.status_code >= 300:
                    raise AirflowException(f"smoke check GET {path} answered {response.status_code}")
        self.log.info("smoke check passed", instance=index, version=version, paths=list(self.smoke_paths))

    def _roll_back(self, index: int, version: str, *, reason: str) -> None:
        try:
            self._deploy_and_verify(index, version)
        except Exception as err:
            raise RolloutStuck(
                f"{self.environment}/{self.service} instance {index}: rollout of {self.version} failed ({reason}) "
                f"and rollback to {version} failed too ({err}); the instance is left OUT of rotation "
                "so it serves no traffic: a person must look at it"
            ) from err
        self.env_api.set_rotation(self.environment, self.service, index, True)
        self.log.info("rolled back and back in rotation", instance=index, version=version)

    # --- helpers -------------------------------------------------------------------------

    def _service(self) -> Service:
        return self.env_api.get_service(self.environment, self.service)

    def _instance(self, index: int) -> Instance:
        for inst in self._service().instances:
            if inst.index == index:
                return inst
        raise AirflowException(f"{self.environment}/{self.service} has no instance {index}")

    def _require_others_serving(self, index: int) -> None:
        others = [i for i in self._service().instances if i.index != index]
        serving = [i for i in others if i.in_rotation and i.health == Health.HEALTHY]
        if others and not serving:
            raise RolloutFailed(
                f"{self.environment}/{self.service}: refusing to take instance {index} out of rotation, "
                "no other instance is healthy and in rotation (the link would be cut); nothing was changed"
            )

    def _wait(
        self,
        what: str,
        done: Callable[[], bool],
        timeout_s: float,
        *,
        fatal: bool = True,
        detail: Callable[[], str] = lambda: "",
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() >= deadline:
                message = f"timed out after {timeout_s:.0f}s waiting for {what} {detail()}".strip()
                if fatal:
                    raise AirflowException(message)
                self.log.warning(message)
                return
            time.sleep(self.poll_interval_s)
