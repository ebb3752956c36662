"""Notifications to the environment admins and the on-call person, through Apprise connections.

The connections (``apprise_admins``, ``apprise_oncall``) hold Apprise URLs: chat, mail,
webhooks. Locally they point at the reference server's notification sink.
"""

from __future__ import annotations

from airflow.providers.apprise.hooks.apprise import AppriseHook
from airflow.providers.apprise.notifications.apprise import AppriseNotifier
from apprise import NotifyType

ADMINS_CONN_ID = "apprise_admins"
ONCALL_CONN_ID = "apprise_oncall"


def notify(title: str, body: str, *, failure: bool = False, conn_id: str = ADMINS_CONN_ID) -> None:
    """Send one message; ``failure`` marks it as a failure for channels that show severity."""
    AppriseHook(apprise_conn_id=conn_id).notify(
        body=body, title=title, notify_type=NotifyType.FAILURE if failure else NotifyType.INFO
    )


def dag_failure_notifier(what: str) -> AppriseNotifier:
    """A DAG ``on_failure_callback`` telling the admins which run failed and where to look."""
    return AppriseNotifier(
        title=f"Baseline Guard: {what} failed",
        body="DAG {{ dag.dag_id }} run {{ run_id }} failed. Look at the failed tasks in the Airflow UI.",
        notify_type=NotifyType.FAILURE,
        apprise_conn_id=ADMINS_CONN_ID,
    )
