"""The schema sync DAG, whole: every baseline database brought to production's schema, the admins told once."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from backup_store_fixtures import admin_messages
from local_stack.postgres import LocalPostgres

PRODUCTION_SQL = """
CREATE TABLE hotel (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE room (id int PRIMARY KEY, hotel_id int NOT NULL REFERENCES hotel (id), price numeric(8, 2));
"""
BASELINE_SQL = """
CREATE TABLE hotel (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO hotel VALUES (1, 'Seaside');
"""
TITLE = "Baseline schema sync"


@pytest.fixture
def database_pairs(postgres: LocalPostgres, env_api: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Production's and the baseline's databases (as the environment API lists them), made afresh on the
    real server: production one table ahead. Returns the baseline's database names."""
    from baseline_guard.hooks.environment import EnvironmentHook

    hook = EnvironmentHook()
    targets = []
    for environment, sql in (("production", PRODUCTION_SQL), ("baseline", BASELINE_SQL)):
        for db in hook.list_databases(environment):
            postgres.psql(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE);')
            postgres.create_database(db.name)
            postgres.psql(sql, db.name)
            conn = json.dumps(postgres.airflow_connection(db.name))
            monkeypatch.setenv(f"AIRFLOW_CONN_{db.conn_id.upper()}", conn)
            if environment == "baseline":
                targets.append(db.name)
    return targets


def test_safe_changes_are_applied_to_every_baseline_database_and_told_once(
    run_dag: Callable[..., dict[str, Any]],
    postgres: LocalPostgres,
    database_pairs: list[str],
    env_api: Any,
) -> None:
    told_before = len(admin_messages(env_api))

    run = run_dag("baseline_schema_sync")

    assert run["state"] == "success", run["tasks"]
    for name in database_pairs:
        assert postgres.psql("SELECT to_regclass('room') IS NOT NULL", name).strip() == "t", name
        assert postgres.psql("SELECT name FROM hotel", name).strip() == "Seaside"  # data kept
    summary = run["xcom"]["summarize"]
    assert len(summary["applied"]) == len(database_pairs) and summary["held"] == [] == summary["not_synced"]
    assert {t: run["tasks"][t] for t in ("held_for_approval", "describe_held", "approve_destructive")} == {
        "held_for_approval": "success",
        "describe_held": "skipped",
        "approve_destructive": "skipped",
    }
    assert run["tasks"]["publish_change"] == "success"
    assert len(run["xcom"]["publish_change"]) == len(database_pairs)
    told = [m for m in admin_messages(env_api)[told_before:] if TITLE in str(m)]
    assert len(told) == 1, told
    assert f"{len(database_pairs)} database(s) changed, 0 held, 0 not synced" in str(told[0])
    assert "['" not in str(told[0])  # written for people: no Python lists
