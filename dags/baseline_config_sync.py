"""
### Baseline test-config sync

Every hour:

1. `apply_test_configs` gives every **baseline** service the *test* configuration prepared
   with the release production runs (found through the release records' test-config
   reference). Production configuration values are never read or copied: they would point
   test traffic at production. A configuration over the size limit (2,000 keys, 256 KiB) is
   refused for its service with a clear error (`report_refused` fails the run, which is the run's
   one message to the admins); the other services are still applied.
2. `find_unmatched_changes` compares each service's production configuration **digest** with
   the one recorded (table `config_decision` of the guard's database `baseline_guard_db`, a row
   per service, compared and updated in one transaction that locks those rows).
   A change that came with a release carrying a test configuration is simply recorded. A change
   with **no** test configuration becomes a question; the on-call channel gets one message listing
   them when the task succeeded (its success callback), so a retry does not tell twice.
3. `decide` (one human-in-the-loop task per change, in *Required actions* of the UI): only the
   on-call group (`BASELINE_GUARD_ONCALL_USERS`) may answer *Test config updated by hand* or
   *Not needed for the baseline*. The answer is recorded at once under that change's service
   with who decided and when (in a transaction on that service's row: an hourly run checking
   meanwhile never overwrites it), and kept until production's configuration changes again.
   Unanswered within `decision_timeout_minutes`, the task fails (no retry), the run shows red,
   the record says `timed_out`, and the next run asks again. A pending question holds nothing:
   later runs apply new test configs meanwhile and do not ask the same question twice.
4. `publish_change` updates the `environment_changed` asset when a test configuration was
   applied (a summary: services, refs, key counts), which triggers `business_check`.

Secret values (by key name and by their look: URLs with passwords, tokens) are registered with
Airflow's masker before anything is logged; logs, XCom and events carry key names and counts only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import CronTriggerTimetable, Param, dag, task
from airflow.sdk.exceptions import AirflowSkipException
from baseline_guard.approvers import oncall_users
from baseline_guard.assets import ENVIRONMENT_CHANGED
from baseline_guard.dag_defaults import START_DATE, default_args
from baseline_guard.notifiers.channels import ONCALL_CONN_ID
from baseline_guard.notifiers.results import ResultNotifier
from baseline_guard.operators.config_sync import (
    DEFAULT_DECISION_TIMEOUT_MIN,
    ConfigChangeDecisionOperator,
    ConfigSyncOperator,
    FindUnmatchedConfigChangesOperator,
    oncall_messages,
    refuse_oversized,
)
from baseline_guard.pools import SYNC_POOL


@dag(
    dag_id="baseline_config_sync",
    schedule=CronTriggerTimetable("20 * * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=4,  # a run waiting for an on-call answer must not hold the next ones
    doc_md=__doc__,
    tags=["baseline-guard", "baseline", "config-sync"],
    default_args=default_args("baseline test-config sync", execution_timeout=timedelta(minutes=10)),
    render_template_as_native_obj=True,
    params={
        "environment": Param(
            "baseline",
            type="string",
            enum=["baseline"],
            description="Environment whose test configuration is synced. Only the baseline: project "
            "environments deploy their own configuration, and production is never written.",
        ),
        "decision_timeout_minutes": Param(
            DEFAULT_DECISION_TIMEOUT_MIN,
            type="integer",
            minimum=1,
            maximum=55,
            description="How long the on-call person has to decide about a production configuration "
            "change that came without a test configuration; then the question times out (the run "
            "fails) and the next hourly run asks again.",
        ),
    },
)
def baseline_config_sync() -> None:
    synced = ConfigSyncOperator(
        task_id="apply_test_configs",
        environment="{{ params.environment }}",
        max_active_tis_per_dag=1,  # overlapping runs never apply at the same time
        pool=SYNC_POOL,  # the syncs share a few slots: the checks that follow always find free ones
    )

    changes = FindUnmatchedConfigChangesOperator(
        task_id="find_unmatched_changes",
        environment="{{ params.environment }}",
        decision_timeout_minutes="{{ params.decision_timeout_minutes }}",
        max_active_tis_per_dag=1,
        pool=SYNC_POOL,
        on_success_callback=ResultNotifier(compose=oncall_messages, apprise_conn_id=ONCALL_CONN_ID),
    )

    ConfigChangeDecisionOperator.partial(
        task_id="decide",
        assigned_users=oncall_users(),
        decision_timeout_minutes="{{ params.decision_timeout_minutes }}",
        map_index_template="{{ task.change['service'] }}",
    ).expand(change=changes.output)

    @task(outlets=[ENVIRONMENT_CHANGED])
    def publish_change(
        synced: dict[str, list[dict]], *, outlet_events: Any = None, params: Any = None
    ) -> list[str]:
        if not synced["applied"]:
            raise AirflowSkipException("no test configuration was applied")
        outlet_events[ENVIRONMENT_CHANGED].extra = {
            "environment": params["environment"],
            "source": "baseline_config_sync",
            "changes": synced["applied"],  # summaries: refs, key counts and names, never values
        }
        return [a["service"] for a in synced["applied"]]

    @task
    def report_refused(synced: dict[str, list[dict]]) -> None:
        refuse_oversized(synced)

    synced >> changes
    publish_change(synced.output)
    report_refused(synced.output)


baseline_config_sync_dag = baseline_config_sync()

if __name__ == "__main__":
    baseline_config_sync_dag.test()
