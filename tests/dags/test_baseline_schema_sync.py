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


LEGACY_TABLES = 510  # per database: 2 x 510 DROP TABLE statements held, plus a column drop each
DECIDE_AFTER_S = 6  # AIRFLOW3.md: an answer within ~1-5 s of the task awaiting input fails it


@pytest.fixture
def big_held_pairs(
    postgres: LocalPostgres, env_api: Any, backup_store: Any, monkeypatch: pytest.MonkeyPatch
) -> list[Any]:
    """Every database pair made afresh; the first two baseline databases hold 510 tables and a column
    production no longer has (a held plan of 1,000+ statements over two databases), the others match.
    Returns the baseline's ``Database`` records, in the order the sync pairs them (by service)."""
    from baseline_guard.hooks.environment import EnvironmentHook

    hook = EnvironmentHook()
    legacy = "".join(f"CREATE TABLE legacy_{i:04d} (id int, note text);" for i in range(LEGACY_TABLES))
    baseline = sorted(hook.list_databases("baseline"), key=lambda d: d.service)
    for environment, databases in (("production", hook.list_databases("production")), ("baseline", baseline)):
        for db in databases:
            postgres.psql(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE);')
            postgres.create_database(db.name)
            postgres.psql(PRODUCTION_SQL + "INSERT INTO hotel VALUES (1, 'Seaside');", db.name)
            if environment == "baseline" and db in baseline[:2]:
                postgres.psql(legacy + "ALTER TABLE hotel ADD COLUMN retired_flag boolean;", db.name)
            conn = json.dumps(postgres.airflow_connection(db.name))
            monkeypatch.setenv(f"AIRFLOW_CONN_{db.conn_id.upper()}", conn)
    return baseline


def _answer_when_asked(choose: Callable[[list[str]], list[str]], seen: dict[str, Any], stop: Any) -> None:
    """Answer the schema sync's approval as an admin would over REST (the same steps as Airflow's
    ``PATCH .../hitlDetails`` handler: record the response, resume the waiting task), in this process."""
    import time

    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import handle_event_submit
    from airflow.sdk import timezone
    from airflow.triggers.base import TriggerEvent
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    while not stop.is_set():
        with create_session() as session:
            ti = session.scalars(
                select(TaskInstance).where(
                    TaskInstance.dag_id == "baseline_schema_sync",
                    TaskInstance.task_id == "approve_destructive",
                    TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
                )
            ).first()
            detail = session.get(HITLDetail, ti.id) if ti is not None else None
            if detail is not None and "asked_at" not in seen:
                seen.update(asked_at=time.monotonic(), body=detail.body, options=list(detail.options))
            if detail is not None and time.monotonic() - seen["asked_at"] >= DECIDE_AFTER_S:
                detail.chosen_options = choose(list(detail.options))
                detail.params_input = {}
                detail.responded_at = timezone.utcnow()
                detail.responded_by = {"id": "admin", "name": "admin"}
                session.add(detail)
                handle_event_submit(
                    TriggerEvent(detail.as_resume_event_payload()), task_instance=ti, session=session
                )
                seen["chosen"] = detail.chosen_options
                return
        time.sleep(0.5)


def _run_answering(run_dag: Callable[..., dict[str, Any]], choose: Callable[[list[str]], list[str]]) -> tuple:
    import threading

    seen: dict[str, Any] = {}
    stop = threading.Event()
    answerer = threading.Thread(target=_answer_when_asked, args=(choose, seen, stop), daemon=True)
    answerer.start()
    try:
        run = run_dag("baseline_schema_sync")
    finally:
        stop.set()
        answerer.join(timeout=30)
    return run, seen


def _tables(postgres: LocalPostgres, database: str) -> int:
    sql = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'legacy\\_%';"
    return int(postgres.psql(sql, database).strip())


def test_held_plan_of_1000_statements_is_summarized_and_approved_for_one_database_only(
    run_dag: Callable[..., dict[str, Any]],
    postgres: LocalPostgres,
    big_held_pairs: list[Any],
    backup_store: Any,
) -> None:
    approved_db, declined_db = big_held_pairs[0], big_held_pairs[1]

    run, seen = _run_answering(run_dag, lambda options: [approved_db.conn_id])

    assert run["state"] == "success", run["tasks"]
    held = run["xcom"]["held_for_approval"]
    assert [p["target_conn_id"] for p in held] == [approved_db.conn_id, declined_db.conn_id]
    assert sum(len(p["statements"]) for p in held) >= 2 * LEGACY_TABLES + 2 >= 1_000
    # the question: one option per database (several may be chosen), a summary first, SQL linked
    assert seen["options"] == [approved_db.conn_id, declined_db.conn_id, "Apply to none"]
    body = seen["body"]
    assert len(body) < 12_000, len(body)  # 1,000+ statements, yet a page a person can read
    for plan in held:
        section = body.split(f"#### {plan['target_conn_id']} ")[1].split("####")[0]
        assert f"{len(plan['statements'])} statement(s) held, digest `{plan['plan_digest']}`" in section
        assert f"- {LEGACY_TABLES} tables dropped (every row in them is lost): public.legacy_0000" in section
        assert "- 1 columns dropped (their values are lost): public.hotel.retired_flag" in section
        assert "too long to show here: [" in section and "```sql" not in section
        key = f"schema-approvals/baseline/{plan['target_conn_id']}/{plan['plan_digest'][7:]}/plan.sql"
        script = backup_store.client.get_object(Bucket=backup_store.bucket, Key=key)["Body"].read().decode()
        assert [s["sql"] for s in plan["statements"]] == [
            line for line in script.splitlines() if line and not line.startswith("--")
        ]
    # exactly what was chosen happened: the approved database lost its legacy tables and column,
    # the other kept every one of them, and is recorded as declined for this plan
    assert run["tasks"]["approve_destructive"] == "success"
    assert [k for k in run["tasks"] if k.startswith("apply_approved")] == ["apply_approved[0]"]
    assert _tables(postgres, approved_db.name) == 0
    assert "retired_flag" not in postgres.psql("SELECT * FROM hotel LIMIT 0;", approved_db.name)
    assert postgres.psql("SELECT name FROM hotel;", approved_db.name).strip() == "Seaside"
    assert _tables(postgres, declined_db.name) == LEGACY_TABLES
    declined = f"schema-approvals/baseline/{declined_db.conn_id}/{held[1]['plan_digest'][7:]}/declined.json"
    record = json.loads(
        backup_store.client.get_object(Bucket=backup_store.bucket, Key=declined)["Body"].read()
    )
    assert record["declined_by"] == {"id": "admin", "name": "admin"}

    # next hour, unchanged: nobody is asked again, nothing applied to the declined database
    again = run_dag("baseline_schema_sync")
    assert again["state"] == "success", again["tasks"]
    assert not again["xcom"]["held_for_approval"]  # the declined plan, unchanged, is left out
    assert again["tasks"]["approve_destructive"] == "skipped"
    assert _tables(postgres, declined_db.name) == LEGACY_TABLES

    # the plan changes (one more legacy table): asked again, and now approved
    postgres.psql("CREATE TABLE legacy_9999 (id int);", declined_db.name)
    third, seen = _run_answering(run_dag, lambda options: [declined_db.conn_id])
    assert third["state"] == "success", third["tasks"]
    assert seen["options"] == [declined_db.conn_id, "Apply to none"]
    assert _tables(postgres, declined_db.name) == 0
