"""The swap step of an environment restore tells the admins only what no restore task told them already."""

from __future__ import annotations

from typing import TYPE_CHECKING

from baseline_guard.errors import RestoreAborted
from baseline_guard.notifiers.admins import AdminsNotifier

if TYPE_CHECKING:
    from airflow.sdk import Context


class SwapNotifier(AdminsNotifier):
    """:class:`AdminsNotifier` for ``swap_databases``, silent when the swap aborted for a failed restore.

    The swap aborts (nothing swapped, copies dropped) when a database has no verified copy: that
    database's restore task failed and its own message named the database and why, so one failure
    stays one message. Any other failure of the swap (a busy database, a lost server) is told.
    """

    def notify(self, context: Context) -> None:
        if isinstance(context.get("exception"), RestoreAborted):
            self.log.info("swap aborted for a failed restore, which told the admins already")
            return
        super().notify(context)
