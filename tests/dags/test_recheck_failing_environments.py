"""The minute re-check DAG end to end (``dag.test()``): a failing environment is re-checked and each
re-check is in the history as ``re-check``; the same breakage says nothing, the recovery is told once,
and a passing environment is not re-checked."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg2
import pytest
from baseline_guard.health import migrate
from baseline_guard.hooks.environment import EnvironmentHook
from local_stack.postgres import LocalPostgres
from local_stack.s3 import LocalS3
from reference_env.launcher import ReferenceEnvironment
from sandbox_connections import deploy_everywhere, use_backup_store, use_reference_environment

pytestmark = pytest.mark.airflow


@pytest.fixture
def services(
    make_env_api: Callable[[], ReferenceEnvironment],
    s3: LocalS3,
    postgres: LocalPostgres,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[ReferenceEnvironment, str]]:
    env = make_env_api()
    use_reference_environment(monkeypatch, env)
    use_backup_store(monkeypatch, s3, f"bg-dag-recheck-{secrets.token_hex(4)}")
    history = f"bg_dag_recheck_{secrets.token_hex(4)}"
    postgres.create_database(history)
    migrate.upgrade(postgres.uri(history))
    monkeypatch.setenv("AIRFLOW_CONN_BASELINE_GUARD_DB", json.dumps(postgres.airflow_connection(history)))
    yield env, postgres.uri(history)
    postgres.psql(f'DROP DATABASE IF EXISTS "{history}" WITH (FORCE);')


def sent(env: ReferenceEnvironment) -> list[dict[str, Any]]:
    answer = httpx.get(f"{env.api_url}/v1/notifications", params={"channel": "admins"},
                       headers={"Authorization": f"Bearer {env.token}"})  # fmt: skip
    answer.raise_for_status()
    return answer.json()


def runs(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT dag_id, trigger, passed FROM check_run ORDER BY id")
        rows = cur.fetchall()
        cur.execute("SELECT count(*) FROM incident WHERE module = '' AND ended_at IS NULL")
        rows.append(("open incidents", cur.fetchone()[0]))
    conn.close()
    return rows


def test_a_failing_baseline_is_re_checked_until_it_passes_and_then_left_alone(
    run_dag: Callable[..., dict[str, Any]], services: tuple[ReferenceEnvironment, str]
) -> None:
    env, history = services
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
