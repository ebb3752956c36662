"""One time source: "as of" is a time no caller can set.

Over the REST API a caller sets a run's ``logical_date``, ``data_interval_start/end`` and
``run_after``: they are input like the conf, and must not date a backup, decide what retention
keeps or what the clean-up of unfinished uploads removes, or when a check ran. So:

- a **scheduled** run (the scheduler made it from the DAG's timetable) is "as of" the end of its
  data interval, so a retry decides exactly as the first try did;
- **every other run** (triggered from CI, the UI or REST, a backfill, an asset event) is "as of" the
  task's own clock, :func:`task_now`.

A context without a run (a test, a CLI) counts as scheduled. No Airflow import: the context is
read as a mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from baseline_guard.errors import InvalidInput

SCHEDULED = "scheduled"  # DagRunType.SCHEDULED: the only run type whose dates the scheduler chose


def task_now() -> datetime:
    """The task's own clock (aware, UTC)."""
    return datetime.now(UTC)


def run_as_of(context: Mapping[str, Any], *, now: datetime | None = None) -> datetime:
    """The run's reference time (aware, UTC): see the module docstring; ``now``: the task's clock."""
    clock = _plain_utc(now or task_now())
    dag_run = context.get("dag_run")
    run_type = getattr(dag_run, "run_type", None)
    if run_type is not None and str(getattr(run_type, "value", run_type)) != SCHEDULED:
        return clock  # the caller set this run's dates
    moment = context.get("data_interval_end") or getattr(dag_run, "data_interval_end", None)
    if moment is None and dag_run is None:
        raise InvalidInput(
            "the task context has neither data_interval_end nor dag_run: "
            "expected the context of an Airflow task instance"
        )
    if moment is None:
        return clock
    if not isinstance(moment, datetime):
        raise InvalidInput(f"run time {moment!r} is not a datetime: expected an aware datetime")
    if moment.tzinfo is None:
        raise InvalidInput(f"run time {moment.isoformat()} has no time zone: expected an aware datetime")
    return _plain_utc(moment)


def _plain_utc(moment: datetime) -> datetime:
    utc = moment.astimezone(UTC)
    # A plain datetime: Airflow hands out pendulum DateTimes, whose zone is lost in arithmetic with
    # a stdlib timedelta (``as_of - timedelta(hours=1)`` came out naive and failed to compare).
    return datetime(
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, tzinfo=UTC
    )
