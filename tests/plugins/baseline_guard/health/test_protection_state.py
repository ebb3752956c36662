"""The report's protection slots filled from real sources: the reference environment API, S3 backups."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from backup_store_fixtures import BackupStore, commit_test_backup
from baseline_guard.environment_contract import EnvironmentKind
from baseline_guard.health.protection_state import CachedProtectionState, protection_slots
from baseline_guard.health.report import build_report
from baseline_guard.health.store import HistoryStore
from baseline_guard.hooks.backup_store import BackupStoreHook
from baseline_guard.hooks.environment import EnvironmentHook
from baseline_guard.protection.state import (
    BackupProof,
    EnvironmentProtection,
    ProtectionState,
    collect_protection_state,
)
from history_fixtures import check, m
from local_stack.ports import free_port
from local_stack.postgres import LocalPostgres

CONFIG_RECORDS = {
    "quote": {
        "digest": "sha256:aa",
        "status": "asked",
        "seen_at": "2026-11-30T08:00:00+00:00",
        "asked_at": "2026-11-30T08:01:00+00:00",
    }
}


def reader(env_api_conn_id: str = "baseline_env_api", reads: list[datetime] | None = None) -> Any:
    """Reads the protection state as the api-server does, from the hooks' connections."""

    def read(as_of: datetime) -> ProtectionState:
        if reads is not None:
            reads.append(as_of)
        store = BackupStoreHook()
        hook = EnvironmentHook(env_api_conn_id, max_retries=0)
        return collect_protection_state(
            hook, store.client, store.bucket, as_of, config_records=CONFIG_RECORDS
        )

    return read


def test_slots_show_drift_the_committed_backup_and_an_unproven_restore(
    store: HistoryStore, env_api: Any, backup_store: BackupStore, postgres: LocalPostgres
) -> None:
    store.record(check(m(0)))
    store.record(check(m(5), environment="proj-unknown", run_id="ci__proj-unknown"))
    postgres.psql('DROP DATABASE IF EXISTS "bg_slots_orders" WITH (FORCE);')
    postgres.create_database("bg_slots_orders")
    backup_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    backup_id = commit_test_backup(backup_store, postgres, ["bg_slots_orders"], at=backup_at)
    hook = EnvironmentHook()
    production = {r.service: r.version for r in hook.list_releases()}
    differing = sorted(
        s.name
        for s in hook.list_services("baseline")
        if {i.version for i in s.instances} != {production[s.name]}
    )
    now = datetime.now(UTC)

    report = build_report(store, now, providers=[CachedProtectionState(reader())])

    baseline, unknown = report.environments
    drift = baseline.protection.drift
    assert differing and drift.status == "attention"
    assert [d["service"] for d in drift.details] == differing
    assert drift.summary.startswith(f"{len(differing)} service") and all(
        s in drift.summary for s in differing
    )
    assert drift.since is not None and drift.since <= now and drift.link == "/dags/baseline_code_sync"
    backup = baseline.protection.last_backup
    assert (backup.status, backup.summary, backup.at) == ("ok", f"backup {backup_id}", backup_at)
    restore = baseline.protection.last_proven_restore
    assert (restore.status, restore.summary, restore.at) == ("attention", "no restore proven yet", None)
    held = baseline.protection.held_approvals
    assert (held.status, held.summary) == ("attention", "1 config change awaiting the on-call decision")
    assert held.since == datetime(2026, 11, 30, 8, 1, tzinfo=UTC) and held.details[0]["service"] == "quote"
    # an environment the environment API does not know keeps its slots "not available"
    assert {getattr(unknown.protection, s).status for s in type(unknown.protection).model_fields} == {
        "not_available"
    }


def test_environment_api_down_leaves_the_slots_not_available_and_is_not_asked_again_within_the_ttl(
    store: HistoryStore,
    backup_store: BackupStore,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setenv(
        "AIRFLOW_CONN_DOWN_ENV_API",
        json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": port, "password": "t"}),
    )
    store.record(check(m(0)))
    reads: list[datetime] = []
    provider = CachedProtectionState(reader("down_env_api", reads), ttl=timedelta(seconds=60))
    now = datetime.now(UTC)

    for _ in range(2):
        [baseline] = build_report(store, now, providers=[provider]).environments
        assert baseline.state == "passing"  # the rest of the report is there
        assert baseline.protection.drift.status == "not_available"
        assert baseline.protection.last_backup.status == "not_available"
    assert "EnvironmentApiUnavailable" in caplog.text  # logged, with why
    assert len(reads) == 1  # the failure is remembered: the page does not wait for the API on every request


def _baseline(**backups: Any) -> EnvironmentProtection:
    proof = {
        "last_backup_id": "b2",
        "last_backup_at": NOON,
        "last_pre_test_backup_id": "b1",
        "last_proven_restore_at": NOON - timedelta(hours=30),
        "last_proven_backup_id": "b1",
        "last_drill_passed": True,
        "restore_proof_stale": True,
    }
    return EnvironmentProtection(
        environment="baseline",
        kind=EnvironmentKind.BASELINE,
        drift=[],
        backups=BackupProof(**{**proof, **backups}),
    )


NOON = datetime(2026, 11, 30, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("backups", "status", "summary"),
    [
        ({}, "attention", "backup b1 restored, but older than 25 h"),
        (
            {"last_drill_passed": False, "restore_proof_stale": False},
            "attention",
            "backup b1 restored, but the last drill failed",
        ),
        ({"restore_proof_stale": False}, "ok", "backup b1 restored and verified"),
    ],
)
def test_a_proven_restore_needs_attention_when_stale_or_the_last_drill_failed(
    backups: dict[str, Any], status: str, summary: str
) -> None:
    state = ProtectionState(
        as_of=NOON,
        environments=[_baseline(**backups)],
        held_schema_approvals=[],
        pending_config_decisions=[],
        approvals_known=False,
    )

    slots = protection_slots(state)["baseline"]

    assert (slots["last_proven_restore"].status, slots["last_proven_restore"].summary) == (status, summary)
    assert slots["last_proven_restore"].at == NOON - timedelta(hours=30)
    assert slots["drift"].status == "ok" and "held_approvals" not in slots  # approvals unknown: not available
