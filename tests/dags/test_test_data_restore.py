"""The restore DAG: its wiring (copies first, one swap step after all of them, environment required), and
whole runs against real PostgreSQL, S3 and the reference environment API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.exceptions import ParamValidationError
from backup_store_fixtures import DRILL_ROWS, BackupStore, admin_messages, commit_test_backup, corrupt_dump
from local_stack.postgres import LocalPostgres
from reference_env.launcher import ReferenceEnvironment
from sandbox_connections import deploy_everywhere, history_database, use_reference_environment

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "test_data_restore.py"


@pytest.fixture(scope="module")
def dag():
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert not bag.import_errors
    return bag.dags["test_data_restore"]


def test_every_copy_is_made_before_one_swap_step_that_runs_however_they_ended(dag) -> None:
    restore, swap = dag.get_task("restore_database"), dag.get_task("swap_databases")

    assert restore.partial_kwargs.get("swap") is False
    assert swap.trigger_rule == "all_done_min_one_success"
    assert swap.upstream_task_ids == {"plan_restore", "restore_database"}
    assert dag.get_task("verify_restore").upstream_task_ids >= {"swap_databases"}


def test_the_restore_id_comes_from_the_plan_not_from_the_caller_s_run_id(dag) -> None:
    """Every restore and the swap get the id the plan drew at random (a run id is the caller's)."""
    swap = dag.get_task("swap_databases")

    assert swap.restore_id.operator.task_id == "plan_restore" and swap.restore_id.key == "restore_id"
    assert "restore_id" not in dag.get_task("restore_database").partial_kwargs


def test_the_environment_to_restore_must_be_named(dag) -> None:
    params = ParamsDict({key: dag.params.get_param(key) for key in dag.params})
    params.update({"backup_id": "latest:pre_test"})

    with pytest.raises(ParamValidationError, match="no default"):
        params.validate()
    params.update({"environment": "proj-a"})
    assert params.validate()["environment"] == "proj-a"


def _rows(postgres: LocalPostgres, database: str) -> int:
    return int(postgres.psql("SELECT count(*) FROM drill_rows", database).strip())


def test_a_restore_puts_every_database_back_to_the_backup(
    run_dag: Callable[..., dict[str, Any]],
    postgres: LocalPostgres,
    backup_store: BackupStore,
    baseline_databases: list[Any],
) -> None:
    names = [d.name for d in baseline_databases]
    backup_id = commit_test_backup(backup_store, postgres, names)
    for name in names:
        postgres.psql("DELETE FROM drill_rows WHERE i > 10", name)

    run = run_dag("test_data_restore", conf={"environment": "baseline", "backup_id": "latest:pre_test"})

    assert run["tasks"]["swap_databases"] == "success", run["tasks"]
    assert {name: _rows(postgres, name) for name in names} == {name: DRILL_ROWS for name in names}
    report = run["xcom"]["verify_restore"]
    assert report["backup_id"] == backup_id
    assert sorted(d["database"] for d in report["databases"]) == sorted(names)
    assert {d["rows"] for d in report["databases"]} == {DRILL_ROWS}
    restores = [k for k in run["tasks"] if k.startswith("restore_database[")]
    assert len(restores) == len(names) and {run["tasks"][k] for k in restores} == {"success"}


def test_a_corrupt_dump_restores_nothing_and_sends_exactly_one_message(
    run_dag: Callable[..., dict[str, Any]],
    postgres: LocalPostgres,
    backup_store: BackupStore,
    baseline_databases: list[Any],
    env_api: Any,
) -> None:
    names = [d.name for d in baseline_databases]
    backup_id = commit_test_backup(backup_store, postgres, names)
    corrupt_dump(backup_store, "baseline", backup_id, names[0])
    for name in names:
        postgres.psql("DELETE FROM drill_rows WHERE i > 10", name)
    told_before = len(admin_messages(env_api))

    run = run_dag("test_data_restore", conf={"environment": "baseline", "backup_id": backup_id})

    assert run["state"] == "failed"
    failed = {k for k, state in run["tasks"].items() if state == "failed"}
    assert failed == {"restore_database[0]", "swap_databases"}, run["tasks"]
    assert {name: _rows(postgres, name) for name in names} == {name: 10 for name in names}  # all or nothing
    copies = [f"{name}__restore_" for name in names]  # other tests may leave copies of their own databases
    assert not [
        n for n in postgres.psql("SELECT datname FROM pg_database").split() if n.startswith(tuple(copies))
    ]
    told = admin_messages(env_api)[told_before:]
    assert len(told) == 1, told
    assert names[0] in str(told[0]) and "sha256" in str(told[0]).lower()


def test_the_restore_is_the_change_its_own_check_records_so_a_breakage_knows_its_time_to_detect(
    run_dag: Callable[..., dict[str, Any]],
    postgres: LocalPostgres,
    backup_store: BackupStore,
    baseline_databases: list[Any],
    make_env_api: Callable[[], ReferenceEnvironment],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    names = [d.name for d in baseline_databases]
    backup_id = commit_test_backup(backup_store, postgres, names)
    use_reference_environment(monkeypatch, make_env_api())  # a private sandbox: the fault stays here
    deploy_everywhere("baseline", "hotel-detail", "1.9.2-wrong")  # the environment answers wrong

    with history_database(postgres, monkeypatch) as history:
        run = run_dag("test_data_restore", conf={"environment": "baseline", "backup_id": backup_id})

        assert run["tasks"]["swap_databases"] == "success" and run["tasks"]["run_business_checks"] == "failed"
        with psycopg2.connect(history) as conn, conn.cursor() as cur:
            cur.execute("SELECT dag_id, run_id, trigger, passed, started_at, finished_at FROM check_run")
            [(dag_id, run_id, trigger, passed, started_at, finished_at)] = cur.fetchall()
            cur.execute("SELECT id, environment, source, changes, changed_at FROM environment_change")
            [(change_id, environment, source, changes, changed_at)] = cur.fetchall()
            cur.execute("SELECT module, cause, detected_at FROM incident ORDER BY module")
            incidents = cur.fetchall()
        conn.close()

    assert (dag_id, run_id, trigger, passed) == (
        "test_data_restore",
        run["run_id"],
        "environment_change",
        False,
    )
    assert (environment, source) == ("baseline", "test_data_restore")
    assert changes == [run["xcom"]["verify_restore"]] and changes[0]["backup_id"] == backup_id
    assert [(module, cause) for module, cause, _ in incidents] == [("", change_id), ("catalog", change_id)]
    detected_at = incidents[0][2]
    assert changed_at <= started_at and detected_at == finished_at
    assert timedelta(0) < detected_at - changed_at < timedelta(minutes=2)  # the time to detect
    with create_session() as session:  # no environment_changed event: no second check of the same data
        published = session.scalar(
            select(func.count()).select_from(AssetEvent).where(AssetEvent.source_run_id == run["run_id"])
        )
    assert published == 0
