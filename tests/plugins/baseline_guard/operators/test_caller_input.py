"""What a caller sends cannot make the guard lose, mislabel or fake what it guards (issue 20).

Operators run with the context Airflow gives a run triggered over REST, against the real S3 endpoint,
the real PostgreSQL server and the reference environment API.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from backup_store_fixtures import BackupStore
from baseline_guard.backup import dump_key, list_backups, make_backup_id, manifest_key
from baseline_guard.backup.manifest import parse_backup_id
from baseline_guard.dag_defaults import NO_RETRY_FOR
from baseline_guard.errors import InvalidInput, ProductionWriteRefused, TargetNotIdentified
from baseline_guard.operators.business_check import BusinessCheckOperator
from baseline_guard.operators.dump import PgDumpToS3Operator, PlanBackupOperator, WriteBackupManifestOperator
from baseline_guard.operators.retention import BackupRetentionOperator
from sandbox_connections import use_backup_store, use_reference_environment
from task_tries import TryingTaskInstance, run_task

FAR_FUTURE = datetime(2099, 1, 1, tzinfo=UTC)
TRUST_BUCKET = "bg-trust-checks"


def rest_run_context(run_id: str, *, dated: datetime = FAR_FUTURE) -> dict[str, Any]:
    """The context of a manual run whose caller set logical_date, data interval and run_after to ``dated``."""
    dag_run = SimpleNamespace(
        run_id=run_id,
        run_type="manual",
        logical_date=dated,
        data_interval_start=dated,
        data_interval_end=dated,
        run_after=dated,
        start_date=dated,  # dag.test() starts a run at its logical date
        conf={},
    )
    return {
        "dag_run": dag_run,
        "run_id": run_id,
        "logical_date": dated,
        "data_interval_start": dated,
        "data_interval_end": dated,
    }


def test_a_caller_dated_run_expires_no_backup_and_removes_no_backup_being_written(
    backup_store: BackupStore,
) -> None:
    client, bucket = backup_store.client, backup_store.bucket
    now = datetime.now(UTC)
    ids = [make_backup_id(now - timedelta(days=d), "pre_test", f"run-{d}") for d in (1, 2)]
    for backup_id in ids:
        for key in (dump_key("env-date", backup_id, "orders"), manifest_key("env-date", backup_id)):
            client.put_object(Bucket=bucket, Key=key, Body=b"{}")
    # another run's backup, being written now: its first dump is there, its manifest not yet
    # (moto dates every multipart upload 2010-11-10, so an upload in flight cannot show the grace here)
    writing = dump_key("env-date", make_backup_id(now, "pre_test", "another-run"), "orders")
    client.put_object(Bucket=bucket, Key=writing, Body=b"dump")

    report = BackupRetentionOperator(
        task_id="apply_retention", environment="env-date", keep_last_n=1
    ).execute(context=rest_run_context("manual__2099"))

    assert report["deleted_backups"] == [] and report["deleted_leftover_objects"] == []
    assert [r.backup_id for r in list_backups(client, bucket, "env-date")] == ids
    assert client.head_object(Bucket=bucket, Key=writing)["ContentLength"] == 4


def test_a_caller_dated_run_and_its_run_id_do_not_date_or_name_the_backup(env_api: Any) -> None:
    def plan(run_id: str) -> str:
        ti = TryingTaskInstance(task_id="plan_backup", run_id=run_id, dag_id="test_data_backup")
        PlanBackupOperator(task_id="plan_backup", environment="baseline", phase="pre_test").execute(
            context={**rest_run_context(run_id), "ti": ti, "task_instance": ti}
        )
        return ti.xcoms["backup_id"]

    before = datetime.now(UTC).replace(microsecond=0)
    first, second = plan("chosen-by-ci"), plan("chosen-by-ci")
    created = parse_backup_id(first).created_at
    assert before <= created <= datetime.now(UTC), first  # the task's clock, not 2099
    assert first != second  # the same run id twice: two backups, never the same keys


def _dump_only(store: BackupStore, postgres: Any, databases: list[str]) -> str:
    """Dumps and records of a backup whose manifest is not written yet; its id."""
    from baseline_guard.backup import PgConnectionInfo, backup_database
    from local_stack.postgres import PG_BIN_DIR

    backup_id = make_backup_id(datetime.now(UTC), "pre_test", "manifest-rejected")
    for name in databases:
        backup_database(
            store.client,
            source=PgConnectionInfo(postgres.host, postgres.port, postgres.user, name, postgres.password),
            bucket=store.bucket,
            key=dump_key("baseline", backup_id, name),
            compression="none",
            pg_bin_dir=PG_BIN_DIR,
        )
    return backup_id


def test_a_manifest_that_cannot_be_written_fails_at_once_and_leaves_no_dumps(
    backup_store: BackupStore, postgres: Any, baseline_databases: list[Any]
) -> None:
    names = [d.name for d in baseline_databases]
    backup_id = _dump_only(backup_store, postgres, names)
    prefix = f"backups/baseline/{backup_id}/"
    assert backup_store.client.list_objects_v2(Bucket=backup_store.bucket, Prefix=prefix)[
        "KeyCount"
    ] == 2 * len(names)
    write = WriteBackupManifestOperator(
        task_id="write_manifest",
        environment="baseline",
        backup_id=backup_id,
        databases=names,
        ci_pipeline_id=1234,  # type: ignore[arg-type]  # what the DAG rendered "1234" to before issue 20
    )

    with pytest.raises(Exception) as failed:
        write.execute(context={"run_id": "manual__rejected"})

    assert isinstance(failed.value, tuple(NO_RETRY_FOR)), type(failed.value)  # no retry can help
    message = str(failed.value)
    assert "ci_pipeline_id" in message and "manifest cannot be written" in message, message
    assert f"deleted its {2 * len(names)} uploaded objects" in message, message
    assert backup_store.client.list_objects_v2(Bucket=backup_store.bucket, Prefix=prefix)["KeyCount"] == 0
    assert list_backups(backup_store.client, backup_store.bucket, "baseline") == []


@pytest.fixture
def private_sandbox(make_env_api: Any, s3: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A reference environment of this test's own with a project environment ``proj-ci``."""
    env = make_env_api()
    use_reference_environment(monkeypatch, env, conn_id="trust_env_api")
    use_backup_store(monkeypatch, s3, TRUST_BUCKET, conn_id="trust_s3")
    with httpx.Client(base_url=f"{env.api_url}/v1", headers={"Authorization": f"Bearer {env.token}"}) as api:
        api.post("/environments", json={"name": "proj-ci", "services": {"quote": "1.1.0"}}).raise_for_status()
    return env


def _check(environment: str, routing_key: str | None, prefix: str) -> Any:
    return run_task(
        BusinessCheckOperator(
            task_id="checks",
            env_api_conn_id="trust_env_api",
            aws_conn_id="trust_s3",
            history_conn_id=None,
            environment=environment,
            routing_key=routing_key,
            tags=["smoke"],
            report_prefix=prefix,
        )  # type: ignore[arg-type]
    )


def test_a_check_through_another_environments_routing_key_is_refused_before_it_runs(
    private_sandbox: Any, s3: Any
) -> None:
    for environment, key, expected in [
        ("proj-ci", "nope", "routing key 'nope' is not the one the environment API lists for proj-ci"),
        (
            "proj-ci",
            "proj-other",
            "routing key 'proj-other' is not the one the environment API lists for proj-ci",
        ),
        ("baseline", "proj-ci", "baseline is reached without a routing key, got 'proj-ci'"),
    ]:
        done = _check(environment, key, f"reports/{environment}-{key}")
        assert isinstance(done.error, InvalidInput), (environment, key, done.error)
        assert expected in str(done.error), str(done.error)
        assert "leave routing_key empty" in str(done.error)
    stored = s3.client().list_objects_v2(Bucket=TRUST_BUCKET).get("Contents", [])
    assert stored == []  # no report, no outcome kept for any environment: nothing ran

    # the environment's own key, from the API or named: the check runs (whatever the sandbox answers)
    for key, prefix in ((None, "reports/proj-ci-own"), ("proj-ci", "reports/proj-ci-same")):
        ran = _check("proj-ci", key, prefix)
        assert not isinstance(ran.error, InvalidInput), ran.error
        reports = s3.client().list_objects_v2(Bucket=TRUST_BUCKET, Prefix=prefix + "/")["KeyCount"]
        assert reports == 3, (key, reports)


def _production_database(env_api: Any, postgres: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The first database the reference environment API lists for production, made real on the server
    with its connection set (as a worker that may read production has it)."""
    with httpx.Client(
        base_url=f"{env_api.api_url}/v1", headers={"Authorization": f"Bearer {env_api.token}"}
    ) as api:
        listed = api.get("/environments/production/databases").json()[0]
    postgres.psql(f'DROP DATABASE IF EXISTS "{listed["name"]}" WITH (FORCE);')
    postgres.create_database(listed["name"])
    postgres.psql(
        "CREATE TABLE precious (v text); INSERT INTO precious VALUES ('prod data');", listed["name"]
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_" + listed["conn_id"].upper(), json.dumps(postgres.airflow_connection(listed["name"]))
    )
    return listed


def test_production_is_never_backed_up_into_the_test_bucket(
    env_api: Any, backup_store: BackupStore, postgres: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod = _production_database(env_api, postgres, monkeypatch)
    # by the environment's kind, before anything else
    ti = TryingTaskInstance(task_id="plan_backup", run_id="manual__prod", dag_id="test_data_backup")
    with pytest.raises(ProductionWriteRefused, match="production is never backed up") as refused:
        PlanBackupOperator(task_id="plan_backup", environment="production", phase="pre_test").execute(
            context={**rest_run_context("manual__prod"), "ti": ti}
        )
    assert isinstance(refused.value, tuple(NO_RETRY_FOR))
    # by identity: production's database through a connection that calls it something else
    aliased = {**postgres.airflow_connection(prod["name"]), "host": "localhost"}
    monkeypatch.setenv("AIRFLOW_CONN_BG_ALIAS_OF_PROD", json.dumps(aliased))
    backup_id = make_backup_id(datetime.now(UTC), "pre_test", "aliased")
    with pytest.raises(ProductionWriteRefused, match=f"is production database {prod['name']}") as refused:
        PgDumpToS3Operator(
            task_id="dump_database",
            postgres_conn_id="bg_alias_of_prod",
            environment="baseline",
            backup_id=backup_id,
        ).execute(context={})
    assert "production is never backed up" in str(refused.value)
    assert backup_store.client.list_objects_v2(Bucket=backup_store.bucket).get("KeyCount") == 0


def test_production_whose_server_cannot_be_identified_fails_closed(
    env_api: Any, postgres: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from baseline_guard.hooks.environment import EnvironmentHook
    from baseline_guard.operators.production import production_identities
    from local_stack.ports import free_port

    prod = _production_database(env_api, postgres, monkeypatch)
    unreachable = {**postgres.airflow_connection(prod["name"]), "port": free_port()}  # nobody listens
    monkeypatch.setenv("AIRFLOW_CONN_" + prod["conn_id"].upper(), json.dumps(unreachable))

    with pytest.raises(TargetNotIdentified) as refused:
        production_identities(EnvironmentHook())

    message = str(refused.value)
    assert f"production database {prod['name']}" in message and "cannot be identified" in message, message
    assert isinstance(refused.value, tuple(NO_RETRY_FOR))
