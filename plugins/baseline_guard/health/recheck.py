"""Which environments to re-check now: those in an outage that began recently.

While an environment is failing it is re-checked every minute, so an outage's length is known to
about a minute; bounded to outages younger than a window (an older one is followed by the hourly
checks), so a long outage does not keep a worker busy all day.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from baseline_guard.health.store import HistoryStore

RECHECK_WITHIN = timedelta(hours=1)


def failing_environments(
    store: HistoryStore, *, as_of: datetime, within: timedelta = RECHECK_WITHIN
) -> list[str]:
    """Environments with an open whole-environment incident that began at most ``within`` before ``as_of``."""
    since = as_of - within
    return sorted(
        {
            stored.environment
            for stored in store.incidents(since)
            if stored.incident.is_open and stored.incident.scope == "" and stored.incident.started_at >= since
        }
    )
