"""Tell the environment admins (or the on-call person) that a task failed, once, after its retries.

``default_args`` attaches :class:`AdminsNotifier` as every task's ``on_failure_callback``: Airflow
calls it only when the task has failed for good (a try that will be retried calls
``on_retry_callback`` instead), so one failure is one message. Operators never notify and then raise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from airflow.sdk import BaseNotifier

from baseline_guard.notifiers.channels import ADMINS_CONN_ID, failure_reason, send, task_label

if TYPE_CHECKING:
    from airflow.sdk import Context


class AdminsNotifier(BaseNotifier):
    """Send one message about the task in ``context`` to an Apprise connection.

    :param what: what the DAG does, for the title ("test-data restore")
    :param title: message title (templated); default: "Baseline Guard: <what> failed"
    :param body: message body (templated); default: which task of which run failed, why, and where to look
    :param apprise_conn_id: Apprise connection to send through
    :param failure: mark the message as a failure for channels that show severity
    """

    template_fields: Sequence[str] = ("title", "body")

    def __init__(
        self,
        *,
        what: str = "a task",
        title: str | None = None,
        body: str | None = None,
        apprise_conn_id: str = ADMINS_CONN_ID,
        failure: bool = True,
    ) -> None:
        super().__init__()
        self.what = what
        self.title = title
        self.body = body
        self.apprise_conn_id = apprise_conn_id
        self.failure = failure

    def notify(self, context: Context) -> None:
        send(
            self.title or f"Baseline Guard: {self.what} failed",
            self.body or failure_body(context),
            failure=self.failure,
            conn_id=self.apprise_conn_id,
        )


def failure_body(context: Context) -> str:
    """Which task of which run failed, after how many tries, why, and where to look."""
    ti = context.get("ti") or context.get("task_instance")
    tries = getattr(ti, "try_number", None)
    run_id = context.get("run_id") or getattr(context.get("dag_run"), "run_id", "?")
    lines = [
        f"{task_label(context)} failed in run {run_id}" + (f" (try {tries})." if tries else "."),
        f"Why: {failure_reason(context)}",
    ]
    log_url = getattr(ti, "log_url", None)
    if log_url:
        lines.append(f"Log: {log_url}")
    return "\n".join(lines)
