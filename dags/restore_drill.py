"""
### Restore drill

Daily proof that the test-data backups can really be restored: "last proven restore" per
environment.

1. `plan_drills`: every environment (never production) with a committed **pre-test** backup
   (only the ones named in `environments`, when given).
2. `drill_environment` (one mapped task per environment): restores the environment's **newest
   pre-test backup** into **scratch databases** on the same servers (`<db>__drill_scratch__restore_<id>`,
   recorded in the restore ledger before they are created; the environment's own databases are only
   identified, never written, and one that *is* production's is refused), verifies SHA-256, size,
   tables and row counts against the manifest, reads a row of the largest table (smoke query),
   drops the scratch databases and records the result in S3 under `drills/<env>/<drill_id>.json`
   (passed or failed, per database). A failed drill fails its task without retries and tells the
   admins once, naming the databases and why.
3. `flag_stale_restore_proofs` (runs whatever the drills did): an environment whose last
   proven restore is older than **25 h** is flagged (`drills/<env>/stale.json`) and its owners (the
   admins for the baseline) are told **once**; a later proven restore clears the flag. The run
   fails when an environment's newest drill failed; that failure sends no second message (the
   drill's own task told it).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import CronTriggerTimetable, Param, dag
from baseline_guard.dag_defaults import START_DATE, default_args
from baseline_guard.environment_contract import NAME_PATTERN
from baseline_guard.operators.drill import (
    FlagStaleRestoreProofsOperator,
    PlanDrillsOperator,
    RestoreDrillOperator,
)


@dag(
    dag_id="restore_drill",
    schedule=CronTriggerTimetable("15 3 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=6),
    render_template_as_native_obj=True,
    doc_md=__doc__,
    tags=["baseline-guard", "test-data", "restore", "drill"],
    default_args=default_args("restore drill", execution_timeout=timedelta(hours=2)),
    params={
        "environments": Param(
            [],
            type="array",
            items={"type": "string", "pattern": NAME_PATTERN},
            maxItems=100,
            description="Environments to drill; empty: every environment with a pre-test backup.",
        )
    },
)
def restore_drill() -> None:
    plan = PlanDrillsOperator(
        task_id="plan_drills",
        environments="{{ params.environments }}",
        execution_timeout=timedelta(minutes=5),
    )
    drills = RestoreDrillOperator.partial(
        task_id="drill_environment",
        max_active_tis_per_dagrun=2,
        map_index_template="{{ task.environment }}",
    ).expand(environment=plan.output)
    flags = FlagStaleRestoreProofsOperator(
        task_id="flag_stale_restore_proofs",
        environments=plan.output,
        trigger_rule="all_done",
        execution_timeout=timedelta(minutes=10),
        on_failure_callback=None,  # fails the run for a failed drill, which its own task told already
    )
    drills >> flags


restore_drill_dag = restore_drill()

if __name__ == "__main__":
    restore_drill_dag.test()
