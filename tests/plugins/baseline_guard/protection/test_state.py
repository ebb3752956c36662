"""Protection state from real sources: the reference environment API, Airflow's HITL JSON, S3 backups and drills."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from baseline_guard.environment_contract import EnvironmentKind
from baseline_guard.hooks.environment import EnvironmentHook
from baseline_guard.protection.drill import drill_environment
from baseline_guard.protection.drill_records import make_drill_id, record_drill
from baseline_guard.protection.state import collect_protection_state
from local_stack.postgres import PG_BIN_DIR

# What Airflow 3.3 answers on GET /api/v2/dags/~/dagRuns/~/hitlDetails (abridged to the fields used)
HITL_DETAILS = [
    {
        "subject": "Baseline schema sync: apply destructive changes?",
        "created_at": "2026-03-01T10:05:00Z",
        "response_received": False,
        "options": ["Approve", "Reject"],
        "task_instance": {
            "dag_id": "baseline_schema_sync",
            "dag_run_id": "scheduled__2026-03-01T10:00:00+00:00",
            "task_id": "approve_destructive",
            "map_index": -1,
            "state": "deferred",
        },
    },
    {
        "subject": "Baseline schema sync: apply destructive changes?",
        "created_at": "2026-03-01T09:05:00Z",
        "response_received": True,
        "options": ["Approve", "Reject"],
        "task_instance": {
            "dag_id": "baseline_schema_sync",
            "dag_run_id": "scheduled__2026-03-01T09:00:00+00:00",
            "task_id": "approve_destructive",
            "map_index": -1,
            "state": "success",
        },
    },
    {
        "subject": "Production config changed",
        "created_at": "2026-03-01T10:10:00Z",
        "response_received": False,
        "options": ["a"],
        "task_instance": {"dag_id": "baseline_config_sync", "dag_run_id": "r", "task_id": "decide"},
    },
]
CONFIG_RECORDS = {
    "quote": {
        "digest": "sha256:aa",
        "seen_at": "2026-03-01T08:00:00+00:00",
        "status": "asked",
        "asked_at": "2026-03-01T08:01:00+00:00",
        "expires_at": "2026-03-01T09:01:00+00:00",
    },
    "booking": {"digest": "sha256:bb", "status": "decided", "decision": "Not needed for the baseline"},
}


def test_protection_state_of_the_sandbox(env_api, s3_client, bucket, conn_info, make_db, take_backup) -> None:
    hook = EnvironmentHook()
    seeded = {s.name: {i.version for i in s.instances} for s in hook.list_services("baseline")}
    production = {r.service: r.version for r in hook.list_releases()}
    expected_drift = sorted(name for name, versions in seeded.items() if versions != {production[name]})
    orders = make_db("orders", "CREATE TABLE t AS SELECT generate_series(1, 40) AS i;")
    old = take_backup("baseline", [orders], at=datetime.now(UTC) - timedelta(days=3))
    drilled = drill_environment(
        s3_client,
        bucket=bucket,
        environment="baseline",
        backup_id=old,
        targets={orders: conn_info(orders)},
        production=[],
        restore_id="0000dd11",
        drill_id=make_drill_id(datetime.now(UTC), "r1"),
        pg_bin_dir=PG_BIN_DIR,
    )
    record_drill(s3_client, bucket, drilled)
    newest = take_backup("baseline", [orders], phase="post_test")
    as_of = datetime.now(UTC) + timedelta(minutes=1)

    state = collect_protection_state(
        hook, s3_client, bucket, as_of, hitl_details=HITL_DETAILS, config_records=CONFIG_RECORDS
    )

    baseline = next(e for e in state.environments if e.environment == "baseline")
    assert EnvironmentKind.PRODUCTION not in {e.kind for e in state.environments}
    assert expected_drift and [d.service for d in baseline.drift] == expected_drift
    for drift in baseline.drift:
        assert drift.production_version == production[drift.service] and drift.since is not None
        assert drift.since <= as_of and set(drift.versions) == seeded[drift.service]
    assert baseline.backups.last_backup_id == newest  # any phase
    assert baseline.backups.last_pre_test_backup_id == old
    assert baseline.backups.last_proven_backup_id == old and baseline.backups.last_drill_passed is True
    assert baseline.backups.last_proven_restore_at == drilled.finished_at
    assert baseline.backups.restore_proof_stale is False
    assert [(h.run_id, h.task_id) for h in state.held_schema_approvals] == [
        ("scheduled__2026-03-01T10:00:00+00:00", "approve_destructive")
    ]
    assert [(p.service, p.digest) for p in state.pending_config_decisions] == [("quote", "sha256:aa")]

    a_day_later = collect_protection_state(hook, s3_client, bucket, as_of + timedelta(hours=26))
    assert next(
        e for e in a_day_later.environments if e.environment == "baseline"
    ).backups.restore_proof_stale
