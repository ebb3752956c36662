"""Backup retention: delete an environment's old backups (whole, manifest first) and leftovers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from baseline_guard.clock import run_as_of
from baseline_guard.operators.base import BackupStoreOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class BackupRetentionOperator(BackupStoreOperator):
    """Delete an environment's old backups (whole, manifest first) and clean up leftovers.

    Per phase, the newest ``keep_last_n`` backups and every backup younger than ``max_age_days``
    are kept. Manifest-less dumps and incomplete uploads older than ``leftover_grace_hours`` are
    removed. "Now" is :func:`~baseline_guard.clock.run_as_of`: for a triggered run the task's own
    clock, never a date the caller set.

    :param environment: environment whose backups to prune (templated)
    :param keep_last_n: backups kept per phase whatever their age (at least 1)
    :param max_age_days: backups younger than this are kept; None keeps only the newest ``keep_last_n``
    :param leftover_grace_hours: leftovers younger than this may belong to a backup being written
    :param dry_run: only report what would be deleted
    """

    template_fields: Sequence[str] = ("environment",)
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        environment: str,
        keep_last_n: int = 7,
        max_age_days: float | None = 14,
        leftover_grace_hours: float = 24,
        dry_run: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.environment = environment
        self.keep_last_n = keep_last_n
        self.max_age_days = max_age_days
        self.leftover_grace_hours = leftover_grace_hours
        self.report_only = dry_run  # not self.dry_run: that is BaseOperator's dry_run() method

    def execute(self, context: Context) -> dict[str, Any]:
        from baseline_guard.backup.retention import apply_retention

        report = apply_retention(
            self.store.client,
            self.store.bucket,
            self.environment,
            keep_last_n=self.keep_last_n,
            max_age_days=self.max_age_days,
            now=run_as_of(context),
            leftover_grace=timedelta(hours=self.leftover_grace_hours),
            dry_run=self.report_only,
        )
        self.log.info(
            "retention applied",
            environment=self.environment,
            dry_run=self.report_only,
            deleted=len(report.deleted_backups),
            kept=len(report.kept_backups),
            leftover_objects=len(report.deleted_leftover_objects),
            aborted_uploads=len(report.aborted_uploads),
        )
        return asdict(report)
