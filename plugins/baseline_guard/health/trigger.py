"""Why a check ran, from what the run says about itself: run type, consumed asset events, conf."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from baseline_guard.health.records import EnvironmentChange, Trigger

RECHECK_CONF_KEY = "reason"
CI_RUN_ID_PREFIX = "ci__"  # baseline-guard-trigger's run ids


def trigger_reason(
    run_type: str, run_id: str, conf: Mapping[str, Any] | None, consumed_events: int
) -> Trigger:
    """``re-check`` when the conf says so, ``environment_change`` for a run an asset event started,
    ``hourly`` for a scheduled run, ``ci`` for a run CI triggered (its run id or ``conf.reason``),
    else ``manual`` (a person in the UI)."""
    reason = str((conf or {}).get(RECHECK_CONF_KEY) or "")
    run_type = run_type.lower().rsplit(".", 1)[-1]
    if reason == Trigger.RECHECK:
        return Trigger.RECHECK
    if run_type == "asset_triggered" or consumed_events:
        return Trigger.ENVIRONMENT_CHANGE
    if run_type in ("scheduled", "backfill"):
        return Trigger.HOURLY
    if reason == Trigger.CI or run_id.startswith(CI_RUN_ID_PREFIX):
        return Trigger.CI
    return Trigger.MANUAL


def environment_changes(events: Iterable[Any]) -> list[EnvironmentChange]:
    """The ``environment_changed`` events a run consumed (objects with ``extra``, ``timestamp``,
    ``source_dag_id``), as history records; events naming no environment are skipped."""
    changes = []
    for event in events:
        extra = getattr(event, "extra", None) or {}
        environment = extra.get("environment")
        timestamp = getattr(event, "timestamp", None)
        if not environment or not isinstance(timestamp, datetime):
            continue
        source = str(extra.get("source") or getattr(event, "source_dag_id", None) or "unknown")
        changes.append(
            EnvironmentChange(str(environment), timestamp, source, list(extra.get("changes") or []))
        )
    return changes
