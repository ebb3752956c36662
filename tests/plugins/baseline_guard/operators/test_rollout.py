"""DualInstanceRolloutOperator against a real sandbox: real processes, real gateway, real rotation."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from baseline_guard.errors import ProductionWriteRefused
from baseline_guard.hooks.environment import EnvironmentHook
from baseline_guard.operators.rollout import DualInstanceRolloutOperator, RolloutFailed
from local_stack.connections import env_api_connections
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
    sandbox: ReferenceEnvironment,
) -> None:
    with Traffic(sandbox.gateway_url, "/hotel-search/hotels?city=Paris") as traffic:
        result = _operator(service="hotel-search", version="1.1.0").execute(context={})
    assert result["changed"] is True and result["rolled_instances"] == [1, 2]
    assert result["previous_versions"] == ["1.0.0"]
    assert _versions("hotel-search") == [("1.1.0", True), ("1.1.0", True)]
    assert traffic.sent > 20
    assert traffic.failed == []
    assert set(traffic.versions) == {"1.0.0", "1.1.0"}  # served by old and new while rolling

    again = _operator(service="hotel-search", version="1.1.0").execute(context={})
    assert again["changed"] is False and again["rolled_instances"] == []


def test_unhealthy_version_is_rolled_back_on_first_instance_only(sandbox: ReferenceEnvironment) -> None:
    hook = EnvironmentHook("rollout_env_api")
    untouched_before = hook.get_service("baseline", "quote").instances[1]
    with Traffic(sandbox.gateway_url, "/quote/health") as traffic, pytest.raises(RolloutFailed) as err:
        _operator(service="quote", version="1.9.1-unhealthy", health_timeout_s=3).execute(context={})
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
