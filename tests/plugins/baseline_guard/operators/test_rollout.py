"""DualInstanceRolloutOperator against a real sandbox: real processes, real gateway, real rotation."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from airflow.sdk._shared.module_loading import import_string
from airflow.sdk.exceptions import TaskDeferred
from baseline_guard.errors import ProductionWriteRefused
from baseline_guard.hooks.environment import EnvironmentHook
from baseline_guard.operators.rollout import DualInstanceRolloutOperator, RolloutFailed
from baseline_guard.triggers.environment import InstancesReadyTrigger
from local_stack.connections import env_api_connections
from local_stack.inline_deferral import first_event
from reference_env.launcher import ReferenceEnvironment


@pytest.fixture
def sandbox(
    make_env_api: Callable[[], ReferenceEnvironment], monkeypatch: pytest.MonkeyPatch
) -> ReferenceEnvironment:
    env = make_env_api()
    for key, value in env_api_connections(env.api_port, env.token, conn_id="rollout_env_api").items():
        monkeypatch.setenv(key, value)
    return env


class Traffic:
    """Business requests through the gateway in a bounded loop while a rollout runs."""

    def __init__(self, gateway_url: str, service_path: str) -> None:
        self.url = gateway_url + service_path
        self.sent = 0
        self.failed: list[str] = []
        self.versions: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            while not self._stop.is_set() and self.sent < 20_000:
                self.sent += 1
                try:
                    r = client.get(self.url)
                    if r.status_code != 200:
                        self.failed.append(f"{r.status_code} {r.text[:80]}")
                    self.versions[r.headers.get("x-version", "?")] += 1
                except httpx.HTTPError as err:
                    self.failed.append(repr(err))

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def _operator(**kwargs: object) -> DualInstanceRolloutOperator:
    return DualInstanceRolloutOperator(
        task_id="rollout", env_api_conn_id="rollout_env_api", poll_interval_s=0.1, **kwargs
    )  # type: ignore[arg-type]


def _versions(service: str) -> list[tuple[str, bool]]:
    svc = EnvironmentHook("rollout_env_api").get_service("baseline", service)
    return [(i.version, i.in_rotation) for i in svc.instances]


def test_healthy_version_reaches_both_instances_without_a_failed_request(
    sandbox: ReferenceEnvironment, run_deferrable: Any
) -> None:
    with Traffic(sandbox.gateway_url, "/hotel-search/hotels?city=Paris") as traffic:
        result = run_deferrable(_operator(service="hotel-search", version="1.1.0"))
    assert result["changed"] is True and result["rolled_instances"] == [1, 2]
    assert result["previous_versions"] == ["1.0.0"]
    assert _versions("hotel-search") == [("1.1.0", True), ("1.1.0", True)]
    assert traffic.sent > 20
    assert traffic.failed == []
    assert set(traffic.versions) == {"1.0.0", "1.1.0"}  # served by old and new while rolling

    again = run_deferrable(_operator(service="hotel-search", version="1.1.0"))
    assert again["changed"] is False and again["rolled_instances"] == []


def test_unhealthy_version_is_rolled_back_on_first_instance_only(
    sandbox: ReferenceEnvironment, run_deferrable: Any
) -> None:
    hook = EnvironmentHook("rollout_env_api")
    untouched_before = hook.get_service("baseline", "quote").instances[1]
    with Traffic(sandbox.gateway_url, "/quote/health") as traffic, pytest.raises(RolloutFailed) as err:
        run_deferrable(_operator(service="quote", version="1.9.1-unhealthy", health_timeout_s=3))
    assert "instance 1" in str(err.value) and "rolled back to 1.1.0" in str(err.value)
    after = hook.get_service("baseline", "quote").instances
    assert (after[0].version, after[0].in_rotation, after[0].health) == ("1.1.0", True, "healthy")
    assert after[1].version == untouched_before.version == "1.1.0"
    assert after[1].in_rotation and after[1].previous_version == untouched_before.previous_version
    assert traffic.failed == []
    assert "1.9.1-unhealthy" not in traffic.versions


def test_refuses_when_other_instance_is_not_serving(sandbox: ReferenceEnvironment) -> None:
    hook = EnvironmentHook("rollout_env_api")
    hook.set_rotation("baseline", "order", 2, False)
    with pytest.raises(RolloutFailed, match="link would be cut"):
        _operator(service="order", version="1.1.0").execute(context={})
    assert _versions("order") == [("1.0.0", True), ("1.0.0", False)]


def test_production_is_refused_before_any_change(sandbox: ReferenceEnvironment) -> None:
    with pytest.raises(ProductionWriteRefused):
        _operator(service="quote", version="1.3.0", environment="production").execute(context={})


def test_slow_start_defers_and_the_trigger_hands_back_a_healthy_instance(
    sandbox: ReferenceEnvironment,
) -> None:
    operator = _operator(service="quote", version="1.9.4-slowstart", defer_after_s=0)  # defer every start
    with pytest.raises(TaskDeferred) as first:
        operator.execute(context={})
    trigger = first.value.trigger
    assert isinstance(trigger, InstancesReadyTrigger) and first.value.method_name == "execute_complete"
    assert trigger.carry["index"] == 1 and trigger.carry["before_version"] == "1.1.0"  # the state travels
    classpath, kwargs = trigger.serialize()
    assert import_string(classpath)(**kwargs).serialize() == (classpath, kwargs)  # what the DB stores
    assert sandbox.token not in json.dumps(kwargs)  # the triggerer reads the connection itself
    assert _versions("quote") == [("1.9.4-slowstart", False), ("1.1.0", True)]  # one out, one serving

    started = time.monotonic()
    event = asyncio.run(first_event(trigger))
    assert time.monotonic() - started >= 2  # it waited out the 3 s start
    assert event.payload["instances"][0]["healthy"] is True, event.payload

    with pytest.raises(TaskDeferred) as second:  # instance 1 done: back in, on to instance 2
        operator.execute_complete({}, event=event.payload)
    assert second.value.trigger.carry["index"] == 2 and second.value.trigger.carry["rolled"] == [1]
    assert _versions("quote") == [("1.9.4-slowstart", True), ("1.9.4-slowstart", False)]

    event = asyncio.run(first_event(second.value.trigger))
    result = operator.execute_complete({}, event=event.payload)
    assert result["rolled_instances"] == [1, 2] and result["previous_versions"] == ["1.1.0"]
    assert _versions("quote") == [("1.9.4-slowstart", True), ("1.9.4-slowstart", True)]
