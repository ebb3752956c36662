"""The backup DAG, whole: plan, one dump per database, the manifest last, retention; real PostgreSQL and S3."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backup_store_fixtures import BackupStore, admin_messages
from baseline_guard.backup import list_backups, load_manifest


def test_a_manual_backup_dumps_every_baseline_database_and_commits_one_manifest(
    run_dag: Callable[..., dict[str, Any]],
    backup_store: BackupStore,
    baseline_databases: list[Any],
    env_api: Any,
) -> None:
    told_before = len(admin_messages(env_api))

    run = run_dag("test_data_backup", conf={"environment": "baseline", "phase": "manual"})

    assert run["state"] == "success", run["tasks"]
    names = sorted(d.name for d in baseline_databases)
    dumps = {k: v for k, v in run["tasks"].items() if k.startswith("dump_database[")}
    assert len(dumps) == len(names) and set(dumps.values()) == {"success"}
    assert run["tasks"]["checks_wanted"] == "success" and run["tasks"]["run_business_checks"] == "skipped"

    backups = list_backups(backup_store.client, backup_store.bucket, "baseline")
    assert len(backups) == 1 and backups[0].backup_id == run["xcom"]["write_manifest"]["backup_id"]
    manifest = load_manifest(backup_store.client, backup_store.bucket, "baseline", backups[0].backup_id)
    assert sorted(d.database for d in manifest.databases) == names
    assert {d.database: d.row_counts for d in manifest.databases} == {
        n: {"public.drill_rows": 250} for n in names
    }
    assert manifest.phase.value == "manual" and manifest.airflow_run_id == run["run_id"]
    assert run["xcom"]["apply_retention"]["deleted_backups"] == []
    assert len(admin_messages(env_api)) == told_before  # a run that went well tells nobody


def test_an_unknown_database_fails_the_plan_with_one_message_and_nothing_written(
    run_dag: Callable[..., dict[str, Any]],
    backup_store: BackupStore,
    baseline_databases: list[Any],
    env_api: Any,
) -> None:
    told_before = len(admin_messages(env_api))

    run = run_dag("test_data_backup", conf={"environment": "baseline", "databases": ["no_such_db"]})

    assert run["state"] == "failed" and run["tasks"]["plan_backup"] == "failed"
    assert backup_store.client.list_objects_v2(Bucket=backup_store.bucket).get("KeyCount") == 0
    told = admin_messages(env_api)[told_before:]
    assert len(told) == 1, told
    assert "no_such_db" in str(told[0]) and "plan_backup" in str(told[0])


def test_a_numeric_looking_pipeline_id_stays_a_string_in_the_manifest(
    run_dag: Callable[..., dict[str, Any]],
    backup_store: BackupStore,
    baseline_databases: list[Any],
) -> None:
    """Issue 20: ``"pipeline_id": "1234"`` was rendered as the int 1234; the manifest was refused after
    the dumps were uploaded, three times, and the dumps stayed without a manifest."""
    conf = {"environment": "baseline", "phase": "manual", "pipeline_id": "1234", "run_business_check": False}

    run = run_dag("test_data_backup", conf=conf)

    assert run["state"] == "success", run["tasks"]
    backup_id = run["xcom"]["write_manifest"]["backup_id"]
    manifest = load_manifest(backup_store.client, backup_store.bucket, "baseline", backup_id)
    assert manifest.ci_pipeline_id == "1234"
