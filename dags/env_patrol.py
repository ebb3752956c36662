"""
### Environment patrol

Every 5 minutes, finds instances that are **down** in the baseline and in every project
environment (process stopped or failed, or running but failing its health check) and
restarts them. An instance that a restart does not bring back to healthy is reported to the
environment admins (with what was tried), and the run fails so it shows red in the UI.

Instances out of rotation or being deployed are left alone (a rollout or a person is working
on them). Production is never touched.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag
from airflow.timetables.trigger import CronTriggerTimetable
from baseline_guard.dag_defaults import START_DATE, default_args
from baseline_guard.operators.patrol import EnvironmentPatrolOperator


@dag(
    dag_id="env_patrol",
    schedule=CronTriggerTimetable("*/5 * * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["baseline-guard", "baseline", "patrol"],
    default_args={**default_args(execution_timeout=timedelta(minutes=4)), "retries": 1},
)
def env_patrol() -> None:
    EnvironmentPatrolOperator(task_id="restart_down_instances")


dag = env_patrol()

if __name__ == "__main__":
    dag.test()
