"""
### Test-data restore

Puts an environment's databases back to a backup taken by `test_data_backup`, then checks
the environment works.

The restore is **all-or-nothing** for the environment:

1. `plan_restore` refuses an environment of kind **production** (and an unknown one) before
   anything else, resolves the backup (`latest`, `latest:pre_test`, or a backup id; only
   backups with a manifest exist), reads its manifest and matches each database of the backup
   to the environment's connection, once for the run. It draws the run's random restore id
   (never derived from the run id or dates, which a caller chooses). `environment` has no default: it must be named.
2. `restore_database` (one mapped task per database, given its dump record by the plan): refuses a target that *is* one of
   production's databases (same server `system_identifier`, host, port and name as the
   environment API lists for production, whatever the label), then downloads the dump into an
   unnamed local file, verifying SHA-256 and size (streamed into a serial `pg_restore`, verified
   on the way, when the disk is short), and runs `pg_restore --jobs` into a **copy**
   `<db>__restore_<id>`; checks tables and rows against the manifest and gives the copy the
   database's own properties (ACL, `ALTER DATABASE ... SET`, comment, connection limit). The
   live database is not touched.
3. `swap_databases` (one task, runs once every restore ended, however it ended): only when **every** copy is
   verified are they all swapped in, per server in one transaction; otherwise nothing is
   swapped, the copies are dropped and the task fails naming each database and the reason.
   Sessions in the databases (and in our copies) are ended; a busy database is named.
   A failed restore is told to the admins once, by its own task (naming the database and why);
   the swap step's abort that follows is not told again.
4. `verify_restore` reports what was restored (tables, rows, checksums).
5. `run_business_checks` checks the environment works with the restored data, and records the
   restore in the check history as the environment change this check follows (source
   `test_data_restore`, what was restored), so a breakage the restore caused shows its cause and
   its time to detect. The restore does not publish `environment_changed`: that would start a
   second check of the same data.

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
from baseline_guard.errors import BusinessChecksFailed
from baseline_guard.notifiers.restore import SwapNotifier
from baseline_guard.operators.business_check import BusinessCheckOperator
from baseline_guard.operators.restore import (
    PlanRestoreOperator,
    RestoreFromBackupOperator,
    SwapRestoredDatabasesOperator,
    restore_report,
)

WHAT = "test-data restore"
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
    # a failing business check is the restore's result, not a blip: told at once, as in business_check
    default_args=default_args(
        WHAT, execution_timeout=timedelta(hours=2), no_retry_for=[BusinessChecksFailed]
    ),
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
    plan = PlanRestoreOperator(
        task_id="plan_restore",
        environment="{{ params.environment }}",
        backup="{{ params.backup_id }}",
        databases="{{ params.databases }}",
    )

    restored = RestoreFromBackupOperator.partial(
        task_id="restore_database",
        swap=False,
        max_active_tis_per_dagrun=2,
        map_index_template="{{ task.database }}",
    ).expand_kwargs(plan.output)

    swapped = SwapRestoredDatabasesOperator(
        task_id="swap_databases",
        targets=plan.output["targets"],
        restore_id=plan.output["restore_id"],
        trigger_rule="all_done_min_one_success",  # after every restore_database, unless plan failed
        execution_timeout=timedelta(minutes=10),
        on_failure_callback=SwapNotifier(what=WHAT),
    )

    @task
    def verify_restore(backup_id: str, results: list[dict[str, Any]]) -> dict[str, Any]:
        return restore_report(backup_id, results)

    report = verify_restore(plan.output["backup_id"], restored.output)
    checks = BusinessCheckOperator(
        task_id="run_business_checks",
        environment="{{ params.environment }}",
        environment_change={"source": "test_data_restore", "changes": [report]},
    )
    restored >> swapped >> report >> checks


dag = test_data_restore()

if __name__ == "__main__":
    dag.test()
