"""Environment health: the business-check history (PostgreSQL, Alembic migrations) and the measures
read from it: availability against the target, time to detect and to recover, flaky scenarios.

Plain Python, no Airflow: the business-check operator records through :class:`HistoryStore`, the
UI page and the CLI (``python -m baseline_guard.health migrate``) read through it.
"""

from __future__ import annotations

from baseline_guard.health.records import CheckRecord, EnvironmentChange, ScenarioRecord, Trigger
from baseline_guard.health.store import HistoryStore

__all__ = ["CheckRecord", "EnvironmentChange", "HistoryStore", "ScenarioRecord", "Trigger"]
