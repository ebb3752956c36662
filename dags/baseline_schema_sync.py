"""
### Baseline schema sync

Every hour, brings each **baseline** database's *schema* to its **production** database's
schema: structure only, never data.

1. `pair_databases` asks the environment API for the databases of production and of the
   baseline and pairs them by service.
2. `sync_schema` (one mapped task per database pair): diffs production against the baseline
   (migradiff), classifies every statement by parsing it (pglast), and applies the **safe**
   ones to the baseline in one transaction (with lock and statement timeouts; a statement
   PostgreSQL refuses is held with its error, with what depends on it, and the rest applies).
   **Destructive** statements (drops, rewriting type changes, NOT NULL on filled tables...)
   are held. Production is only ever read, through a read-only session. Afterwards both
   schemas are dumped (`pg_dump --schema-only`) and compared per object, independently of the
   diff library: every difference left is reported as **not synced**.
3. `summarize` gathers what every sync applied, held and could not sync, and tells the admins
   once when there is anything to tell (its success callback).
4. `held_for_approval` lists the held statements; when there are any, `approve_destructive`
   asks an admin (in *Required actions* of the UI) with the exact SQL (`describe_held`). Approve applies exactly
   that SQL (`apply_approved`; refused if the plan changed meanwhile); Reject, or no answer
   within 50 minutes, applies nothing.
5. `publish_change` updates the `environment_changed` asset when anything was applied (which
   triggers `business_check`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import CronTriggerTimetable, dag, task
from airflow.sdk.exceptions import AirflowSkipException
from baseline_guard.approvers import admin_users
from baseline_guard.assets import ENVIRONMENT_CHANGED
from baseline_guard.dag_defaults import START_DATE, default_args
from baseline_guard.notifiers.schema_sync import SchemaSyncSummaryNotifier
from baseline_guard.operators.schema_sync import (
    PairDatabasesOperator,
    SchemaSyncOperator,
    approval_body,
    changed_targets,
    held_plans,
    summarize_schema_sync,
)

SOURCE, TARGET = "production", "baseline"


@dag(
    dag_id="baseline_schema_sync",
    schedule=CronTriggerTimetable("10 * * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["baseline-guard", "baseline", "schema-sync"],
    default_args=default_args("baseline schema sync", execution_timeout=timedelta(minutes=15)),
)
def baseline_schema_sync() -> None:
    pairs = PairDatabasesOperator(
        task_id="pair_databases", source_environment=SOURCE, target_environment=TARGET
    )

    synced = SchemaSyncOperator.partial(
        task_id="sync_schema",
        target_environment=TARGET,
        map_index_template="{{ task.target_conn_id }}",
    ).expand_kwargs(pairs.output)

    @task(trigger_rule="all_done", on_success_callback=SchemaSyncSummaryNotifier())
    def summarize(results: list[dict[str, Any]] | None) -> dict[str, list[dict[str, Any]]]:
        return summarize_schema_sync(results)

    summary = summarize(synced.output)

    @task.short_circuit(ignore_downstream_trigger_rules=False)  # publish_change still follows its own rule
    def held_for_approval(summary: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """The held plans to put to a person; an empty list skips the approval."""
        return held_plans(summary)

    held = held_for_approval(summary)

    @task
    def describe_held(held: list[dict[str, Any]]) -> str:
        return approval_body(held)

    approve_destructive = ApprovalOperator(
        task_id="approve_destructive",
        subject="Baseline schema sync: apply destructive changes?",
        body=describe_held(held),
        defaults="Reject",
        assigned_users=admin_users(),
        response_timeout=timedelta(minutes=50),
        execution_timeout=timedelta(minutes=55),
    )
    applied_after_approval = SchemaSyncOperator.partial(
        task_id="apply_approved",
        target_environment=TARGET,
        apply_destructive=True,
        map_index_template="{{ task.target_conn_id }}",
    ).expand_kwargs(held)
    approve_destructive >> applied_after_approval

    @task(outlets=[ENVIRONMENT_CHANGED], trigger_rule="none_failed")
    def publish_change(
        summary: dict[str, list[dict[str, Any]]],
        approved: list[dict[str, Any]] | None,
        *,
        outlet_events: Any = None,
    ) -> list[str]:
        changes = changed_targets(summary, approved)
        if not changes:
            raise AirflowSkipException("no schema change was applied")
        outlet_events[ENVIRONMENT_CHANGED].extra = {
            "environment": TARGET,
            "source": "baseline_schema_sync",
            "changes": changes,
        }
        return changes

    publish_change(summary, applied_after_approval.output)


baseline_schema_sync_dag = baseline_schema_sync()

if __name__ == "__main__":
    baseline_schema_sync_dag.test()
