"""Backup/restore operators with connections from AIRFLOW_CONN_* (real PostgreSQL, real S3 endpoint).

The bucket is the one the ``aws_backups`` connection names (``backup_store`` fixture): no operator
takes a bucket.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from backup_store_fixtures import BackupStore
from baseline_guard.backup import dump_key, list_backups, load_manifest, make_backup_id, manifest_key
from baseline_guard.dag_defaults import NO_RETRY_FOR
from baseline_guard.errors import ChecksumMismatch, InvalidInput, ProductionWriteRefused, RestoreAborted
from baseline_guard.operators.dump import PgDumpToS3Operator, WriteBackupManifestOperator
from baseline_guard.operators.restore import (
    PlanRestoreOperator,
    RestoreFromBackupOperator,
    SwapRestoredDatabasesOperator,
)
from baseline_guard.operators.retention import BackupRetentionOperator
from local_stack.postgres import LocalPostgres

SOURCE_SQL = """
CREATE TABLE room (id int PRIMARY KEY, hotel text NOT NULL, price numeric(8, 2));
INSERT INTO room SELECT i, 'hotel ' || (i % 17), i * 1.5 FROM generate_series(1, 700) i;
CREATE TABLE booking (id serial PRIMARY KEY, room_id int REFERENCES room(id), guest text);
INSERT INTO booking (room_id, guest) SELECT 1 + i % 700, 'guest ' || i FROM generate_series(1, 300) i;
"""
OLD_SQL = "CREATE TABLE leftover (v text); INSERT INTO leftover VALUES ('before restore');"


@pytest.fixture
def setup(
    postgres: LocalPostgres, backup_store: BackupStore, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """A seeded source database, an older target database, the backup store, and connections to them."""
    tag = secrets.token_hex(4)
    names = {"source": f"opsrc_{tag}", "target": f"optgt_{tag}", "bucket": backup_store.bucket}
    postgres.create_database(names["source"])
    postgres.psql(SOURCE_SQL, names["source"])
    postgres.create_database(names["target"])
    postgres.psql(OLD_SQL, names["target"])
    monkeypatch.setenv("AIRFLOW_CONN_BG_SOURCE_PG", json.dumps(postgres.airflow_connection(names["source"])))
    monkeypatch.setenv("AIRFLOW_CONN_BG_TARGET_PG", json.dumps(postgres.airflow_connection(names["target"])))
    return names


def _rows(postgres: LocalPostgres, database: str, sql: str) -> list[str]:
    return postgres.psql(sql, database).split()


def _record(dumped: dict, **changes: object) -> dict:
    """The dump record a plan hands a restore (the dump operator's result without ``reused``)."""
    return {**{k: v for k, v in dumped.items() if k != "reused"}, **changes}


def _adhoc_dump(setup: dict[str, str]) -> dict:
    return PgDumpToS3Operator(
        task_id="dump",
        postgres_conn_id="bg_source_pg",
        key="adhoc/source.dump",
        compression="none",
        sse="none",
    ).execute(context={})


def test_dump_commit_and_restore_with_no_password_in_logs(
    postgres: LocalPostgres,
    backup_store: BackupStore,
    setup: dict[str, str],
    env_api: object,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    backup_id = make_backup_id(datetime(2025, 5, 6, 7, 8, 9, tzinfo=UTC), "pre_test", "manual__ops")
    dumped = PgDumpToS3Operator(
        task_id="dump",
        postgres_conn_id="bg_source_pg",
        environment="env-ops",
        backup_id=backup_id,
        service="booking",
        compression="gzip:1",
        progress_every_mib=1,
    ).execute(context={})
    committed = WriteBackupManifestOperator(
        task_id="commit",
        environment="env-ops",
        backup_id=backup_id,
        databases=[setup["source"]],
        ci_pipeline_id="ci-77",
    ).execute(context={"run_id": "manual__ops"})
    record = load_manifest(backup_store.client, backup_store.bucket, "env-ops", backup_id).database(
        setup["source"]
    )
    restored = RestoreFromBackupOperator(
        task_id="restore",
        postgres_conn_id="bg_target_pg",
        backup_id=backup_id,
        record=record.model_dump(mode="json"),
    ).execute(context={})

    assert dumped["key"] == f"backups/env-ops/{backup_id}/{setup['source']}.dump"
    assert dumped["row_counts"] == {"public.booking": 300, "public.room": 700} and not dumped["reused"]
    assert committed["backup_id"] == backup_id
    assert committed["databases"] == [
        {
            "database": setup["source"],
            "key": dumped["key"],
            "size": dumped["size"],
            "sha256": dumped["sha256"],
        }
    ]
    assert [r.backup_id for r in list_backups(backup_store.client, setup["bucket"], "env-ops")] == [backup_id]
    assert restored["backup_id"] == backup_id and restored["sha256"] == dumped["sha256"]
    assert restored["swapped"] and restored["database"] == setup["target"]
    target = setup["target"]
    assert _rows(postgres, target, "SELECT count(*), sum(price) FROM room") == ["700|368025.00"]
    assert _rows(postgres, target, "SELECT count(*) FROM booking") == ["300"]
    assert "leftover" not in postgres.psql(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'", target
    )

    captured = capsys.readouterr()
    logs = captured.out + captured.err + caplog.text
    assert "dump uploaded" in logs and "backup committed" in logs and "restore verified" in logs
    assert postgres.password not in logs


def test_restore_into_a_production_environment_is_refused_before_anything(
    postgres: LocalPostgres, setup: dict[str, str], env_api: object
) -> None:
    databases_before = postgres.psql("SELECT datname FROM pg_database ORDER BY 1")
    dumped = _adhoc_dump(setup)

    with pytest.raises(ProductionWriteRefused, match="production"):  # the plan asks the environment API
        PlanRestoreOperator(task_id="plan", environment="production").execute(context={})
    with pytest.raises(ProductionWriteRefused, match="production"):  # a restore given that kind refuses too
        RestoreFromBackupOperator(
            task_id="restore",
            postgres_conn_id="bg_target_pg",
            record=_record(dumped),
            target_kind="production",
        ).execute(context={})

    assert postgres.psql("SELECT datname FROM pg_database ORDER BY 1") == databases_before
    assert _rows(postgres, setup["target"], "SELECT v FROM leftover") == ["before", "restore"]


def test_restore_with_the_wrong_checksum_keeps_the_old_data(
    postgres: LocalPostgres, setup: dict[str, str], env_api: object
) -> None:
    dumped = _adhoc_dump(setup)

    with pytest.raises(ChecksumMismatch, match="not restored"):
        RestoreFromBackupOperator(
            task_id="restore",
            record=_record(dumped, sha256="f" * 64),
            postgres_conn_id="bg_target_pg",
            target_kind="baseline",
        ).execute(context={})

    assert _rows(postgres, setup["target"], "SELECT v FROM leftover") == ["before", "restore"]


def test_dump_without_a_key_or_backup_names_what_is_missing(setup: dict[str, str]) -> None:
    with pytest.raises(InvalidInput, match="expected key, or environment and backup_id"):
        PgDumpToS3Operator(task_id="dump", postgres_conn_id="bg_source_pg").execute(context={})


def test_retention_keeps_the_newest_and_deletes_old_backups_as_of_the_run_time(
    backup_store: BackupStore, setup: dict[str, str]
) -> None:
    client, bucket = backup_store.client, backup_store.bucket
    run_after = datetime.now(UTC)
    ids = [make_backup_id(run_after - timedelta(days=d), "pre_test", f"run-{d}") for d in (1, 3, 30, 60)]
    for backup_id in ids:
        for key in (dump_key("env-ret", backup_id, "orders"), manifest_key("env-ret", backup_id)):
            client.put_object(Bucket=bucket, Key=key, Body=b"{}")

    report = BackupRetentionOperator(
        task_id="retention",
        environment="env-ret",
        keep_last_n=1,
        max_age_days=7,
    ).execute(context={"dag_run": SimpleNamespace(run_after=run_after)})

    assert sorted(report["deleted_backups"]) == sorted(ids[2:])
    assert [r.backup_id for r in list_backups(client, bucket, "env-ret")] == ids[:2]
    left = {o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="backups/env-ret/")["Contents"]}
    assert all(ids[2] not in k and ids[3] not in k for k in left) and len(left) == 4


def _production_database(env_api: object, postgres: LocalPostgres, monkeypatch: pytest.MonkeyPatch) -> str:
    """The first database the reference environment API lists for production, made real on the server."""
    import httpx

    answer = httpx.get(
        f"http://127.0.0.1:{env_api.api_port}/v1/environments/production/databases",  # type: ignore[attr-defined]
        headers={"Authorization": f"Bearer {env_api.token}"},  # type: ignore[attr-defined]
    )
    listed = answer.json()[0]
    postgres.create_database(listed["name"])
    postgres.psql(
        "DROP TABLE IF EXISTS precious; CREATE TABLE precious (v text); INSERT INTO precious VALUES ('prod data');",
        listed["name"],
    )
    conn_env = "AIRFLOW_CONN_" + listed["conn_id"].upper()
    monkeypatch.setenv(conn_env, json.dumps(postgres.airflow_connection(listed["name"])))
    return listed["name"]


def test_a_target_that_is_a_production_database_is_refused_whatever_its_label(
    postgres: LocalPostgres, setup: dict[str, str], env_api: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod = _production_database(env_api, postgres, monkeypatch)
    dumped = _adhoc_dump(setup)
    aliased = {**postgres.airflow_connection(prod), "host": "localhost"}
    monkeypatch.setenv("AIRFLOW_CONN_BG_MISLABELLED", json.dumps(aliased))
    databases_before = postgres.psql("SELECT datname FROM pg_database ORDER BY 1")

    for kind in ("baseline", None):
        with pytest.raises(ProductionWriteRefused, match=f"is production database {prod}"):
            RestoreFromBackupOperator(
                task_id="restore",
                record=_record(dumped),
                postgres_conn_id="bg_mislabelled",
                target_kind=kind,
            ).execute(context={})

    assert postgres.psql("SELECT v FROM precious", prod).strip() == "prod data"
    assert postgres.psql("SELECT datname FROM pg_database ORDER BY 1") == databases_before


def test_an_unknown_environment_is_bad_input_and_fails_without_retry(
    setup: dict[str, str], env_api: object
) -> None:
    with pytest.raises(InvalidInput, match="'proj-nope' is not known") as caught:
        PlanRestoreOperator(task_id="plan", environment="proj-nope").execute(context={})

    assert isinstance(caught.value, tuple(NO_RETRY_FOR))
    assert issubclass(ChecksumMismatch, tuple(NO_RETRY_FOR)) and issubclass(
        RestoreAborted, tuple(NO_RETRY_FOR)
    )


def test_the_swap_step_swaps_nothing_when_a_database_has_no_verified_copy(
    postgres: LocalPostgres, setup: dict[str, str], env_api: object
) -> None:
    dumped = _adhoc_dump(setup)
    context = {"run_id": "manual__swap", "dag": SimpleNamespace(dag_id="test_data_restore")}
    prepared = RestoreFromBackupOperator(
        task_id="restore",
        record=_record(dumped),
        postgres_conn_id="bg_target_pg",
        target_kind="baseline",
        swap=False,
        restore_id="0000c0de",
    ).execute(context=context)
    targets = [
        {"postgres_conn_id": "bg_target_pg", "database": setup["target"]},
        {"postgres_conn_id": "bg_source_pg", "database": setup["source"]},  # its restore never ran
    ]

    with pytest.raises(RestoreAborted, match=f"{setup['source']}: no restored copy was recorded"):
        SwapRestoredDatabasesOperator(task_id="swap", targets=targets, restore_id="0000c0de").execute(
            context=context
        )

    assert not prepared["swapped"]
    assert _rows(postgres, setup["target"], "SELECT v FROM leftover") == ["before", "restore"]
    names = postgres.psql("SELECT datname FROM pg_database").split()
    assert not [n for n in names if n.startswith(setup["target"] + "__")]  # the verified copy was dropped
