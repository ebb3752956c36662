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
3. `held_for_approval` lists the held statements; when there are any, `approve_destructive`
   asks an admin (in *Required actions* of the UI) with the exact SQL. Approve applies exactly
   that SQL (`apply_approved`; refused if the plan changed meanwhile); Reject, or no answer
   within 50 minutes, applies nothing.
4. `publish_change` updates the `environment_changed` asset when anything was applied (which
   triggers `business_check`); `notify_summary` tells the admins what was applied and held.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException
from airflow.timetables.trigger import CronTriggerTimetable
from baseline_guard.approvers import admin_users
from baseline_guard.assets import ENVIRONMENT_CHANGED
from baseline_guard.dag_defaults import START_DATE, default_args
from baseline_guard.operators.schema_sync import SchemaSyncOperator

SOURCE, TARGET = "production", "baseline"

APPROVAL_BODY = """\
The baseline schema sync held **destructive** changes: they can lose data in the baseline.
Approve to apply exactly this SQL; Reject (or no answer) applies nothing.
{% for pair in ti.xcom_pull(task_ids='held_for_approval') %}

#### {{ pair.target_conn_id }} (from {{ pair.source_conn_id }})
```sql
{{ pair.expected_destructive | join('\n') }}
```
{% endfor %}
"""


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
    @task
    def pair_databases() -> list[dict[str, str]]:
        from baseline_guard.hooks.environment import EnvironmentHook

        hook = EnvironmentHook()
        sources = {d.service: d for d in hook.list_databases(SOURCE)}
        pairs = [
            {"source_conn_id": sources[d.service].conn_id, "target_conn_id": d.conn_id}
            for d in sorted(hook.list_databases(TARGET), key=lambda d: d.service)
            if d.service in sources
        ]
        print(f"database pairs: {pairs}")
        return pairs

    synced = SchemaSyncOperator.partial(
        task_id="sync_schema",
        target_environment=TARGET,
        map_index_template="{{ task.target_conn_id }}",
    ).expand_kwargs(pair_databases())

    @task(trigger_rule="all_done")
    def summarize(results: list[dict[str, Any]] | None) -> dict[str, list[dict[str, Any]]]:
        results = [r for r in (results or []) if r]
        return {
            "applied": [
                {"target": r["target_conn_id"], "sql": r["applied"]} for r in results if r["applied"]
            ],
            "held": [
                {"source": r["source_conn_id"], "target": r["target_conn_id"], "statements": r["held"]}
                for r in results
                if r["held"]
            ],
            "not_synced": [
                {"target": r["target_conn_id"], "objects": r.get("not_synced", [])}
                for r in results
                if r.get("not_synced")
            ],
        }

    summary = summarize(synced.output)

    @task.short_circuit
    def held_for_approval(summary: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """The held plans to put to a person; an empty list skips the approval."""
        return [
            {"source_conn_id": h["source"], "target_conn_id": h["target"],
             "expected_destructive": [s["sql"] for s in h["statements"]]}
            for h in summary["held"]
        ]  # fmt: skip

    held = held_for_approval(summary)
    approval = ApprovalOperator(
        task_id="approve_destructive",
        subject="Baseline schema sync: apply destructive changes?",
        body=APPROVAL_BODY,
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
    held >> approval >> applied_after_approval

    @task(outlets=[ENVIRONMENT_CHANGED], trigger_rule="none_failed")
    def publish_change(
        summary: dict[str, list[dict[str, Any]]],
        approved: list[dict[str, Any]] | None,
        *,
        outlet_events: Any = None,
    ) -> list[str]:
        changed = [a["target"] for a in summary["applied"]] + [
            r["target_conn_id"] for r in approved or [] if r
        ]
        if not changed:
            raise AirflowSkipException("no schema change was applied")
        outlet_events[ENVIRONMENT_CHANGED].extra = {
            "environment": TARGET, "source": "baseline_schema_sync", "changes": sorted(set(changed)),
        }  # fmt: skip
        return sorted(set(changed))

    publish_change(summary, applied_after_approval.output)

    @task(trigger_rule="all_done")
    def notify_summary(summary: dict[str, list[dict[str, Any]]]) -> None:
        from baseline_guard.notifiers.channels import send

        not_synced = summary.get("not_synced", [])
        if not summary["applied"] and not summary["held"] and not not_synced:
            print("nothing to do: baseline schemas match production")
            return
        lines = [f"✔ {a['target']}: {len(a['sql'])} statement(s) applied" for a in summary["applied"]]
        for h in summary["held"]:
            lines.append(
                f"⏸ {h['target']}: {len(h['statements'])} destructive statement(s) held for approval"
            )
            lines += [f"    {s['sql']}  -- {s['reason']}" for s in h["statements"]]
        for n in not_synced:
            lines.append(f"✘ {n['target']}: {len(n['objects'])} object(s) not synced with production")
            lines += [f"    {o['object']}: {o['problem']}" for o in n["objects"]]
        title = (
            f"Baseline schema sync: {len(summary['applied'])} database(s) changed, "
            f"{len(summary['held'])} held, {len(not_synced)} not synced"
        )
        send(title, "\n".join(lines))

    notify_summary(summary)


dag = baseline_schema_sync()

if __name__ == "__main__":
    dag.test()
