"""Tell what a *successful* task found, once: a success callback reading the task's return value.

Some outcomes of a task that did its job still need people (the patrol's incidents, production
config changes awaiting an on-call decision). The operator returns them; this notifier, attached as
the task's ``on_success_callback``, sends them after the task succeeded, so a failed or retried try
tells nothing and each outcome is one message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from baseline_guard.notifiers.channels import ADMINS_CONN_ID, send

if TYPE_CHECKING:
    from airflow.sdk import Context

Message = dict[str, Any]  # {"title", "body", "failure"}


class ResultNotifier(BaseNotifier):
    """Send the messages ``compose`` makes of the task's return value, one send each.

    :param compose: return value (XCom) -> messages ``{"title", "body", "failure"}``; by default the
        value's ``"messages"``
    :param apprise_conn_id: Apprise connection to send through
    """

    def __init__(
        self, *, compose: Callable[[Any], list[Message]] | None = None, apprise_conn_id: str = ADMINS_CONN_ID
    ) -> None:
        super().__init__()
        self.compose = compose or _messages_of
        self.apprise_conn_id = apprise_conn_id

    def notify(self, context: Context) -> None:
        ti = context["ti"]
        result = ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index)
        for message in self.compose(result):
            send(message["title"], message["body"], failure=message["failure"], conn_id=self.apprise_conn_id)


def _messages_of(result: Any) -> list[Message]:
    return (result or {}).get("messages", []) if isinstance(result, dict) else []
