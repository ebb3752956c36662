"""env_patrol, whole runs under dag.test() against a private reference environment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from private_env import PrivateEnvironment, private_environment, stored_state
from reference_env.launcher import ReferenceEnvironment

pytestmark = pytest.mark.airflow


@pytest.fixture
def environment(
    make_env_api: Callable[[], ReferenceEnvironment], monkeypatch: pytest.MonkeyPatch, guard_db: str
) -> PrivateEnvironment:
    return private_environment(make_env_api, monkeypatch)


def test_a_patrol_heals_silently_tells_an_incident_once_and_the_recovery_once(
    run_dag: Callable[..., dict[str, Any]], environment: PrivateEnvironment, guard_db: str
) -> None:
    api = environment.api
    api.post("/sandbox/instances/baseline/quote/2/kill").raise_for_status()
    api.put("/sandbox/services/baseline/order/restart-fails", json={"fails": True}).raise_for_status()
    api.post("/sandbox/instances/baseline/order/1/kill").raise_for_status()

    first = run_dag("env_patrol")

    assert first["state"] == "success", first["tasks"]
    result = first["xcom"]["restart_down_instances"]
    assert result["healed"] == ["baseline/quote#2"] and result["down"] == ["baseline/order#1"]
    sent = environment.messages()
    assert len(sent) == 1 and "1 instance(s) down" in sent[0] and "baseline/order#1" in sent[0]
    _, incidents = stored_state(guard_db)
    assert list(incidents) == ["baseline/order#1"] and "restart" in incidents["baseline/order#1"]["reason"]

    assert run_dag("env_patrol")["state"] == "success"  # still down: nothing new to tell
    assert len(environment.messages()) == 1

    api.put("/sandbox/services/baseline/order/restart-fails", json={"fails": False}).raise_for_status()
    healed = run_dag("env_patrol")
    assert healed["xcom"]["restart_down_instances"]["told"]["recovered"] == ["baseline/order#1"]
    sent = environment.messages()
    assert len(sent) == 2 and "recovered" in sent[1]
    assert stored_state(guard_db)[1] == {}
