"""
### Baseline test-config sync

Every hour:

1. `apply_test_configs` gives every **baseline** service the *test* configuration prepared
   with the release production runs (found through the release record's test-config
   reference). Production configuration values are never read or copied: they would point
   test traffic at production.
2. `find_unmatched_changes` compares each service's production configuration **digest** with
   the one recorded at the last sync. A change that came with a release carrying a test
   configuration is simply recorded. A change with **no** test configuration is sent to the
   on-call person and becomes a human task.
3. `decide` (one human-in-the-loop task per change, in *Required actions* of the UI): the
   on-call person chooses *Test config updated by hand* or *Not needed for the baseline*.
   Unanswered within 50 minutes, the task fails and the change is asked again next hour.
4. `record_decisions` records the decisions and the digests (Airflow Variable
   `baseline_guard_config_digests`); `publish_change` updates the `environment_changed`
   asset when a test configuration was applied, which triggers `business_check`.

Secret values (keys like password, token, key) are masked in logs, XCom and notifications.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Variable, dag, task
from airflow.sdk.exceptions import AirflowSkipException
from airflow.timetables.trigger import CronTriggerTimetable
from baseline_guard.assets import ENVIRONMENT_CHANGED
from baseline_guard.config_sync import DECISIONS
from baseline_guard.dag_defaults import START_DATE, default_args
from baseline_guard.notifiers.admins import dag_failure_notifier
from baseline_guard.operators.config_sync import ConfigSyncOperator

ENVIRONMENT = "baseline"
DIGESTS_VARIABLE = "baseline_guard_config_digests"


@dag(
    dag_id="baseline_config_sync",
    schedule=CronTriggerTimetable("20 * * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["baseline-guard", "baseline", "config-sync"],
    default_args=default_args(execution_timeout=timedelta(minutes=10)),
    on_failure_callback=dag_failure_notifier("baseline test-config sync"),
)
def baseline_config_sync() -> None:
    synced = ConfigSyncOperator(
        task_id="apply_test_configs",
        environment=ENVIRONMENT,
        as_of="{{ dag_run.run_after.isoformat() }}",  # data_interval_end is undefined on REST runs
    )

    @task
    def find_unmatched_changes(**context: Any) -> list[dict[str, str]]:
        from baseline_guard.config_sync import unmatched_config_changes
        from baseline_guard.hooks.environment import EnvironmentHook
        from baseline_guard.notifiers.admins import ONCALL_CONN_ID, notify

        hook = EnvironmentHook()
        services = [s.name for s in hook.list_services(ENVIRONMENT)]
        recorded = json.loads(Variable.get(DIGESTS_VARIABLE, default="{}"))
        digests = [hook.get_config_digest(s) for s in services]
        needs_person, records = unmatched_config_changes(digests, recorded, hook.list_releases())
        Variable.set(DIGESTS_VARIABLE, json.dumps({**recorded, **records}, indent=1, sort_keys=True))
        if needs_person:
            notify(
                f"Baseline Guard: production config changed without a test config ({len(needs_person)})",
                "\n".join(f"• {c['service']} changed at {c['changed_at']}" for c in needs_person)
                + "\nDecide in Airflow: DAG baseline_config_sync, task 'decide' (Required actions).",
                conn_id=ONCALL_CONN_ID,
            )
        return needs_person

    changes = find_unmatched_changes()

    decisions = HITLOperator.partial(
        task_id="decide",
        options=DECISIONS,
        response_timeout=timedelta(minutes=50),
        execution_timeout=timedelta(minutes=55),  # longer than the response timeout
        map_index_template="{{ task.subject }}",
    ).expand_kwargs(
        changes.map(
            lambda c: {
                "subject": f"{c['service']}: production configuration changed without a test configuration",
                "body": (
                    f"Production configuration of **{c['service']}** changed at {c['changed_at']} "
                    f"(digest `{c['digest'][:12]}…`) and no test configuration came with it.\n\n"
                    "Values are not shown: production values must never reach the baseline. "
                    "Update the baseline's test configuration by hand if the change matters for tests."
                ),
            }
        )
    )

    @task(trigger_rule="all_done")
    def record_decisions(changes: list[dict[str, str]], decisions: list[dict[str, Any]] | None) -> list[dict]:
        decided = []
        recorded = json.loads(Variable.get(DIGESTS_VARIABLE, default="{}"))
        for change, decision in zip(changes, decisions or [], strict=False):
            if not decision or not decision.get("chosen_options"):
                continue
            chosen = decision["chosen_options"][0]
            recorded[change["service"]] = {
                "digest": change["digest"],
                "seen_at": change["changed_at"],
                "decision": chosen,
                "decided_by": str(decision.get("responded_by_user") or ""),
            }
            decided.append({**change, "decision": chosen})
        Variable.set(DIGESTS_VARIABLE, json.dumps(recorded, indent=1, sort_keys=True))
        print(f"decisions recorded: {decided}")
        return decided

    @task(outlets=[ENVIRONMENT_CHANGED])
    def publish_change(synced: dict[str, list[dict]], *, outlet_events: Any = None) -> list[str]:
        if not synced["applied"]:
            raise AirflowSkipException("no test configuration was applied")
        outlet_events[ENVIRONMENT_CHANGED].extra = {
            "environment": ENVIRONMENT,
            "source": "baseline_config_sync",
            "changes": synced["applied"],
        }
        return [a["service"] for a in synced["applied"]]

    synced >> changes
    record_decisions(changes, decisions.output)
    publish_change(synced.output)


dag = baseline_config_sync()

if __name__ == "__main__":
    dag.test()
