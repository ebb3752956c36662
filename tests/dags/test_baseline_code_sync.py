"""baseline_code_sync, whole runs under dag.test() against a private reference environment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from private_env import PrivateEnvironment, private_environment
from reference_env.launcher import ReferenceEnvironment

pytestmark = pytest.mark.airflow


@pytest.fixture
def environment(
    make_env_api: Callable[[], ReferenceEnvironment], monkeypatch: pytest.MonkeyPatch
) -> PrivateEnvironment:
    return private_environment(make_env_api, monkeypatch)


def _baseline(environment: PrivateEnvironment, service: str) -> list[tuple[str, bool]]:
    svc = environment.api.get(f"/environments/baseline/services/{service}").json()
    return [(i["version"], i["in_rotation"]) for i in svc["instances"]]


def test_a_sync_rolls_out_tells_once_and_a_failed_release_is_rolled_back_with_one_message(
    run_dag: Callable[..., dict[str, Any]], environment: PrivateEnvironment
) -> None:
    run = run_dag("baseline_code_sync")

    assert run["state"] == "success", run["tasks"]
    assert sorted(p["service"] for p in run["xcom"]["plan_rollouts"]) == ["hotel-search", "quote"]
    assert sorted(c["service"] for c in run["xcom"]["reconcile"]["changed"]) == ["hotel-search", "quote"]
    assert run["tasks"]["publish_change"] == "success"
    assert _baseline(environment, "quote") == [("1.2.0", True), ("1.2.0", True)]
    sent = environment.messages()
    assert len(sent) == 1 and "2 changed, 0 failed" in sent[0] and "quote now runs 1.2.0" in sent[0]

    environment.api.delete("/notifications").raise_for_status()
    release = {"service": "quote", "version": "1.9.1-unhealthy"}
    environment.api.post("/releases", json=release).raise_for_status()
    failed = run_dag("baseline_code_sync", conf={"health_timeout_s": 5})

    assert failed["state"] == "failed"
    assert failed["tasks"]["rollout[0]"] == "failed" and failed["tasks"]["notify_summary"] == "failed"
    assert _baseline(environment, "quote") == [("1.2.0", True), ("1.2.0", True)]  # rolled back, serving
    sent = environment.messages()
    assert len(sent) == 1, sent  # the rollout's failure and the summary are one message
    assert "0 changed, 1 failed" in sent[0] and "rolled back; it runs 1.2.0" in sent[0]
    assert "['" not in sent[0]  # written for people, not a Python list
