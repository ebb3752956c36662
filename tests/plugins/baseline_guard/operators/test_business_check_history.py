"""BusinessCheckOperator records every result in the real check-history database, and a history that
cannot be written never fails the check."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Iterator

import psycopg2
import pytest
from baseline_guard.errors import BusinessChecksFailed, InvalidInput
from baseline_guard.health import migrate
from baseline_guard.hooks.environment import EnvironmentHook
from baseline_guard.operators.business_check import BusinessCheckOperator
from local_stack.connections import env_api_connections
from local_stack.ports import free_port
from local_stack.postgres import LocalPostgres
from reference_env.launcher import ReferenceEnvironment


@pytest.fixture
def history(postgres: LocalPostgres, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"bg_op_history_{secrets.token_hex(4)}"
    postgres.create_database(name)
    migrate.upgrade(postgres.uri(name))
    monkeypatch.setenv("AIRFLOW_CONN_CHECK_HISTORY", json.dumps(postgres.airflow_connection(name)))
    yield postgres.uri(name)
    postgres.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')


@pytest.fixture
def sandbox(
    make_env_api: Callable[[], ReferenceEnvironment], monkeypatch: pytest.MonkeyPatch
) -> ReferenceEnvironment:
    env = make_env_api()
    for key, value in env_api_connections(
        env.api_port, env.token, gateway_port=env.gateway_port, conn_id="history_env_api"
    ).items():
        monkeypatch.setenv(key, value)
    return env


def _operator(**kwargs: object) -> BusinessCheckOperator:
    return BusinessCheckOperator(
        task_id="checks",
        env_api_conn_id="history_env_api",
        aws_conn_id=None,
        history_conn_id="check_history",
        notify_on_failure=False,
        **kwargs,
    )  # type: ignore[arg-type]


def _query(dsn: str, sql: str) -> list[tuple]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql)
        rows = cur.fetchall()
    conn.close()
    return rows


def test_a_failed_check_is_recorded_with_the_broken_module_and_instance(
    sandbox: ReferenceEnvironment, history: str
) -> None:
    hook = EnvironmentHook("history_env_api")
    for inst in hook.get_service("baseline", "quote").instances:
        op = hook.deploy("baseline", "quote", inst.index, "1.9.2-wrong")
        while not op.state.finished:
            time.sleep(0.1)
            op = hook.get_operation(op.id)
    with pytest.raises(BusinessChecksFailed):
        _operator().execute(context={})
    [(environment, passed, trigger, scenarios, failed, failed_modules)] = _query(
        history, "SELECT environment, passed, trigger, scenarios, failed, failed_modules FROM check_run"
    )
    assert (environment, passed, trigger, failed_modules) == ("baseline", False, "manual", ["pricing"])
    assert failed > 0
    assert _query(history, "SELECT count(*) FROM check_result") == [(scenarios,)]
    failures = _query(
        history, "SELECT DISTINCT module, interface, version FROM check_result WHERE NOT passed"
    )
    assert failures == [("pricing", "POST /quotes", "1.9.2-wrong")]
    assert _query(history, "SELECT module, passed FROM module_state WHERE module = 'pricing'") == [
        ("pricing", False)
    ]
    assert _query(history, "SELECT module, ended_at FROM incident ORDER BY module") == [
        ("", None),
        ("pricing", None),
    ]


def test_a_history_that_cannot_be_written_does_not_fail_the_check(
    sandbox: ReferenceEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = {
        "conn_type": "postgres",
        "host": "127.0.0.1",
        "port": free_port(),
        "login": "x",
        "password": "y",
        "schema": "baseline_guard",
    }
    monkeypatch.setenv("AIRFLOW_CONN_CHECK_HISTORY", json.dumps(closed))
    result = _operator(tags=["smoke"]).execute(context={})
    assert result["passed"] is True and result["scenarios"] > 0


def test_a_change_the_check_follows_is_recorded_with_it(sandbox: ReferenceEnvironment, history: str) -> None:
    restored = {
        "source": "test_data_restore",
        "changes": [{"backup_id": "20261130T100000Z-pre_test-0a1b2c3d"}],
    }
    result = _operator(tags=["smoke"], environment_change=restored).execute(context={})

    assert result["passed"] is True
    [(trigger, started_at)] = _query(history, "SELECT trigger, started_at FROM check_run")
    [(environment, source, changes, changed_at)] = _query(
        history, "SELECT environment, source, changes, changed_at FROM environment_change"
    )
    assert trigger == "environment_change"
    assert (environment, source, changes) == ("baseline", "test_data_restore", restored["changes"])
    assert changed_at <= started_at  # the change was in place when the check began


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            {"source": "test_data_restore", "changes": "backup b1"},
            "'changes' is 'backup b1': expected a list",
        ),
        ({"environment": "proj-a", "source": "x"}, "the environment is the one checked"),
        ({"source": "x", "when": "now"}, "unknown key 'when'"),
    ],
)
def test_a_change_that_breaks_the_contract_is_refused_before_any_check(
    sandbox: ReferenceEnvironment, history: str, change: dict, says: str
) -> None:
    with pytest.raises(InvalidInput, match=f"^environment_change of task checks: .*{re.escape(says)}"):
        _operator(tags=["smoke"], environment_change=change).execute(context={})
    assert _query(history, "SELECT count(*) FROM check_run") == [(0,)]
