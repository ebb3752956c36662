"""Why a check ran, from what the run says about itself: run type, consumed asset events, conf; and the
contract of the ``environment_changed`` event that announces an environment change."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from baseline_guard.environment_contract import NAME_PATTERN
from baseline_guard.errors import InvalidInput
from baseline_guard.health.records import EnvironmentChange, Trigger
from baseline_guard.strict_conf import excerpt

RECHECK_CONF_KEY = "reason"
CI_RUN_ID_PREFIX = "ci__"  # baseline-guard-trigger's run ids

# The ``extra`` of an ``environment_changed`` event (docs/health.md, "Environment changes")
CHANGE_EVENT_KEYS = frozenset({"environment", "source", "changes"})
AIRFLOW_EVENT_KEYS = frozenset({"from_rest_api"})  # added by Airflow to an event posted over REST
MAX_SOURCE_LENGTH = 200
_CONTRACT = 'extra {"environment": <name>, "source": <who changed it>, "changes": [...]} (docs/health.md)'


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


def change_event(
    extra: Mapping[str, Any],
    timestamp: datetime,
    source_dag_id: str | None = None,
    source_run_id: str | None = None,
) -> EnvironmentChange:
    """The environment change an ``environment_changed`` event announces, checked against its contract.

    ``extra`` holds ``environment`` (required: an environment name), ``source`` (optional: who changed
    it, default the producing DAG) and ``changes`` (optional: a list saying what changed); Airflow adds
    ``from_rest_api`` to an event posted over its REST API. Anything else is refused.

    :raises InvalidInput: naming what is wrong and what is expected
    """
    unknown = sorted(set(extra) - CHANGE_EVENT_KEYS - AIRFLOW_EVENT_KEYS)
    if unknown:
        raise InvalidInput(f"unknown key {', '.join(map(repr, unknown))}: expected {_CONTRACT}")
    environment = extra.get("environment")
    if not isinstance(environment, str) or not re.fullmatch(NAME_PATTERN, environment):
        raise InvalidInput(
            f"'environment' is {_excerpt(environment)}: expected an environment name "
            f"matching {NAME_PATTERN} ({_CONTRACT})"
        )
    source = extra.get("source", source_dag_id)
    if source is not None and not (isinstance(source, str) and 0 < len(source) <= MAX_SOURCE_LENGTH):
        raise InvalidInput(
            f"'source' is {_excerpt(source)}: expected a non-empty string of at most "
            f"{MAX_SOURCE_LENGTH} characters naming who changed the environment"
        )
    changes = extra.get("changes", [])
    if not isinstance(changes, list):
        raise InvalidInput(f"'changes' is {_excerpt(changes)}: expected a list saying what changed")
    return EnvironmentChange(
        environment,
        timestamp,
        source or "unknown",
        list(changes),
        dag_id=source_dag_id,
        run_id=source_run_id if source_dag_id else None,
    )


def environment_changes(events: Iterable[object]) -> list[EnvironmentChange]:
    """The changes announced by the ``environment_changed`` events a run consumed (objects with
    ``extra``, ``timestamp``, ``source_dag_id``, ``source_run_id``, and ``id`` when Airflow gives
    one), in their order.

    :raises InvalidInput: an event breaks the contract of :func:`change_event` (the message names it)
    """
    changes = []
    for event in events:
        timestamp = getattr(event, "timestamp", None)
        if not isinstance(timestamp, datetime):
            raise InvalidInput(f"{_event_name(event)} has no timestamp: expected Airflow's asset event")
        try:
            changes.append(
                change_event(
                    getattr(event, "extra", None) or {},
                    timestamp,
                    getattr(event, "source_dag_id", None),
                    getattr(event, "source_run_id", None),
                )
            )
        except InvalidInput as err:
            raise InvalidInput(f"{_event_name(event)}: {err}") from None
    return changes


def _event_name(event: object) -> str:
    event_id = getattr(event, "id", None)
    source = getattr(event, "source_dag_id", None) or "the REST API"
    return f"environment_changed event{f' {event_id}' if event_id is not None else ''} (from {source})"


def _excerpt(value: object) -> str:
    return excerpt(repr(value), 60)
