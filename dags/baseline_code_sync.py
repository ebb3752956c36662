"""
### Baseline code sync

Every hour, brings every **baseline** service to the version **production** runs, as of the
run (the latest production release record of each service up to the run's time).

1. `plan_rollouts` compares production's released versions with the baseline's instances.
   A run that finds nothing to do does nothing; a missed hour is healed by the next run.
2. `rollout` (one mapped task per differing service, at most 2 at once) rolls the version
   out **one instance at a time**: out of rotation → drain → deploy → healthy → smoke check →
   back into rotation. While an instance deploys and starts, the task is **deferred** (the
   triggerer waits, no worker slot is held). A failed instance is rolled back and put back into
   rotation before the task fails; the other instance keeps serving throughout.
3. `reconcile` reads what the baseline runs now; `publish_change` updates the
   `environment_changed` asset when anything changed, which triggers `business_check`.
4. `notify_summary` tells the environment admins **once** what changed; when a service failed it
   fails with the summary (what failed, what was rolled back), which is the run's one message
   (a failed rollout task does not send a message of its own).

Never writes to production. Trigger by hand to sync now; `health_timeout_s` bounds how long a
new instance may take to become healthy before it is rolled back.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import CronTriggerTimetable, Param, dag, task
from airflow.sdk.exceptions import AirflowSkipException
from baseline_guard.assets import ENVIRONMENT_CHANGED
from baseline_guard.dag_defaults import START_DATE, default_args
from baseline_guard.notifiers.results import ResultNotifier
from baseline_guard.operators.code_sync import (
    CodeSyncSummaryOperator,
    PlanRolloutsOperator,
    ReconcileRolloutsOperator,
)
from baseline_guard.operators.rollout import DualInstanceRolloutOperator
from baseline_guard.pools import SYNC_POOL

ENVIRONMENT = "baseline"


@dag(
    dag_id="baseline_code_sync",
    schedule=CronTriggerTimetable("0 * * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["baseline-guard", "baseline", "code-sync"],
    default_args=default_args("baseline code sync", execution_timeout=timedelta(minutes=20)),
    render_template_as_native_obj=True,
    params={
        "health_timeout_s": Param(
            120,
            type="integer",
            minimum=5,
            maximum=1800,
            description="Seconds a new instance may take to become healthy before rollback.",
        ),
    },
)
def baseline_code_sync() -> None:
    plan = PlanRolloutsOperator(task_id="plan_rollouts", environment=ENVIRONMENT)

    rollouts = DualInstanceRolloutOperator.partial(
        task_id="rollout",
        environment=ENVIRONMENT,
        max_active_tis_per_dagrun=2,
        pool=SYNC_POOL,  # the syncs share a few slots: the checks that follow always find free ones
        health_timeout_s="{{ params.health_timeout_s }}",
        map_index_template="{{ task.service }} → {{ task.version }}",
        on_failure_callback=None,  # notify_summary tells about a failed rollout, once
    ).expand_kwargs(plan.output)

    outcome = ReconcileRolloutsOperator(
        task_id="reconcile", plan=plan.output, environment=ENVIRONMENT, trigger_rule="all_done"
    )

    @task(outlets=[ENVIRONMENT_CHANGED])
    def publish_change(outcome: dict[str, list[dict]], *, outlet_events: Any = None) -> list[str]:
        services = [c["service"] for c in outcome["changed"]]
        if not services:
            raise AirflowSkipException("nothing changed in the baseline")
        outlet_events[ENVIRONMENT_CHANGED].extra = {
            "environment": ENVIRONMENT,
            "source": "baseline_code_sync",
            "changes": outcome["changed"],
        }
        return services

    summary = CodeSyncSummaryOperator(
        task_id="notify_summary",
        outcome=outcome.output,
        trigger_rule="all_done",
        on_success_callback=ResultNotifier(),
    )

    rollouts >> outcome
    publish_change(outcome.output)
    outcome >> summary


baseline_code_sync_dag = baseline_code_sync()

if __name__ == "__main__":
    baseline_code_sync_dag.test()
