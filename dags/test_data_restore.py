"""
### Test-data restore

Puts an environment's databases back to a backup taken by `test_data_backup`, then checks
the environment works.

1. `plan_restore` refuses an environment of kind **production** before anything else, resolves
   the backup (`latest`, `latest:pre_test`, or a backup id; only backups with a manifest
   exist) and matches each database of the backup to the environment's connection.
2. `restore_database` (one mapped task per database): streams the dump from S3 into
   `pg_restore`, verifying its SHA-256 and size against the manifest while streaming, into a
   **fresh** database; only when the restore succeeded and the checksum matched is it swapped
   in for the old one. A failed or tampered restore leaves the previous data as it was.
3. `verify_restore` compares what was restored with the manifest (tables, rows, checksums).
4. `run_business_checks` checks the environment works with the restored data.

From CI: `baseline-guard-trigger test_data_restore --conf '{"environment": "proj-a", "backup_id": "latest:pre_test"}'`
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param, dag, task
from baseline_guard.dag_defaults import START_DATE, databases_param, default_args, environment_param
from baseline_guard.notifiers.admins import dag_failure_notifier
from baseline_guard.operators.backup import RestoreFromBackupOperator
from baseline_guard.operators.business_check import BusinessCheckOperator

BUCKET = "{{ var.value.baseline_guard_backup_bucket }}"
AWS_CONN_ID = "aws_backups"
BACKUP_SELECTOR = (
    r"^(latest(:(pre_test|post_test|manual))?|\d{8}T\d{6}Z-(pre_test|post_test|manual)-[0-9a-f]{8})$"
)


@dag(
    dag_id="test_data_restore",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    doc_md=__doc__,
    tags=["baseline-guard", "test-data", "restore", "ci"],
    default_args=default_args(execution_timeout=timedelta(hours=2)),
    on_failure_callback=dag_failure_notifier("test-data restore"),
    params={
        "environment": environment_param("Environment to restore (never production)."),
        "backup_id": Param(
            "latest",
            type="string",
            pattern=BACKUP_SELECTOR,
            description="latest, latest:<phase> (pre_test, post_test, manual) or a backup id.",
        ),
        "databases": databases_param("Databases to restore; empty: every database in the backup."),
    },
)
def test_data_restore() -> None:
    @task
    def plan_restore(params: dict[str, Any]) -> list[dict[str, Any]]:
        """One restore per database of the resolved backup; each names the backup id."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook
        from airflow.sdk import Variable
        from baseline_guard.backup import load_manifest, resolve_backup_id
        from baseline_guard.hooks.environment import EnvironmentHook
        from baseline_guard.test_data import choose_databases

        env, hook = params["environment"], EnvironmentHook()
        hook.require_writable(env)
        client = S3Hook(aws_conn_id=AWS_CONN_ID).get_conn()
        bucket = Variable.get("baseline_guard_backup_bucket")
        backup_id = resolve_backup_id(client, bucket, env, params["backup_id"])
        in_backup = {d.database for d in load_manifest(client, bucket, env, backup_id).databases}
        targets = [d for d in hook.list_databases_of(env) if d.name in in_backup]
        chosen = choose_databases(targets, params["databases"], env)
        print(f"restoring {env} from backup {backup_id}: {[d.name for d in chosen]}")
        return [
            {"postgres_conn_id": d.conn_id, "database": d.name, "environment": env,
             "target_environment": env, "backup": backup_id}
            for d in chosen
        ]  # fmt: skip

    plan = plan_restore()

    restored = RestoreFromBackupOperator.partial(
        task_id="restore_database",
        aws_conn_id=AWS_CONN_ID,
        bucket=BUCKET,
        max_active_tis_per_dagrun=2,
        map_index_template="{{ task.database }}",
    ).expand_kwargs(plan)

    @task
    def verify_restore(plan: list[dict[str, Any]], results: list[dict[str, Any]]) -> dict[str, Any]:
        backup_id = plan[0]["backup"]
        databases = [
            {"database": r["database"], "tables": r["table_count"], "rows": sum(r["row_counts"].values()),
             "sha256": r["sha256"]}
            for r in results
        ]  # fmt: skip
        print(f"restored from {backup_id}: {databases}")
        return {"backup_id": backup_id, "databases": databases}

    checks = BusinessCheckOperator(
        task_id="run_business_checks",
        environment="{{ params.environment }}",
        bucket=BUCKET,
    )
    verify_restore(plan, restored.output) >> checks


dag = test_data_restore()

if __name__ == "__main__":
    dag.test()
