"""Where messages go: Apprise connections (``apprise_admins``, ``apprise_oncall``) or an owners' URL.

The one place that sends. Notifiers (:mod:`.admins`, :mod:`.owners`) decide *what* to say and are
attached as callbacks, so each outcome is told once, after the retries. Every title and body is
masked here (:mod:`baseline_guard.masking`: an exception's text may hold a DSN or a token), and the
secrets found are registered with Airflow's masker so the callback's log does not show them either.
Apprise is imported on send, not at DAG parse.
"""

from __future__ import annotations

from typing import Any

from baseline_guard.errors import NotificationFailed
from baseline_guard.masking import find_secrets, mask_text

ADMINS_CONN_ID = "apprise_admins"
ONCALL_CONN_ID = "apprise_oncall"


def send(title: str, body: str, *, failure: bool = False, conn_id: str = ADMINS_CONN_ID) -> None:
    """Send one message through the Apprise connection ``conn_id``."""
    from airflow.providers.apprise.hooks.apprise import AppriseHook
    from apprise import NotifyType

    title, body = masked_message(title, body)
    AppriseHook(apprise_conn_id=conn_id).notify(
        body=body, title=title, notify_type=NotifyType.FAILURE if failure else NotifyType.INFO
    )


def send_to_url(
    url: str, title: str, body: str, *, failure: bool = False, label: str = "the channel"
) -> None:
    """Send one message to an Apprise URL (an owners' channel). The URL may hold a token: never logged."""
    import apprise
    from apprise import NotifyType

    title, body = masked_message(title, body)
    sender = apprise.Apprise()
    if not sender.add(url):
        raise NotificationFailed(f"{label} is not a URL Apprise understands")
    if not sender.notify(
        body=body, title=title, notify_type=NotifyType.FAILURE if failure else NotifyType.INFO
    ):
        raise NotificationFailed(f"{label} refused the message")


def masked_message(title: str, body: str) -> tuple[str, str]:
    """``(title, body)`` with every secret masked; each secret found is registered with Airflow's masker."""
    found = find_secrets(title) + find_secrets(body)
    if found:
        try:
            from airflow.sdk.log import mask_secret
        except ImportError:  # outside Airflow (a CLI): the message is masked all the same
            pass
        else:
            for secret in found:
                mask_secret(secret)
    return mask_text(title), mask_text(body)


def task_label(context: Any) -> str:
    """``dag_id.task_id[map]`` of the context's task instance, for people."""
    ti = context.get("ti") or context.get("task_instance")
    if ti is None:
        dag = context.get("dag")
        return getattr(dag, "dag_id", "?")
    map_index = getattr(ti, "map_index", -1)
    rendered = getattr(ti, "rendered_map_index", None)
    suffix = f"[{rendered or map_index}]" if map_index is not None and map_index >= 0 else ""
    return f"{ti.dag_id}.{ti.task_id}{suffix}"


def failure_reason(context: Any, limit: int = 600) -> str:
    """The failed task's error, as a person reads it: the exception's message, bounded."""
    exc = context.get("exception")
    if exc is None:
        return str(context.get("reason") or "no error message was recorded")
    text = mask_text(str(exc).strip()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
