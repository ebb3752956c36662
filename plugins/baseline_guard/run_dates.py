"""A trigger's dates are input: a run may only be dated "now" by whoever triggers it.

Over the REST API a caller sets ``logical_date``, ``data_interval_start``/``data_interval_end`` and
``run_after``. A date in the future makes a run that never starts (the scheduler waits for it); a
date in the past would date what the run stores. :func:`check_trigger_dates` refuses any of them
that is not now (within ``PAST_TOLERANCE`` before the server's clock, never after it); ``null`` or
leaving them out is always fine: Airflow then dates the run itself. The REST guard
(``baseline_guard.rest_guard``) applies it before a run exists; the tasks do not rely on it
(``baseline_guard.clock``: a triggered run is "as of" the task's own clock).

No Airflow import: plain data in, :class:`~baseline_guard.errors.InvalidInput` out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from baseline_guard.errors import InvalidInput

DATE_FIELDS = ("logical_date", "data_interval_start", "data_interval_end", "run_after")
PAST_TOLERANCE = timedelta(minutes=5)


def check_trigger_dates(
    dag_id: str, body: Mapping[str, Any], now: datetime, tolerance: timedelta = PAST_TOLERANCE
) -> None:
    """Refuse a trigger body whose dates are not now; unreadable dates are left to Airflow (422)."""
    for field in DATE_FIELDS:
        moment = _parse(body.get(field))
        if moment is None:
            continue
        if moment > now:
            raise InvalidInput(
                f"{field} {moment.isoformat()} is in the future (server time {now.isoformat(timespec='seconds')}): "
                f'a run of {dag_id} that late would never start; send "{field}": null '
                "and the run is dated now"
            )
        if now - moment > tolerance:
            raise InvalidInput(
                f"{field} {moment.isoformat()} is {_age(now - moment)} in the past: runs of {dag_id} are "
                f'dated now (at most {_age(tolerance)} ago); send "{field}": null and the run is dated now'
            )


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment  # Airflow's zone: UTC


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("days", 86_400), ("hours", 3_600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size} {unit}"
    return f"{seconds} seconds"
