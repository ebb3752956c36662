"""
### Test-data restore

Puts an environment's databases back to a backup taken by `test_data_backup`, then checks
the environment works.

The restore is **all-or-nothing** for the environment:

1. `plan_restore` refuses an environment of kind **production** (and an unknown one) before
   anything else, resolves the backup (`latest`, `latest:pre_test`, or a backup id; only
   backups with a manifest exist) and matches each database of the backup to the
   environment's connection. `environment` has no default: it must be named.
2. `restore_database` (one mapped task per database): refuses a target that *is* one of
   production's databases (same server `system_identifier`, host, port and name as the
   environment API lists for production, whatever the label), then streams the dump from S3
   into `pg_restore`, verifying SHA-256 and size while streaming, into a **copy**
   `<db>__restore_<id>`; checks tables and rows against the manifest and gives the copy the
   database's own properties (ACL, `ALTER DATABASE ... SET`, comment, connection limit). The
   live database is not touched.
3. `swap_databases` (one task, runs once every restore ended, however it ended): only when **every** copy is
   verified are they all swapped in, per server in one transaction; otherwise nothing is
   swapped, the copies are dropped and the task fails naming each database and the reason.
   Sessions in the databases (and in our copies) are ended; a busy database is named.
4. `verify_restore` reports what was restored (tables, rows, checksums).
5. `run_business_checks` checks the environment works with the restored data.

Everything the restore creates or closes is recorded first in a ledger in each server's
maintenance database, so a crashed run is undone by the next one, which never touches a
database it did not record. Bad input, an unknown environment, a production target and a
corrupt dump fail at once, without retries.

From CI: `baseline-guard-trigger test_data_restore --conf '{"environment": "proj-a", "backup_id": "latest:pre_test"}'`
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param, dag, task
from baseline_guard.dag_defaults import START_DATE, databases_param, default_args
from baseline_guard.environment_contract import NAME_PATTERN
from baseline_guard.operators.backup import RestoreFromBackupOperator, SwapRestoredDatabasesOperator
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
    default_args=default_args("test-data restore", execution_timeout=timedelta(hours=2)),
    params={
        "environment": Param(
            type="string",
            pattern=NAME_PATTERN,
            description="Environment to restore (never production). Required: there is no default.",
        ),
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
        from baseline_guard.operators.backup import writable_environment_kind
        from baseline_guard.test_data import choose_databases

        env, hook = params["environment"], EnvironmentHook()
        writable_environment_kind(hook.env_api_conn_id, env)
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
        swap=False,
        max_active_tis_per_dagrun=2,
        map_index_template="{{ task.database }}",
    ).expand_kwargs(plan)

    swapped = SwapRestoredDatabasesOperator(
        task_id="swap_databases",
        targets=plan,
        trigger_rule="all_done_min_one_success",  # after every restore_database, unless plan failed
        execution_timeout=timedelta(minutes=10),
    )

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
    restored >> swapped
    swapped >> verify_restore(plan, restored.output) >> checks


dag = test_data_restore()

if __name__ == "__main__":
    dag.test()
