"""
### Test-data backup

Backs up an environment's databases to S3, before a CI test run (`pre_test`, so the data can
be put back to a known state) and after it (`post_test`, for audit), or by hand (`manual`).

1. `plan_backup` checks the params against the environment API (the environment exists, each
   named database belongs to it) and gives the backup its id, dated by the task's own clock (a
   caller's `logical_date` or data interval never dates a backup; every later task and retry
   of the run continues the same backup; it never overwrites one).
2. `dump_database` (one mapped task per database, at most 2 per run and 4 across runs):
   `pg_dump -Fc` **streamed** into an S3 multipart upload: no copy on local disk, memory
   bounded by a few parts, SHA-256 computed while streaming, server-side encryption, never
   overwriting an object, the upload aborted on any failure.
3. `write_manifest` checks every dump and writes the manifest **last**: a backup without a
   manifest does not exist for listing or restore. Its result is the backup id.
4. `apply_retention` deletes whole old backups of the environment (newest 7 per phase and
   everything younger than 14 days are kept) and leftovers of failed ones.
5. `run_business_checks` checks the environment still works (default: for `pre_test`); a failing
   check is not retried (as in `business_check`: a failed scenario is a finding, not a blip).

From CI: `baseline-guard-trigger test_data_backup --conf '{"environment": "proj-a", "phase": "pre_test", "pipeline_id": "1234"}'`
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, task
from baseline_guard.dag_defaults import (
    START_DATE,
    databases_param,
    default_args,
    environment_param,
    param_value,
)
from baseline_guard.errors import BusinessChecksFailed
from baseline_guard.operators.business_check import BusinessCheckOperator
from baseline_guard.operators.dump import PgDumpToS3Operator, PlanBackupOperator, WriteBackupManifestOperator
from baseline_guard.operators.retention import BackupRetentionOperator


@dag(
    dag_id="test_data_backup",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=4,
    render_template_as_native_obj=True,
    doc_md=__doc__,
    tags=["baseline-guard", "test-data", "backup", "ci"],
    default_args=default_args(
        "test-data backup", execution_timeout=timedelta(hours=2), no_retry_for=[BusinessChecksFailed]
    ),
    params={
        "environment": environment_param("Environment whose databases to back up."),
        "phase": Param(
            "manual",
            type="string",
            enum=["pre_test", "post_test", "manual"],
            description="pre_test (before a CI test run), post_test (after it, for audit) or manual.",
        ),
        "databases": databases_param("Databases to back up; empty: all the environment's databases."),
        "pipeline_id": Param(
            None,
            type=["null", "string"],
            maxLength=200,
            description="CI pipeline id, recorded in the manifest.",
        ),
        "run_business_check": Param(
            None,
            type=["null", "boolean"],
            description="Run the business checks afterwards; empty: yes for pre_test.",
        ),
    },
)
def test_data_backup() -> None:
    plan = PlanBackupOperator(
        task_id="plan_backup",
        environment=param_value("environment"),
        phase=param_value("phase"),
        databases=param_value("databases"),
        run_business_check=param_value("run_business_check"),
    )

    dumps = PgDumpToS3Operator.partial(
        task_id="dump_database",
        max_active_tis_per_dagrun=2,
        max_active_tis_per_dag=4,
        map_index_template="{{ task.database }}",
    ).expand_kwargs(plan.output)

    manifest = WriteBackupManifestOperator(
        task_id="write_manifest",
        environment=param_value("environment"),
        backup_id=plan.output["backup_id"],
        databases=plan.output["databases"],
        ci_pipeline_id=param_value("pipeline_id"),
    )

    retention = BackupRetentionOperator(task_id="apply_retention", environment=param_value("environment"))

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def checks_wanted(wanted: bool) -> bool:
        return wanted

    checks = BusinessCheckOperator(task_id="run_business_checks", environment=param_value("environment"))

    dumps >> manifest >> retention
    manifest >> checks_wanted(plan.output["run_business_checks"]) >> checks


test_data_backup_dag = test_data_backup()

if __name__ == "__main__":
    test_data_backup_dag.test()
