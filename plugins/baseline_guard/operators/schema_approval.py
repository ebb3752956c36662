"""The schema sync's approval, per database, kept in the backup store.

Each held plan has a folder ``schema-approvals/<environment>/<target conn id>/<digest>/`` with
``plan.sql`` (the exact SQL, linked from the approval when too long to show) and, once an admin
answered without choosing that database, ``declined.json``: the same plan (same digest) is not
asked again; a changed plan has another digest, so it is. Objects are written once, never replaced.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from baseline_guard.hooks.backup_store import BackupStoreHook
from baseline_guard.operators.schema_sync import (
    LINK_EXPIRES_S,
    SQL_SHOWN_MAX,
    approval_body,
    approved_plans,
    plan_key,
    plan_sql,
)


def undecided_plans(
    plans: Sequence[Mapping[str, Any]], environment: str, store: BackupStoreHook | None = None
) -> list[dict[str, Any]]:
    """The plans no admin has declined yet (a declined plan that changed has a new digest: it is asked)."""
    store = store or BackupStoreHook()
    return [dict(p) for p in plans if not store.exists(plan_key(environment, p, "declined.json"))]


def describe_plans(
    plans: Sequence[Mapping[str, Any]], environment: str, store: BackupStoreHook | None = None
) -> str:
    """Store each plan's SQL (written once per digest) and return the approval body, long SQL linked."""
    store = store or BackupStoreHook()
    links = {}
    for plan in plans:
        key = plan_key(environment, plan, "plan.sql")
        store.put_new(key, plan_sql(plan), "application/sql; charset=utf-8")
        if sum(len(s["sql"]) + 1 for s in plan["statements"]) > SQL_SHOWN_MAX:
            links[plan["target_conn_id"]] = store.link(key, LINK_EXPIRES_S)
    return approval_body(plans, links)


def record_answer(
    plans: Sequence[Mapping[str, Any]],
    answer: Mapping[str, Any] | None,
    environment: str,
    store: BackupStoreHook | None = None,
) -> list[dict[str, Any]]:
    """Approved plans as keyword arguments of the apply; the others recorded as declined if a person answered.

    No answer (the timeout's default) records nothing: the same plans are asked again next hour.
    """
    approved, declined = approved_plans(plans, answer)
    responder = (answer or {}).get("responded_by_user")
    if responder and declined:
        store = store or BackupStoreHook()
        at = datetime.now(UTC).isoformat()
        for plan in declined:
            record = {"declined_by": responder, "at": at, "plan_digest": plan["plan_digest"]}
            store.put_new(
                plan_key(environment, plan, "declined.json"), json.dumps(record), "application/json"
            )
    return approved
