"""
### Baseline code sync

Every hour, brings every **baseline** service to the version **production** runs, as of the
run's data interval end (the latest production release record of each service).

1. `plan_rollouts` compares production's released versions with the baseline's instances.
   A run that finds nothing to do does nothing; a missed hour is healed by the next run.
2. `rollout` (one mapped task per differing service, at most 2 at once) rolls the version
   out **one instance at a time**: out of rotation → drain → deploy → healthy → smoke check →
   back into rotation. A failed instance is rolled back and put back into rotation before
   the task fails; the other instance keeps serving throughout.
3. `reconcile` reads what the baseline runs now; `publish_change` updates the
   `environment_changed` asset when anything changed, which triggers `business_check`.
4. `notify_summary` sends one message to the environment admins (what changed, what failed
   and was rolled back) and fails the run if any service failed.

Never writes to production. Trigger by hand to sync now; `health_timeout_s` bounds how long a
new instance may take to become healthy before it is rolled back.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowSkipException
from airflow.timetables.trigger import CronTriggerTimetable
from baseline_guard.assets import ENVIRONMENT_CHANGED
from baseline_guard.dag_defaults import START_DATE, default_args
from baseline_guard.operators.rollout import DualInstanceRolloutOperator, RolloutFailed

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
    @task
    def plan_rollouts(**context: Any) -> list[dict[str, str]]:
        from baseline_guard.code_sync import plan_rollouts, production_versions
        from baseline_guard.hooks.environment import EnvironmentHook

        as_of = context.get("data_interval_end") or context["dag_run"].run_after
        hook = EnvironmentHook()
        desired = production_versions(hook.list_releases(until=as_of), as_of)
        plan = plan_rollouts(desired, hook.list_services(ENVIRONMENT))
        print(f"production as of {as_of}: {desired}; rollouts planned: {plan or 'none'}")
        return plan

    plan = plan_rollouts()

    rollouts = DualInstanceRolloutOperator.partial(
        task_id="rollout",
        environment=ENVIRONMENT,
        max_active_tis_per_dagrun=2,
        health_timeout_s="{{ params.health_timeout_s }}",
        map_index_template="{{ task.service }} → {{ task.version }}",
    ).expand_kwargs(plan)

    @task(trigger_rule="all_done")
    def reconcile(plan: list[dict[str, str]]) -> dict[str, list[dict]]:
        from baseline_guard.code_sync import reconcile
        from baseline_guard.hooks.environment import EnvironmentHook

        changed, failed = reconcile(plan, EnvironmentHook().list_services(ENVIRONMENT))
        return {"changed": changed, "failed": failed}

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

    @task(trigger_rule="all_done")
    def notify_summary(outcome: dict[str, list[dict]]) -> None:
        from baseline_guard.notifiers.channels import send

        changed, failed = outcome["changed"], outcome["failed"]
        if not changed and not failed:
            print("nothing to do: the baseline runs what production runs")
            return
        lines = [f"✔ {c['service']} → {c['version']}" for c in changed]
        lines += [
            f"✘ {f['service']} → {f['version']} failed; rolled back, running {f['running']}" for f in failed
        ]
        send(
            f"Baseline code sync: {len(changed)} changed, {len(failed)} failed",
            "\n".join(lines),
            failure=bool(failed),
        )
        if failed:
            raise RolloutFailed(f"rollout failed for {', '.join(f['service'] for f in failed)} (rolled back)")

    outcome = reconcile(plan)
    rollouts >> outcome
    publish_change(outcome)
    notify_summary(outcome)


dag = baseline_code_sync()

if __name__ == "__main__":
    dag.test()
