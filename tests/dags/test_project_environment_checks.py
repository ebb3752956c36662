"""The project_environment_checks DAG end to end (``dag.test()``): one mapped check per project
environment, each failure told once to that environment's owners, nothing to the admins."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from local_stack.s3 import LocalS3
from reference_env.launcher import ReferenceEnvironment
from sandbox_connections import use_backup_store, use_reference_environment

pytestmark = pytest.mark.airflow


@pytest.fixture
def sandbox(
    make_env_api: Callable[[], ReferenceEnvironment], s3: LocalS3, monkeypatch: pytest.MonkeyPatch
) -> ReferenceEnvironment:
    env = make_env_api()
    use_reference_environment(monkeypatch, env)
    use_backup_store(monkeypatch, s3, f"bg-dag-projects-{secrets.token_hex(4)}")
    monkeypatch.setenv("AIRFLOW_CONN_BASELINE_GUARD_DB", "")  # no history database here
    return env


def api(env: ReferenceEnvironment) -> httpx.Client:
    return httpx.Client(base_url=f"{env.api_url}/v1", headers={"Authorization": f"Bearer {env.token}"},
                        timeout=60)  # fmt: skip


def sent(env: ReferenceEnvironment, channel: str) -> list[dict[str, Any]]:
    answer = api(env).get("/notifications", params={"channel": channel})
    answer.raise_for_status()
    return answer.json()


def test_each_project_environment_is_checked_and_a_broken_one_tells_its_owners_once(
    run_dag: Callable[..., dict[str, Any]], sandbox: ReferenceEnvironment
) -> None:
    owners = f"json://127.0.0.1:{sandbox.api_port}/v1/notifications/owners-proj-broken"
    api(sandbox).post(
        "/environments", json={"name": "proj-fine", "services": {"quote": "1.1.0"}}
    ).raise_for_status()
    api(sandbox).post(
        "/environments",
        json={
            "name": "proj-broken",
            "services": {"hotel-detail": "1.9.2-wrong"},
            "owners_notify_url": owners,
        },
    ).raise_for_status()

    for hour in range(2):  # two hourly runs: the same breakage is told once
        run = run_dag("project_environment_checks")
        assert run["state"] == "failed"
        listed = run["xcom"]["list_project_environments"]
        names = [target["environment"] for target in listed]
        assert {"proj-fine", "proj-broken"} <= set(names)
        states = {name: run["tasks"][f"check_environment[{i}]"] for i, name in enumerate(names)}
        assert states["proj-fine"] == "success" and states["proj-broken"] == "failed", states
        told = sent(sandbox, "owners-proj-broken")
        assert len(told) == 1, (hour, told)
    assert "proj-broken" in str(told[0]) and "catalog · GET /hotels/{id}" in str(told[0])
    assert sent(sandbox, "admins") == []
