"""Restore-drill operators with the reference environment API, real PostgreSQL and a real S3 endpoint."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest
from baseline_guard.backup import backup_database, commit_backup, dump_key, make_backup_id
from baseline_guard.backup.manifest import load_manifest
from baseline_guard.errors import ProductionWriteRefused
from baseline_guard.hooks.environment import EnvironmentHook
from baseline_guard.operators.drill import (
    FlagStaleRestoreProofsOperator,
    RestoreDrillFailed,
    RestoreDrillOperator,
    environments_with_backups,
)
from baseline_guard.protection.drill_records import drill_history
from local_stack.postgres import PG_BIN_DIR, LocalPostgres
from local_stack.s3 import LocalS3

TITLE = "not proven restorable"


@pytest.fixture
def baseline(postgres: LocalPostgres, s3: LocalS3, env_api: object, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The baseline's databases (as the environment API lists them) on the real server, and a bucket."""
    bucket = f"bg-drillop-{secrets.token_hex(4)}"
    s3.client().create_bucket(Bucket=bucket)
    monkeypatch.setenv("AIRFLOW_CONN_BG_S3", json.dumps(s3.airflow_connection()))
    monkeypatch.setenv("BASELINE_GUARD_PG_BIN_DIR", str(PG_BIN_DIR))
    listed = EnvironmentHook().list_databases("baseline")
    for db in listed:
        if not postgres.psql(f"SELECT 1 FROM pg_database WHERE datname = '{db.name}'").strip():
            postgres.create_database(db.name)
        postgres.psql(
            "DROP TABLE IF EXISTS drill_rows; "
            "CREATE TABLE drill_rows AS SELECT i, md5(i::text) AS v FROM generate_series(1, 250) i;",
            db.name,
        )
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{db.conn_id.upper()}", json.dumps(postgres.airflow_connection(db.name))
        )
    return {"bucket": bucket, "databases": [d.name for d in listed]}


def _back_up(postgres: LocalPostgres, s3: LocalS3, bucket: str, databases: list[str], at: datetime) -> str:
    backup_id = make_backup_id(at, "pre_test", secrets.token_hex(4))
    for name in databases:
        backup_database(
            s3.client(), source=postgres_info(postgres, name), bucket=bucket,
            key=dump_key("baseline", backup_id, name), compression="none", pg_bin_dir=PG_BIN_DIR,
        )  # fmt: skip
    commit_backup(s3.client(), bucket, environment="baseline", backup_id=backup_id, databases=databases)
    return backup_id


def postgres_info(postgres: LocalPostgres, name: str):
    from baseline_guard.backup import PgConnectionInfo

    return PgConnectionInfo(postgres.host, postgres.port, postgres.user, name, postgres.password)


def _context(run_id: str, at: datetime) -> dict:
    return {"run_id": run_id, "dag": SimpleNamespace(dag_id="restore_drill"), "data_interval_end": at}


def _stale_messages(env_api: object) -> list[dict]:
    answer = httpx.get(
        f"http://127.0.0.1:{env_api.api_port}/v1/notifications",  # type: ignore[attr-defined]
        params={"channel": "admins"},
        headers={"Authorization": f"Bearer {env_api.token}"},  # type: ignore[attr-defined]
    )
    return [n for n in answer.json() if TITLE in json.dumps(n)]


def _flag(bucket: str, at: datetime, run_id: str) -> dict:
    return FlagStaleRestoreProofsOperator(
        task_id="flag", aws_conn_id="bg_s3", bucket=bucket, environments=["baseline"]
    ).execute(context=_context(run_id, at))


def test_the_daily_drill_proves_the_newest_pre_test_backup_and_a_stale_proof_is_told_once(
    postgres: LocalPostgres, s3: LocalS3, baseline: dict, env_api: object
) -> None:
    bucket, databases = baseline["bucket"], baseline["databases"]
    now = datetime.now(UTC)
    _back_up(postgres, s3, bucket, databases, now - timedelta(days=2))
    newest = _back_up(postgres, s3, bucket, databases, now - timedelta(hours=1))
    before = postgres.psql("SELECT datname FROM pg_database ORDER BY 1")
    assert environments_with_backups(EnvironmentHook(), s3.client(), bucket) == ["baseline"]
    told_before = len(_stale_messages(env_api))

    drilled = RestoreDrillOperator(
        task_id="drill", aws_conn_id="bg_s3", bucket=bucket, environment="baseline"
    ).execute(context=_context("scheduled__d1", now))

    assert drilled["passed"] and drilled["backup_id"] == newest
    assert {d["database"]: d["rows"] for d in drilled["databases"]} == {d: 250 for d in databases}
    assert postgres.psql("SELECT datname FROM pg_database ORDER BY 1") == before
    assert drill_history(s3.client(), bucket, "baseline").last_proven.backup_id == newest
    assert _flag(bucket, now, "scheduled__d1")["baseline"]["stale"] is False

    later = [_flag(bucket, now + timedelta(days=d), f"scheduled__d{d}") for d in (2, 3)]  # no drill since
    assert [r["baseline"]["flag"] for r in later] == ["raised", "unchanged"]
    sent = _stale_messages(env_api)[told_before:]
    assert len(sent) == 1 and "baseline" in json.dumps(sent[0])


def test_a_corrupt_backup_fails_the_drill_and_is_recorded_as_failed(
    postgres: LocalPostgres, s3: LocalS3, baseline: dict
) -> None:
    bucket, databases = baseline["bucket"], baseline["databases"]
    backup_id = _back_up(postgres, s3, bucket, databases, datetime.now(UTC))
    key = load_manifest(s3.client(), bucket, "baseline", backup_id).databases[0].key
    data = bytearray(s3.client().get_object(Bucket=bucket, Key=key)["Body"].read())
    data[-200] ^= 0xFF
    s3.client().put_object(Bucket=bucket, Key=key, Body=bytes(data))
    before = postgres.psql("SELECT datname FROM pg_database ORDER BY 1")

    with pytest.raises(RestoreDrillFailed, match=databases[0]):
        RestoreDrillOperator(
            task_id="drill", aws_conn_id="bg_s3", bucket=bucket, environment="baseline"
        ).execute(context=_context("scheduled__bad", datetime.now(UTC)))

    history = drill_history(s3.client(), bucket, "baseline")
    assert history.latest is not None and not history.latest.passed and history.last_proven is None
    assert postgres.psql("SELECT datname FROM pg_database ORDER BY 1") == before
    with pytest.raises(RestoreDrillFailed, match="newest restore drill failed for: baseline"):
        _flag(bucket, datetime.now(UTC), "scheduled__bad")


def test_production_is_never_drilled(s3: LocalS3, baseline: dict) -> None:
    with pytest.raises(ProductionWriteRefused):
        RestoreDrillOperator(
            task_id="drill", aws_conn_id="bg_s3", bucket=baseline["bucket"], environment="production"
        ).execute(context=_context("scheduled__prod", datetime.now(UTC)))
