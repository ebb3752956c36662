"""
### Re-check failing environments

While an environment is failing, it is re-checked **every minute**, so an outage's length (and the
availability measured from the check history) is known to about a minute rather than an hour.

Bounded: only environments whose outage (an open whole-environment incident in the check history)
began at most an hour ago are re-checked, at most four at once; an older outage is followed by the
hourly checks. Each re-check runs every scenario, is recorded in the history with trigger `re-check`,
and tells the environment's owners (the admins for the baseline) when it **passes again**, once; a
re-check that finds the same breakage says nothing (the outcome kept in the bucket is shared with
`business_check` and `project_environment_checks`).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import CronTriggerTimetable, dag
from baseline_guard.dag_defaults import START_DATE, default_args
from baseline_guard.errors import BusinessChecksFailed
from baseline_guard.operators.business_check import BusinessCheckOperator, FailingEnvironmentsOperator


@dag(
    dag_id="recheck_failing_environments",
    schedule=CronTriggerTimetable("* * * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=10),
    doc_md=__doc__,
    tags=["baseline-guard", "business-check", "health"],
    default_args={
        **default_args(
            "re-checks of failing environments",
            execution_timeout=timedelta(minutes=5),
            no_retry_for=[BusinessChecksFailed],
        ),
        # one quick retry for a blip of the API or the history; a failing check is not retried
        # (BusinessChecksFailed) and the next minute re-checks anyway
        "retries": 1,
        "retry_delay": timedelta(seconds=5),
        "retry_exponential_backoff": 0,
    },
)
def recheck_failing_environments() -> None:
    failing = FailingEnvironmentsOperator(task_id="list_failing_environments", within=timedelta(hours=1))
    BusinessCheckOperator.partial(
        task_id="recheck_environment",
        history_trigger="re-check",
        report_prefix="reports/{{ dag.dag_id }}/{{ run_id }}/{{ ti.map_index }}",
        max_active_tis_per_dagrun=4,
        map_index_template="{{ task.environment }}",
    ).expand_kwargs(failing.output)


recheck_failing_environments_dag = recheck_failing_environments()

if __name__ == "__main__":
    recheck_failing_environments_dag.test()
