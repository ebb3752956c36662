"""One time source: "as of" is the run's time, never the wall clock inside a task.

A scheduled run is "as of" the end of its data interval; a triggered run (CI, the UI, REST with
``logical_date: null``) as of its ``run_after``. A retry or a rerun of the same run therefore
decides exactly as the first try did (which release counts, which backups are expired, which
drill is stale). No Airflow import: the context is read as a mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from baseline_guard.errors import InvalidInput


def run_as_of(context: Mapping[str, Any]) -> datetime:
    """The run's reference time (aware, UTC): ``data_interval_end``, else ``dag_run.run_after``."""
    moment = context.get("data_interval_end") or getattr(context.get("dag_run"), "run_after", None)
    if not isinstance(moment, datetime):
        raise InvalidInput(
            "the task context has neither data_interval_end nor dag_run.run_after: "
            "expected the context of an Airflow task instance"
        )
    if moment.tzinfo is None:
        raise InvalidInput(f"run time {moment.isoformat()} has no time zone: expected an aware datetime")
    utc = moment.astimezone(UTC)
    # A plain datetime: Airflow hands out pendulum DateTimes, whose zone is lost in arithmetic with
    # a stdlib timedelta (``as_of - timedelta(hours=1)`` came out naive and failed to compare).
    return datetime(
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, tzinfo=UTC
    )
