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
4. `held_for_approval` lists the held statements per database, leaving out a plan an admin
   already declined unchanged (same digest); when there are any, `approve_destructive` asks an
   admin (in *Required actions* of the UI) with, per database, a **summary by kind** first
   (tables and columns dropped, types changed, constraints dropped... with the objects named and
   why each is held) and then the exact SQL, or a link to it in the backup store when it is long
   (`describe_held`). The admin ticks the databases to apply (several allowed); `approved_plans`
   records the ones not chosen as declined (asked again only when their plan changes) and
   `apply_approved` applies exactly the approved SQL per chosen database: refused when it is not
   the plan whose digest was shown, or when the plan changed meanwhile. *Apply to none*, or no
   answer within 50 minutes, applies nothing.
5. `publish_change` updates the `environment_changed` asset when anything was applied (which
   triggers `business_check`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import CronTriggerTimetable, dag, task
from airflow.sdk.exceptions import AirflowSkipException
from baseline_guard.approvers import admin_users
from baseline_guard.assets import ENVIRONMENT_CHANGED
from baseline_guard.dag_defaults import START_DATE, default_args
from baseline_guard.notifiers.schema_sync import SchemaSyncSummaryNotifier
from baseline_guard.operators.schema_sync import (
    PairDatabasesOperator,
    SchemaApprovalOperator,
    SchemaSyncOperator,
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
        """The held plans to put to a person (not those declined unchanged); an empty list skips the approval."""
        from baseline_guard.operators.schema_approval import undecided_plans  # boto3: not at parse time

        return undecided_plans(held_plans(summary), TARGET)

    held = held_for_approval(summary)

    @task
    def describe_held(held: list[dict[str, Any]]) -> str:
        from baseline_guard.operators.schema_approval import describe_plans

        return describe_plans(held, TARGET)

    approve_destructive = SchemaApprovalOperator(
        task_id="approve_destructive",
        subject="Baseline schema sync: apply destructive changes to which databases?",
        body=describe_held(held),
        plans=held,
        assigned_users=admin_users(),
        response_timeout=timedelta(minutes=50),
        execution_timeout=timedelta(minutes=55),
    )

    @task
    def approved_plans(held: list[dict[str, Any]], answer: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The chosen databases' plans (to apply); the others are recorded as declined when a person answered."""
        from baseline_guard.operators.schema_approval import record_answer

        return record_answer(held, answer, TARGET)

    applied_after_approval = SchemaSyncOperator.partial(
        task_id="apply_approved",
        target_environment=TARGET,
        apply_destructive=True,
        map_index_template="{{ task.target_conn_id }}",
    ).expand_kwargs(approved_plans(held, approve_destructive.output))

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
