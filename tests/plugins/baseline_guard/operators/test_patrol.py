"""EnvironmentPatrolOperator against a real sandbox: a killed process is restarted; a failing restart is reported."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from airflow.sdk.exceptions import AirflowException
from baseline_guard.hooks.environment import EnvironmentHook
from baseline_guard.operators.patrol import EnvironmentPatrolOperator
from local_stack.connections import env_api_connections
from reference_env.launcher import ReferenceEnvironment


@pytest.fixture
def sandbox(
    make_env_api: Callable[[], ReferenceEnvironment], monkeypatch: pytest.MonkeyPatch
) -> ReferenceEnvironment:
    env = make_env_api()
    for key, value in env_api_connections(env.api_port, env.token, conn_id="patrol_env_api").items():
        monkeypatch.setenv(key, value)
    return env


def _api(env: ReferenceEnvironment) -> httpx.Client:
    return httpx.Client(
        base_url=env.api_url + "/v1", headers={"Authorization": f"Bearer {env.token}"}, timeout=10
    )


def _patrol() -> EnvironmentPatrolOperator:
    return EnvironmentPatrolOperator(
        task_id="patrol", env_api_conn_id="patrol_env_api", restart_timeout_s=15, poll_interval_s=0.1
    )


def test_killed_instance_is_restarted(sandbox: ReferenceEnvironment) -> None:
    hook = EnvironmentHook("patrol_env_api")
    with _api(sandbox) as api:
        api.post("/sandbox/instances/baseline/quote/2/kill").raise_for_status()
    assert hook.get_service("baseline", "quote").instances[1].health != "healthy"

    result = _patrol().execute(context={})

    assert result == {"healed": ["baseline/quote#2"], "unhealed": []}
    inst = hook.get_service("baseline", "quote").instances[1]
    assert (inst.state, inst.health, inst.version) == ("running", "healthy", "1.1.0")
    assert httpx.get(f"{inst.url}/health", timeout=5).status_code == 200


def test_failing_restart_notifies_admins_and_fails(sandbox: ReferenceEnvironment) -> None:
    with _api(sandbox) as api:
        api.delete("/notifications").raise_for_status()
        api.put("/sandbox/services/baseline/order/restart-fails", json={"fails": True}).raise_for_status()
        api.post("/sandbox/instances/baseline/order/1/kill").raise_for_status()

        with pytest.raises(AirflowException, match=r"baseline/order#1"):
            _patrol().execute(context={})

        received = api.get("/notifications", params={"channel": "admins"}).json()
    assert len(received) == 1
    text = str(received[0])
    assert "baseline/order#1" in text and "still down" in text


def test_healthy_environment_needs_nothing(sandbox: ReferenceEnvironment) -> None:
    assert _patrol().execute(context={}) == {"healed": [], "unhealed": []}
