"""The business_check DAG end to end (``dag.test()``) against a real sandbox, S3 endpoint and history DB.

A failing check sends exactly one message (counted in the reference server's notification sink), the
same failure in the next run none, the recovery one. An environment manager's ``environment_changed``
event gets that environment checked, and the history links the incident to the change.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg2
import pytest
from baseline_guard.hooks.environment import EnvironmentHook
from reference_env.launcher import ReferenceEnvironment
from sandbox_connections import deploy_everywhere, sent

pytestmark = pytest.mark.airflow


def history_rows(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT environment, dag_id, task_id, passed, failed_modules FROM check_run ORDER BY id")
        rows = cur.fetchall()
    conn.close()
    return rows


def test_a_healthy_baseline_passes_with_a_report_a_history_row_and_no_message(
    run_dag: Callable[..., dict[str, Any]], check_services: tuple[ReferenceEnvironment, str]
) -> None:
    env, history = check_services
    run = run_dag("business_check", conf={"environment": "baseline", "tags": ["smoke"], "routing_key": None})
    assert run["state"] == "success", run
    assert run["xcom"]["choose_target"] == {"environment": "baseline", "tags": ["smoke"], "routing_key": None}
    assert run["tasks"]["check_also_changed"] == "skipped"  # no event: nothing else to check
    checks = run["xcom"]["run_business_checks"]
    assert checks["passed"] is True and checks["alert"] is None and checks["scenarios"] > 0
    assert "<html" in httpx.get(checks["report_url"]).text.lower()
    assert history_rows(history) == [("baseline", "business_check", "run_business_checks", True, [])]
    assert sent(env) == []


def test_a_failure_is_told_once_the_same_failure_not_again_and_the_recovery_once(
    run_dag: Callable[..., dict[str, Any]], check_services: tuple[ReferenceEnvironment, str]
) -> None:
    env, history = check_services
    conf = {"environment": "baseline", "tags": ["catalog"], "routing_key": None}
    healthy = EnvironmentHook().get_service("baseline", "hotel-detail").instances[0].version
    deploy_everywhere("baseline", "hotel-detail", "1.9.2-wrong")

    first = run_dag("business_check", conf=conf)
    assert first["state"] == "failed" and first["tasks"]["run_business_checks"] == "failed"
    told = sent(env)
    assert len(told) == 1, told
    assert "Business checks failed on baseline" in str(told[0]) and "catalog · GET /hotels/{id}" in str(
        told[0]
    )

    second = run_dag("business_check", conf=conf)
    assert second["state"] == "failed"
    assert len(sent(env)) == 1  # the same breakage: silence

    deploy_everywhere("baseline", "hotel-detail", healthy)
    third = run_dag("business_check", conf=conf)
    assert third["state"] == "success" and third["xcom"]["run_business_checks"]["alert"] == "recovered"
    told = sent(env)
    assert len(told) == 2 and "pass again on baseline" in str(told[1])
    assert [row[3] for row in history_rows(history)] == [False, False, True]


@pytest.fixture
def run_on_change_events(
    run_dag: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    """Run business_check as the scheduler runs it after ``environment_changed`` events: an asset-triggered
    run that consumed them. Each event is registered as ``POST /api/v2/assets/events`` registers it (Airflow's
    asset manager, from the API, ``from_rest_api`` added), then the run is created as the scheduler creates
    it (run type ``asset_triggered``, the events consumed); ``dag.test()`` runs its tasks."""
    import airflow.models.dagrun as dagrun_module
    from airflow.assets.manager import asset_manager
    from airflow.models.asset import AssetModel
    from airflow.utils.types import DagRunType
    from sqlalchemy import select

    make_run = dagrun_module.get_or_create_dagrun

    def run(extras: list[dict[str, Any]]) -> dict[str, Any]:
        def asset_triggered(*, session: Any, **kwargs: Any) -> Any:
            asset = session.scalar(select(AssetModel).where(AssetModel.name == "environment_changed"))
            events = [
                asset_manager.register_asset_change(
                    asset=asset,
                    timestamp=datetime.now(UTC),
                    session=session,
                    extra={**extra, "from_rest_api": True},
                    source_is_api=True,
                )
                for extra in extras
            ]
            dag_run = make_run(session=session, **kwargs)
            dag_run.run_type = DagRunType.ASSET_TRIGGERED
            dag_run.consumed_asset_events.extend(events)
            session.commit()
            return dag_run

        with monkeypatch.context() as patched:
            patched.setattr(dagrun_module, "get_or_create_dagrun", asset_triggered)
            return run_dag("business_check")

    return run


def test_an_environment_managers_deploy_is_checked_on_that_environment_and_the_incident_knows_its_cause(
    run_on_change_events: Callable[[list[dict[str, Any]]], dict[str, Any]],
    check_services: tuple[ReferenceEnvironment, str],
) -> None:
    from baseline_guard.health.report import build_report
    from baseline_guard.health.store import HistoryStore

    sandbox, history = check_services
    owners = f"json://127.0.0.1:{sandbox.api_port}/v1/notifications/owners-proj-deploy"
    with httpx.Client(
        base_url=f"{sandbox.api_url}/v1", headers={"Authorization": f"Bearer {sandbox.token}"}, timeout=60
    ) as api:
        api.post(
            "/environments",
            json={
                "name": "proj-deploy",
                "services": {"hotel-detail": "1.9.2-wrong"},
                "owners_notify_url": owners,
            },
        ).raise_for_status()
    routing_key = EnvironmentHook().get_environment("proj-deploy").routing_key
    deployed = [{"service": "hotel-detail", "version": "1.9.2-wrong"}]

    run = run_on_change_events([{"environment": "proj-deploy", "source": "env-manager", "changes": deployed}])

    assert run["state"] == "failed" and run["tasks"]["run_business_checks"] == "failed", run["tasks"]
    assert run["xcom"]["choose_target"] == {"environment": "proj-deploy", "tags": [], "routing_key": None}
    assert run["tasks"]["list_also_changed"] == "success" and run["tasks"]["check_also_changed"] == "skipped"
    with psycopg2.connect(history) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT environment, routing_key, trigger, passed, failed_modules, finished_at FROM check_run"
        )
        [(environment, key, trigger, passed, failed_modules, finished_at)] = cur.fetchall()
        cur.execute("SELECT id, environment, source, changes, changed_at FROM environment_change")
        [(change_id, changed_env, source, changes, changed_at)] = cur.fetchall()
        cur.execute("SELECT module, cause FROM incident WHERE environment = 'proj-deploy' ORDER BY module")
        incidents = cur.fetchall()
    conn.close()
    assert (environment, key, trigger, passed) == ("proj-deploy", routing_key, "environment_change", False)
    assert "catalog" in failed_modules  # (a loaded machine may add a slow answer elsewhere)
    assert (changed_env, source, changes) == ("proj-deploy", "env-manager", deployed)
    assert {("", change_id), ("catalog", change_id)} <= set(incidents)  # the environment and its module
    assert {cause for _, cause in incidents} == {change_id}

    store = HistoryStore.connect(history)
    try:
        [env] = build_report(store, finished_at + timedelta(seconds=1)).environments
    finally:
        store.conn.close()
    assert {(i.module, i.cause and i.cause.source) for i in env.open_incidents} >= {
        (None, "env-manager"),
        ("catalog", "env-manager"),
    }
    [detect] = [i.time_to_detect_s for i in env.open_incidents if i.module is None]
    assert detect == (finished_at - changed_at).total_seconds() and 0 < detect < 120
    assert env.availability["24h"].time_to_detect_s == detect
    told = sent(sandbox, "owners-proj-deploy")
    assert len(told) == 1 and "proj-deploy" in str(told[0]) and "catalog" in str(told[0]), told
    assert sent(sandbox, "admins") == []


def test_events_of_several_environments_taken_up_by_one_run_get_each_environment_checked(
    run_on_change_events: Callable[[list[dict[str, Any]]], dict[str, Any]],
    check_services: tuple[ReferenceEnvironment, str],
) -> None:
    sandbox, history = check_services
    with httpx.Client(
        base_url=f"{sandbox.api_url}/v1", headers={"Authorization": f"Bearer {sandbox.token}"}, timeout=60
    ) as api:
        for name in ("proj-one", "proj-two"):  # both broken: each check fails, whatever the machine's load
            api.post("/environments", json={"name": name, "services": {"hotel-detail": "1.9.2-wrong"}})

    run = run_on_change_events(
        [
            {"environment": "proj-one", "source": "env-manager"},
            {"environment": "proj-two", "source": "env-manager"},
            {"environment": "proj-one", "source": "env-manager"},
        ]
    )

    assert run["xcom"]["choose_target"]["environment"] == "proj-one"  # the latest event's
    assert run["xcom"]["list_also_changed"] == [{"environment": "proj-two"}]
    assert run["tasks"]["run_business_checks"] == run["tasks"]["check_also_changed[0]"] == "failed"
    with psycopg2.connect(history) as conn, conn.cursor() as cur:
        cur.execute("SELECT environment, routing_key, task_id, trigger FROM check_run ORDER BY environment")
        checked = cur.fetchall()
        cur.execute("SELECT environment, count(*) FROM environment_change GROUP BY environment ORDER BY 1")
        changes = cur.fetchall()
    conn.close()
    assert checked == [
        ("proj-one", "proj-one", "run_business_checks", "environment_change"),
        ("proj-two", "proj-two", "check_also_changed", "environment_change"),
    ]
    assert changes == [("proj-one", 2), ("proj-two", 1)]  # every event recorded once


def test_an_event_that_breaks_the_contract_fails_the_run_before_any_check_and_records_nothing(
    run_on_change_events: Callable[[list[dict[str, Any]]], dict[str, Any]],
    check_services: tuple[ReferenceEnvironment, str],
) -> None:
    sandbox, history = check_services

    run = run_on_change_events([{"environment": "proj-a", "routing_key": "proj-a-canary"}])

    assert run["state"] == "failed"
    assert run["tasks"] == {
        "choose_target": "failed",
        "run_business_checks": "upstream_failed",
        "list_also_changed": "upstream_failed",
        "check_also_changed": "upstream_failed",
    }
    assert history_rows(history) == []
    told = sent(sandbox)  # the admins, by the task's failure callback, naming the event's fault
    assert len(told) == 1 and "unknown key 'routing_key'" in json.dumps(told[0]), told
