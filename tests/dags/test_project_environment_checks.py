"""The project_environment_checks DAG end to end (``dag.test()``): one mapped check per project
environment, each failure told once to that environment's owners, nothing to the admins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from reference_env.launcher import ReferenceEnvironment
from sandbox_connections import sent

pytestmark = pytest.mark.airflow


def api(env: ReferenceEnvironment) -> httpx.Client:
    return httpx.Client(
        base_url=f"{env.api_url}/v1", headers={"Authorization": f"Bearer {env.token}"}, timeout=60
    )


def test_each_project_environment_is_checked_and_a_broken_one_tells_its_owners_once(
    run_dag: Callable[..., dict[str, Any]], check_services: tuple[ReferenceEnvironment, str]
) -> None:
    sandbox, _ = check_services
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
