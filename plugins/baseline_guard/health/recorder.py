"""Record a finished business-check run from what its Airflow run says about itself.

Reads the run duck-typed (``run_type``, ``run_id``, ``dag_id``, ``conf``, ``consumed_asset_events``),
so this stays free of Airflow imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from baseline_guard.checks.results import CheckRun
from baseline_guard.health.records import EnvironmentChange, Trigger, check_record
from baseline_guard.health.store import HistoryStore
from baseline_guard.health.trigger import environment_changes, trigger_reason


def record_check(
    store: HistoryStore,
    run: CheckRun,
    *,
    dag_run: Any = None,
    task_id: str | None = None,
    try_number: int | None = None,
    report_url: str | None = None,
    trigger: Trigger | None = None,
    changed: Sequence[EnvironmentChange] = (),
) -> int:
    """Store the check run with why it ran, and the environment changes it follows: those its Airflow
    run consumed (``environment_changed`` events) and ``changed``.

    :param trigger: why it ran, when the task knows better than its run (a re-check); default: from
        the run, or ``environment_change`` when ``changed`` is given
    :param changed: changes the task itself knows it follows (a restore checking what it restored)
    """
    events = list(getattr(dag_run, "consumed_asset_events", None) or [])
    run_type = str(getattr(dag_run, "run_type", "") or "")
    run_id = str(getattr(dag_run, "run_id", "") or "")
    record = check_record(
        run,
        trigger=trigger
        or trigger_reason(run_type, run_id, getattr(dag_run, "conf", None), len(events) + len(changed)),
        dag_id=getattr(dag_run, "dag_id", None),
        run_id=run_id or None,
        task_id=task_id,
        try_number=try_number,
        report_url=report_url,
    )
    return store.record(record, [*environment_changes(events), *changed])
