"""The minute re-check DAG end to end (``dag.test()``): a failing environment is re-checked and each
re-check is in the history as ``re-check``; the same breakage says nothing, the recovery is told once,
and a passing environment is not re-checked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg2
import pytest
from baseline_guard.hooks.environment import EnvironmentHook
from reference_env.launcher import ReferenceEnvironment
from sandbox_connections import deploy_everywhere, sent

pytestmark = pytest.mark.airflow


def runs(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT dag_id, trigger, passed FROM check_run ORDER BY id")
        rows = cur.fetchall()
        cur.execute("SELECT count(*) FROM incident WHERE module = '' AND ended_at IS NULL")
        rows.append(("open incidents", cur.fetchone()[0]))
    conn.close()
    return rows


def test_a_failing_baseline_is_re_checked_until_it_passes_and_then_left_alone(
    run_dag: Callable[..., dict[str, Any]], check_services: tuple[ReferenceEnvironment, str]
) -> None:
    env, history = check_services
    healthy = EnvironmentHook().get_service("baseline", "hotel-detail").instances[0].version
    deploy_everywhere("baseline", "hotel-detail", "1.9.2-wrong")
    assert (
        run_dag("business_check", conf={"environment": "baseline", "tags": [], "routing_key": None})["state"]
        == "failed"
    )
    assert len(sent(env)) == 1

    still = run_dag("recheck_failing_environments")
    assert still["xcom"]["list_failing_environments"] == [{"environment": "baseline"}]
    assert still["tasks"]["recheck_environment[0]"] == "failed"
    assert len(sent(env)) == 1  # the same breakage: silence

    deploy_everywhere("baseline", "hotel-detail", healthy)
    recovered = run_dag("recheck_failing_environments")
    assert (
        recovered["state"] == "success"
        and recovered["xcom"]["recheck_environment[0]"]["alert"] == "recovered"
    )
    told = sent(env)
    assert len(told) == 2 and "pass again on baseline" in str(told[1])

    idle = run_dag("recheck_failing_environments")
    assert idle["state"] == "success" and idle["xcom"]["list_failing_environments"] == []
    assert runs(history) == [
        ("business_check", "manual", False),
        ("recheck_failing_environments", "re-check", False),
        ("recheck_failing_environments", "re-check", True),
        ("open incidents", 0),
    ]
