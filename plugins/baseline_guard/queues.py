"""Routing of the tasks that run the PostgreSQL client tools to their own Celery queue.

On CeleryExecutor, ``pg_dump``/``pg_restore`` tasks must land on workers that have the client
tools. The deployment names that queue in ``BASELINE_GUARD_PGTOOLS_QUEUE`` (``pgtools`` in
``docker/airflow-settings.env``); the cluster policy :func:`route_pg_tool_tasks` (registered in
``plugins/airflow_local_settings.py``) then sets it on every dump and restore task, mapped or not,
when the DAG is parsed. No DAG file names a queue; without the variable nothing changes.
"""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk.definitions.mappedoperator import MappedOperator

PGTOOLS_QUEUE_ENV = "BASELINE_GUARD_PGTOOLS_QUEUE"


def pg_tool_operator_classes() -> tuple[type, ...]:
    """The operators that run ``pg_dump`` or ``pg_restore`` in their worker."""
    from baseline_guard.operators.dump import PgDumpToS3Operator
    from baseline_guard.operators.restore import RestoreFromBackupOperator

    return PgDumpToS3Operator, RestoreFromBackupOperator


def runs_pg_tools(task: Any) -> bool:
    operator_class = task.operator_class if isinstance(task, MappedOperator) else type(task)
    return isinstance(operator_class, type) and issubclass(operator_class, pg_tool_operator_classes())


def route_pg_tool_tasks(task: Any) -> None:
    """Cluster policy: put dump and restore tasks on the ``$BASELINE_GUARD_PGTOOLS_QUEUE`` queue."""
    queue = os.environ.get(PGTOOLS_QUEUE_ENV, "").strip()
    if queue and runs_pg_tools(task):
        task.queue = queue
