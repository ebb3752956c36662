"""
### Project environment checks

Every hour, the business scenario suites run against **every project environment** the
environment API lists, each through its own routing key (one mapped task per environment, named
after it). The baseline keeps its own hourly run in `business_check`, which CI also triggers.

A failure is sent to **that environment's owners** (the Apprise URL the environment API lists
as `owners_notify_url`; the admins when it lists none), **once**: each environment's last outcome
is kept in the bucket (`checks/state/<env>/all.json`), so an hourly run that finds the same
breakage stays silent; a different breakage or a recovery is told again. Reports (HTML, JUnit,
JSON) are stored per environment under the run and linked from each task.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import CronTriggerTimetable, dag
from baseline_guard.dag_defaults import START_DATE, default_args
from baseline_guard.errors import BusinessChecksFailed
from baseline_guard.operators.business_check import BusinessCheckOperator, ProjectEnvironmentsOperator


@dag(
    dag_id="project_environment_checks",
    schedule=CronTriggerTimetable("40 * * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=55),
    doc_md=__doc__,
    tags=["baseline-guard", "business-check", "project"],
    default_args=default_args(
        "project environment checks",
        execution_timeout=timedelta(minutes=10),
        no_retry_for=[BusinessChecksFailed],
    ),
)
def project_environment_checks() -> None:
    environments = ProjectEnvironmentsOperator(
        task_id="list_project_environments", execution_timeout=timedelta(minutes=2)
    )
    BusinessCheckOperator.partial(
        task_id="check_environment",
        report_prefix="reports/{{ dag.dag_id }}/{{ run_id }}/{{ ti.task_id }}/{{ ti.map_index }}",
        max_active_tis_per_dagrun=4,
        map_index_template="{{ task.environment }}",
    ).expand_kwargs(environments.output)


project_environment_checks_dag = project_environment_checks()

if __name__ == "__main__":
    project_environment_checks_dag.test()
