"""
### Environment patrol

Every 5 minutes, finds instances that are **down** in the baseline and in every project
environment (process stopped or failed, or running but failing its health check) and
restarts them, **in parallel** within an environment (at most 16 at a time), within a **time
budget** of 100 s per try (the task's timeout is 2 minutes, one retry, the run's timeout 4.5 minutes,
the slot 5). While the restarted instances start, the task is **deferred** once for all of them
(the triggerer waits, no worker slot is held).

The admins hear **once per incident**: "down" when a restart does not heal an instance,
"still down" at most hourly while it stays down, "recovered" when a later run finds it healthy.
These are sent by the task's success callback from what it returned, so a failed or retried try
sends none of them.
The open incidents are rows of the guard's database (`baseline_guard_db`, table `patrol_incident`),
advanced once per run in one transaction that locks them, so overlapping runs never tell twice. An instance healed by its restart is no incident. An environment deleted
meanwhile is skipped, not reported as down. A run that fails (the environment API unreachable, the
timeout) tells the admins.

Instances out of rotation or being deployed are left alone (a rollout or a person is working
on them). Production is never touched.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import CronTriggerTimetable, dag
from baseline_guard.dag_defaults import START_DATE, default_args
from baseline_guard.notifiers.results import ResultNotifier
from baseline_guard.operators.patrol import EnvironmentPatrolOperator


@dag(
    dag_id="env_patrol",
    schedule=CronTriggerTimetable("*/5 * * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=4, seconds=30),  # the next slot always gets its run
    doc_md=__doc__,
    tags=["baseline-guard", "baseline", "patrol"],
    default_args={
        **default_args("environment patrol", execution_timeout=timedelta(minutes=2)),
        "retries": 1,  # worst case 2 min + 10 s + 2 min: inside the run's timeout and the 5-minute slot
        "retry_delay": timedelta(seconds=10),
        "retry_exponential_backoff": 0,
    },
)
def env_patrol() -> None:
    EnvironmentPatrolOperator(
        task_id="restart_down_instances",
        max_parallel_restarts=16,
        time_budget_s=100,
        restart_timeout_s=90,
        on_success_callback=ResultNotifier(),  # the incident messages the patrol returned, once
    )


env_patrol_dag = env_patrol()

if __name__ == "__main__":
    env_patrol_dag.test()
