"""The admins hear once per schema-sync run what was applied, held for approval and left unsynced."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from baseline_guard.notifiers.channels import ADMINS_CONN_ID, send

if TYPE_CHECKING:
    from airflow.sdk import Context


def summary_message(summary: Mapping[str, Any]) -> tuple[str, str] | None:
    """(title, body) telling what the run applied, held and could not sync; None when nothing happened."""
    applied, held, not_synced = summary["applied"], summary["held"], summary.get("not_synced", [])
    if not applied and not held and not not_synced:
        return None
    lines = [f"✔ {a['target']}: {len(a['sql'])} statement(s) applied" for a in applied]
    for h in held:
        lines.append(f"⏸ {h['target']}: {len(h['statements'])} destructive statement(s) held for approval")
        lines += [f"    {s['sql']}  -- {s['reason']}" for s in h["statements"]]
    for n in not_synced:
        lines.append(f"✘ {n['target']}: {len(n['objects'])} object(s) not synced with production")
        lines += [f"    {o['object']}: {o['problem']}" for o in n["objects"]]
    title = (
        f"Baseline schema sync: {len(applied)} database(s) changed, "
        f"{len(held)} held, {len(not_synced)} not synced"
    )
    return title, "\n".join(lines)


class SchemaSyncSummaryNotifier(BaseNotifier):
    """Success callback of the task that summarizes the syncs: sends its summary once, when there is news.

    :param apprise_conn_id: Apprise connection to send through
    """

    def __init__(self, *, apprise_conn_id: str = ADMINS_CONN_ID) -> None:
        super().__init__()
        self.apprise_conn_id = apprise_conn_id

    def notify(self, context: Context) -> None:
        ti = context["ti"]
        message = summary_message(ti.xcom_pull(task_ids=ti.task_id))
        if message is None:
            self.log.info("nothing to tell: baseline schemas match production")
            return
        send(*message, conn_id=self.apprise_conn_id)
