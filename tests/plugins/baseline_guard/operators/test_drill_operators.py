"""Restore-drill operators with the reference environment API, real PostgreSQL and a real S3 endpoint."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from backup_store_fixtures import DRILL_ROWS, BackupStore, admin_messages, commit_test_backup, corrupt_dump
from baseline_guard.errors import InvalidInput, ProductionWriteRefused, RestoreDrillFailed
from baseline_guard.operators.drill import (
    FlagStaleRestoreProofsOperator,
    PlanDrillsOperator,
    RestoreDrillOperator,
)
from baseline_guard.protection.drill_records import drill_history
from local_stack.postgres import LocalPostgres

TITLE = "not proven restorable"


@pytest.fixture
def baseline(backup_store: BackupStore, baseline_databases: list) -> dict:
    """The baseline's databases (as the environment API lists them) on the real server, and the backup store."""
    return {"store": backup_store, "databases": [d.name for d in baseline_databases]}


def _context(run_id: str, at: datetime) -> dict:
    return {"run_id": run_id, "dag": SimpleNamespace(dag_id="restore_drill"), "data_interval_end": at}


def _stale_messages(env_api: object) -> list[dict]:
    return [n for n in admin_messages(env_api) if TITLE in json.dumps(n)]


def _flag(at: datetime, run_id: str) -> dict:
    return FlagStaleRestoreProofsOperator(task_id="flag", environments=["baseline"]).execute(
        context=_context(run_id, at)
    )


def test_the_daily_drill_proves_the_newest_pre_test_backup_and_a_stale_proof_is_told_once(
    postgres: LocalPostgres, baseline: dict, env_api: object
) -> None:
    store, databases = baseline["store"], baseline["databases"]
    now = datetime.now(UTC)
    commit_test_backup(store, postgres, databases, at=now - timedelta(days=2))
    newest = commit_test_backup(store, postgres, databases, at=now - timedelta(hours=1))
    before = postgres.psql("SELECT datname FROM pg_database ORDER BY 1")
    assert PlanDrillsOperator(task_id="plan").execute(context={}) == ["baseline"]
    assert PlanDrillsOperator(task_id="plan", environments=["baseline"]).execute(context={}) == ["baseline"]
    told_before = len(_stale_messages(env_api))

    drilled = RestoreDrillOperator(task_id="drill", environment="baseline").execute(
        context=_context("scheduled__d1", now)
    )

    assert drilled["passed"] and drilled["backup_id"] == newest
    assert {d["database"]: d["rows"] for d in drilled["databases"]} == {d: DRILL_ROWS for d in databases}
    assert postgres.psql("SELECT datname FROM pg_database ORDER BY 1") == before
    assert drill_history(store.client, store.bucket, "baseline").last_proven.backup_id == newest
    assert _flag(now, "scheduled__d1")["baseline"]["stale"] is False

    later = [_flag(now + timedelta(days=d), f"scheduled__d{d}") for d in (2, 3)]  # no drill since
    assert [r["baseline"]["flag"] for r in later] == ["raised", "unchanged"]
    sent = _stale_messages(env_api)[told_before:]
    assert len(sent) == 1 and "baseline" in json.dumps(sent[0])


def test_a_corrupt_backup_fails_the_drill_and_is_recorded_as_failed(
    postgres: LocalPostgres, baseline: dict
) -> None:
    store, databases = baseline["store"], baseline["databases"]
    backup_id = commit_test_backup(store, postgres, databases)
    corrupt_dump(store, "baseline", backup_id, databases[0])
    before = postgres.psql("SELECT datname FROM pg_database ORDER BY 1")

    with pytest.raises(RestoreDrillFailed, match=databases[0]):
        RestoreDrillOperator(task_id="drill", environment="baseline").execute(
            context=_context("scheduled__bad", datetime.now(UTC))
        )

    history = drill_history(store.client, store.bucket, "baseline")
    assert history.latest is not None and not history.latest.passed and history.last_proven is None
    assert postgres.psql("SELECT datname FROM pg_database ORDER BY 1") == before
    with pytest.raises(RestoreDrillFailed, match="newest restore drill failed for: baseline"):
        _flag(datetime.now(UTC), "scheduled__bad")


def test_production_is_never_drilled(baseline: dict) -> None:
    with pytest.raises(ProductionWriteRefused):
        RestoreDrillOperator(task_id="drill", environment="production").execute(
            context=_context("scheduled__prod", datetime.now(UTC))
        )
    with pytest.raises(InvalidInput, match="production: no committed pre_test backup"):
        PlanDrillsOperator(task_id="plan", environments=["production"]).execute(context={})
