"""Environment health: the business-check history (PostgreSQL, Alembic migrations) and the measures
read from it: availability against the target, time to detect and to recover, flaky scenarios; and in
the same database the state the DAGs decide by (:mod:`.guard_state`: on-call decisions, patrol incidents).

Plain Python, no Airflow: the business-check operator records through :class:`HistoryStore`, the
UI page and the CLI (``python -m baseline_guard.health migrate``) read through it.

Engine names are exported lazily: importing one light module of this package loads nothing else.
"""

from __future__ import annotations

from baseline_guard._lazy import lazy_exports

_EXPORTS = {
    "CheckRecord": "records",
    "EnvironmentChange": "records",
    "HistoryStore": "store",
    "ScenarioRecord": "records",
    "Trigger": "records",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
