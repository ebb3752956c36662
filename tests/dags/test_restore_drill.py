"""The restore drill DAG, whole: plan, one drill per environment, the stale-proof flags; real services."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from backup_store_fixtures import DRILL_ROWS, BackupStore, admin_messages, commit_test_backup, corrupt_dump
from baseline_guard.protection.drill_records import drill_history
from local_stack.postgres import LocalPostgres


def _databases(postgres: LocalPostgres) -> str:
    return postgres.psql("SELECT datname FROM pg_database ORDER BY 1")


def test_a_drill_proves_the_newest_backup_and_a_later_failed_drill_fails_the_run_with_one_message(
    run_dag: Callable[..., dict[str, Any]],
    postgres: LocalPostgres,
    backup_store: BackupStore,
    baseline_databases: list[Any],
    env_api: Any,
) -> None:
    names = [d.name for d in baseline_databases]
    proven = commit_test_backup(backup_store, postgres, names, at=datetime.now(UTC) - timedelta(hours=1))
    before = _databases(postgres)
    told_before = len(admin_messages(env_api))

    run = run_dag("restore_drill", conf={"environments": ["baseline"]})

    assert run["state"] == "success", run["tasks"]
    assert run["xcom"]["plan_drills"] == ["baseline"]
    drilled = run["xcom"]["drill_environment[0]"]
    assert drilled["passed"] and drilled["backup_id"] == proven
    assert {d["database"]: d["rows"] for d in drilled["databases"]} == {n: DRILL_ROWS for n in names}
    assert run["xcom"]["flag_stale_restore_proofs"]["baseline"]["stale"] is False
    assert drill_history(backup_store.client, backup_store.bucket, "baseline").last_proven.backup_id == proven
    assert _databases(postgres) == before
    assert len(admin_messages(env_api)) == told_before

    corrupt = commit_test_backup(backup_store, postgres, names)  # newer than the proven one
    corrupt_dump(backup_store, "baseline", corrupt, names[0])

    run = run_dag("restore_drill", conf={"environments": ["baseline"]})

    assert run["state"] == "failed"
    assert run["tasks"]["drill_environment[0]"] == "failed"
    assert run["tasks"]["flag_stale_restore_proofs"] == "failed"  # fails the run, tells nobody again
    told = admin_messages(env_api)[told_before:]
    assert len(told) == 1, [str(m)[:400] for m in told]
    assert names[0] in str(told[0]) and "drill_environment" in str(told[0])
    history = drill_history(backup_store.client, backup_store.bucket, "baseline")
    assert history.latest.backup_id == corrupt and not history.latest.passed
    assert history.last_proven.backup_id == proven
    assert _databases(postgres) == before
