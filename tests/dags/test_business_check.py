"""The business_check DAG end to end (``dag.test()``) against a real sandbox, S3 endpoint and history DB.

A failing check sends exactly one message (counted in the reference server's notification sink), the
same failure in the next run none, the recovery one.
"""

from __future__ import annotations

from collections.abc import Callable
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
