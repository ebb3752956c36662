"""Airflow cluster policies of Baseline Guard (Airflow imports this module from the plugins folder)."""

from __future__ import annotations

from typing import Any

from baseline_guard import queues, run_guard


def task_policy(task: Any) -> None:
    run_guard.task_policy(task)  # strict conf: every task refuses a run with unknown conf keys
    queues.route_pg_tool_tasks(task)  # dump/restore tasks to the pgtools queue (Celery)
