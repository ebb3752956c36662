"""Airflow cluster policies of Baseline Guard (Airflow imports this module from the plugins folder)."""

from __future__ import annotations

from baseline_guard.run_guard import task_policy

__all__ = ["task_policy"]
