"""
### Airflow metadata clean-up

Every day, deletes from Airflow's own metadata database what is older than `keep_days` (30 by
default): DAG runs, task instances and their history, XComs, logs, jobs, triggers, asset events,
callbacks, deadlines (`airflow db clean`, no archive tables; the latest run of each DAG is always
kept). At the case study's size the hourly DAGs and the 5-minute patrol create thousands of task
instances a day; without this the metadata database grows without bound.

The cut-off is computed by the task from its own clock, never from the run's dates. The check
history, decisions and incidents (`baseline_guard_db`) are not touched: they are the product's data.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import CronTriggerTimetable, Param, dag
from baseline_guard.dag_defaults import START_DATE, default_args
from baseline_guard.operators.maintenance import MIN_KEEP_DAYS, MetadataCleanupOperator


@dag(
    dag_id="airflow_db_clean",
    schedule=CronTriggerTimetable("45 4 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["baseline-guard", "maintenance"],
    default_args=default_args("Airflow metadata clean-up", execution_timeout=timedelta(hours=1)),
    render_template_as_native_obj=True,
    params={
        "keep_days": Param(
            30,
            type="integer",
            minimum=MIN_KEEP_DAYS,
            maximum=400,
            description="Days of Airflow history (runs, task instances, XComs, logs) to keep.",
        )
    },
)
def airflow_db_clean() -> None:
    MetadataCleanupOperator(task_id="clean_metadata", keep_days="{{ params.keep_days }}")


airflow_db_clean_dag = airflow_db_clean()

if __name__ == "__main__":
    airflow_db_clean_dag.test()
