"""EnvironmentPatrolOperator against a real sandbox: parallel restarts, one message per incident, vanished envs."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from baseline_guard.health.guard_state import PatrolIncidentStore, connect
from baseline_guard.hooks.environment import EnvironmentHook
from baseline_guard.notifiers.results import ResultNotifier
from baseline_guard.operators.patrol import EnvironmentPatrolOperator
from local_stack.connections import env_api_connections
from local_stack.inline_deferral import DeferrableRun
from local_stack.ports import free_port
from local_stack.postgres import LocalPostgres
from reference_env.launcher import ReferenceEnvironment
from sandbox_connections import history_database


class IncidentTable:
    """The open incidents as the patrol left them: rows of the guard's database (a fresh one per test)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    @property
    def incidents(self) -> dict[str, dict[str, Any]]:
        conn = connect(self.dsn)
        try:
            return PatrolIncidentStore(conn).load()
        finally:
            conn.close()

    def told_an_hour_earlier(self, instance: str) -> None:
        conn = connect(self.dsn)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(
                    "UPDATE patrol_incident SET last_told = last_told - interval '1 hour' WHERE instance = %s",
                    (instance,),
                )
                assert cur.rowcount == 1
        finally:
            conn.close()


class Patrol:
    """One patrol run as Airflow makes it: execute, the trigger, the resume, then the success callback."""

    def __init__(self, store: IncidentTable, **kwargs: Any) -> None:
        kwargs = {"restart_timeout_s": 15, "poll_interval_s": 0.1, **kwargs}
        self.operator = EnvironmentPatrolOperator(
            task_id="patrol", env_api_conn_id="patrol_env_api", guard_db_conn_id="patrol_guard_db", **kwargs
        )
        self.run = DeferrableRun()

    def execute(self) -> dict[str, Any]:
        result = self.run(self.operator, {"data_interval_end": datetime.now(UTC)})
        ti = SimpleNamespace(task_id="patrol", map_index=-1, xcom_pull=lambda **_: result)
        ResultNotifier().notify({"ti": ti})
        return result


@pytest.fixture
def sandbox(
    make_env_api: Callable[[], ReferenceEnvironment], monkeypatch: pytest.MonkeyPatch
) -> ReferenceEnvironment:
    env = make_env_api()
    for key, value in env_api_connections(env.api_port, env.token, conn_id="patrol_env_api").items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def incidents(postgres: LocalPostgres, monkeypatch: pytest.MonkeyPatch) -> Iterator[IncidentTable]:
    """A fresh migrated guard database behind the connection ``patrol_guard_db``."""
    with history_database(postgres, monkeypatch) as dsn:
        monkeypatch.setenv("AIRFLOW_CONN_PATROL_GUARD_DB", os.environ["AIRFLOW_CONN_BASELINE_GUARD_DB"])
        yield IncidentTable(dsn)


@pytest.fixture
def api(sandbox: ReferenceEnvironment) -> httpx.Client:
    client = httpx.Client(
        base_url=sandbox.api_url + "/v1", headers={"Authorization": f"Bearer {sandbox.token}"}, timeout=30
    )
    client.delete("/notifications").raise_for_status()
    return client


def _admin_messages(api: httpx.Client) -> list[str]:
    return [str(n["body"]) for n in api.get("/notifications", params={"channel": "admins"}).json()]


def test_down_instances_are_restarted_in_parallel_and_healed_silently(
    sandbox: ReferenceEnvironment, api: httpx.Client, incidents: IncidentTable
) -> None:
    killed = [("quote", 2), ("order", 1), ("order", 2), ("hotel-search", 1), ("hotel-detail", 2)]
    for service, index in killed:
        api.post(f"/sandbox/instances/baseline/{service}/{index}/kill").raise_for_status()

    patrol = Patrol(incidents, max_parallel_restarts=3)
    result = patrol.execute()

    assert len(patrol.run.deferrals) == 1  # one wait, in the triggerer, for all restarted instances
    awaited = patrol.run.deferrals[0].trigger.instances
    assert sorted((i["service"], i["index"]) for i in awaited) == sorted(killed)

    assert sorted(result["healed"]) == sorted(f"baseline/{s}#{i}" for s, i in killed)
    assert result["down"] == [] and _admin_messages(api) == []
    assert incidents.incidents == {}  # healed by its restart: no incident
    hook = EnvironmentHook("patrol_env_api")
    for service, index in killed:
        inst = hook.get_service("baseline", service).instances[index - 1]
        assert (inst.state, inst.health) == ("running", "healthy")
    ops = api.get("/sandbox/operations", params={"kind": "restart"}).json()
    assert len(ops) == len(killed)
    spans = [(datetime.fromisoformat(o["started_at"]), datetime.fromisoformat(o["finished_at"])) for o in ops]
    most_at_once = max(sum(s <= start < f for s, f in spans) for start, _ in spans)
    assert 2 <= most_at_once <= 3  # in parallel, never more than max_parallel_restarts


def test_one_message_per_incident_down_still_down_hourly_then_recovered(
    sandbox: ReferenceEnvironment, api: httpx.Client, incidents: IncidentTable
) -> None:
    api.put("/sandbox/services/baseline/order/restart-fails", json={"fails": True}).raise_for_status()
    api.post("/sandbox/instances/baseline/order/1/kill").raise_for_status()
    store = incidents

    first = Patrol(store).execute()
    assert first["down"] == ["baseline/order#1"] and first["told"]["down"] == ["baseline/order#1"]
    second = Patrol(store).execute()  # the next 5-minute run: still down, nothing new to say
    assert second["down"] == ["baseline/order#1"] and second["told"]["down"] == []
    messages = _admin_messages(api)
    assert len(messages) == 1 and "baseline/order#1" in messages[0] and "down" in messages[0]

    assert list(store.incidents) == ["baseline/order#1"]
    store.told_an_hour_earlier("baseline/order#1")  # an hour later
    assert Patrol(store).execute()["told"]["still_down"] == ["baseline/order#1"]
    assert Patrol(store).execute()["told"]["still_down"] == []
    messages = _admin_messages(api)
    assert len(messages) == 2 and "still down" in messages[1]

    api.put("/sandbox/services/baseline/order/restart-fails", json={"fails": False}).raise_for_status()
    healed = Patrol(store).execute()
    assert healed["told"]["recovered"] == ["baseline/order#1"] and store.incidents == {}
    messages = _admin_messages(api)
    assert len(messages) == 3 and "recovered" in messages[2] and "baseline/order#1" in messages[2]
    assert Patrol(store).execute()["told"] == {"down": [], "still_down": [], "recovered": []}
    assert len(_admin_messages(api)) == 3


def test_deleted_environment_is_skipped_not_reported_down(
    sandbox: ReferenceEnvironment, api: httpx.Client, incidents: IncidentTable
) -> None:
    api.post("/environments", json={"name": "proj-a", "services": {"quote": "1.2.0"}}).raise_for_status()
    api.put("/sandbox/services/proj-a/quote/restart-fails", json={"fails": True}).raise_for_status()
    api.post("/sandbox/instances/proj-a/quote/1/kill").raise_for_status()
    store = incidents
    assert Patrol(store).execute()["told"]["down"] == ["proj-a/quote#1"]

    api.delete("/environments/proj-a").raise_for_status()
    after = Patrol(store).execute()

    assert after["vanished"] == ["proj-a"] and after["down"] == [] and store.incidents == {}
    assert after["told"] == {"down": [], "still_down": [], "recovered": []}
    assert len(_admin_messages(api)) == 1  # only the first "down"


def test_time_budget_ends_the_run_and_reports_what_was_not_healed(
    sandbox: ReferenceEnvironment, api: httpx.Client, incidents: IncidentTable
) -> None:
    api.put("/sandbox/services/baseline/quote/restart-fails", json={"fails": True}).raise_for_status()
    for index in (1, 2):
        api.post(f"/sandbox/instances/baseline/quote/{index}/kill").raise_for_status()
    api.post("/sandbox/instances/baseline/order/1/kill").raise_for_status()
    store = incidents

    result = Patrol(store, max_parallel_restarts=1, time_budget_s=0.001).execute()

    assert result["healed"] == []
    assert result["down"] == ["baseline/order#1", "baseline/quote#1", "baseline/quote#2"]
    assert all("time budget" in r["reason"] for r in store.incidents.values())


def test_healthy_environment_needs_nothing(
    sandbox: ReferenceEnvironment, api: httpx.Client, incidents: IncidentTable
) -> None:
    result = Patrol(incidents).execute()
    assert result["healed"] == [] and result["down"] == [] and _admin_messages(api) == []


def test_lightweight_instances_are_patrolled_like_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, incidents: IncidentTable
) -> None:
    env = ReferenceEnvironment(
        tmp_path / "lw",
        free_port(),
        free_port(),
        secrets.token_urlsafe(16),
        lightweight_instances=True,
        startup_timeout=120,
    ).start()
    try:
        for key, value in env_api_connections(env.api_port, env.token, conn_id="patrol_env_api").items():
            monkeypatch.setenv(key, value)
        hook = EnvironmentHook("patrol_env_api")
        first = hook.get_service("baseline", "quote").instances[0]
        assert (
            first.health == "healthy" and httpx.get(f"{first.url}/health", timeout=5).json()["status"] == "ok"
        )
        with httpx.Client(
            base_url=f"{env.api_url}/v1", headers={"Authorization": f"Bearer {env.token}"}
        ) as api:
            api.post("/sandbox/instances/baseline/quote/1/kill").raise_for_status()
        killed = hook.get_service("baseline", "quote").instances[0]
        assert (killed.state, killed.health) == ("failed", "unhealthy")

        assert Patrol(incidents).execute()["healed"] == ["baseline/quote#1"]
        healed = hook.get_service("baseline", "quote").instances[0]
        assert (healed.state, healed.health) == ("running", "healthy") and healed.url != first.url
    finally:
        env.stop()
