"""Keep Airflow's metadata database bounded: ``airflow db clean`` of what is older than the retention."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseOperator

from baseline_guard.errors import InvalidInput

# The tables that grow with every run (``airflow db clean --help`` lists them); ``dag`` and
# ``dag_version`` are left alone (they are the DAGs themselves, not their history).
CLEANED_TABLES = (
    "dag_run",
    "task_instance",
    "task_instance_history",
    "task_reschedule",
    "xcom",
    "log",
    "job",
    "callback",
    "trigger",
    "asset_event",
    "deadline",
    "import_error",
    "revoked_token",
    "celery_taskmeta",
    "celery_tasksetmeta",
)
MIN_KEEP_DAYS = 7


class MetadataCleanupOperator(BaseOperator):
    """Delete the metadata rows older than ``keep_days`` days (``airflow db clean``, no archive tables).

    The cut-off comes from this task's own clock, never from the run's dates (a caller sets those).
    ``airflow db clean`` keeps the latest run of each DAG whatever its age. The worker needs the metadata
    database's address (``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``), as the local stack's and
    docker-compose's have. A table that could not be cleaned fails the task (``--error-on-cleanup-failure``).

    :param keep_days: how many days of history to keep, at least 7 (templated)
    :param tables: the metadata tables to clean
    :param batch_size: rows deleted per transaction (short locks while the scheduler runs)
    """

    template_fields: Sequence[str] = ("keep_days",)

    def __init__(
        self,
        *,
        keep_days: int = 30,
        tables: Sequence[str] = CLEANED_TABLES,
        batch_size: int = 5000,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.keep_days = keep_days
        self.tables = tables
        self.batch_size = batch_size

    def command(self, cutoff: datetime) -> list[str]:
        return [
            sys.executable,
            "-m",
            "airflow",
            "db",
            "clean",
            "--clean-before-timestamp",
            cutoff.isoformat(),
            "--tables",
            ",".join(self.tables),
            "--batch-size",
            str(self.batch_size),
            "--skip-archive",
            "--error-on-cleanup-failure",
            "--yes",
        ]

    def execute(self, context: Any) -> dict[str, Any]:
        keep_days = int(self.keep_days)
        if keep_days < MIN_KEEP_DAYS:
            raise InvalidInput(f"keep_days must be at least {MIN_KEEP_DAYS}, got {keep_days}")
        cutoff = (datetime.now(UTC) - timedelta(days=keep_days)).replace(microsecond=0)
        self.log.info("cleaning the metadata database", before=cutoff.isoformat(), tables=len(self.tables))
        done = subprocess.run(self.command(cutoff), capture_output=True, text=True, timeout=3000, check=False)
        lines = (done.stdout + done.stderr).strip().splitlines()
        for line in lines[-40:]:
            self.log.info("db clean: %s", line)
        if done.returncode != 0:
            raise RuntimeError(
                f"airflow db clean exited with code {done.returncode}; last lines: {' | '.join(lines[-5:])}"
            )
        return {"cleaned_before": cutoff.isoformat(), "tables": list(self.tables)}
