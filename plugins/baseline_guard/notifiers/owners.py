"""Messages about one environment go to its owners; the baseline's (and an owner-less one's) to the admins.

The owners' channel is the Apprise URL the environment API lists for the environment
(``Environment.owners_notify_url``). It may hold a token, so it is used here only: never logged,
never returned, never passed as a task argument (nor through XCom: :class:`BusinessCheckNotifier`
looks it up when it sends).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from baseline_guard.environment_contract import Environment, EnvironmentKind
from baseline_guard.notifiers.admins import AdminsNotifier
from baseline_guard.notifiers.channels import send, send_to_url

if TYPE_CHECKING:
    from airflow.sdk import Context


def recipients(env: Environment) -> str:
    """Who hears about ``env``: ``owners`` (a project environment with a channel) or ``admins``."""
    return "owners" if env.kind == EnvironmentKind.PROJECT and env.owners_notify_url else "admins"


def notify_environment(env: Environment, title: str, body: str, *, failure: bool = False) -> str:
    """Send one message about ``env`` to :func:`recipients`; returns who was told."""
    who = recipients(env)
    if who == "owners" and env.owners_notify_url:
        send_to_url(
            env.owners_notify_url, title, body, failure=failure, label=f"the owners' channel of {env.name}"
        )
    else:
        send(title, body, failure=failure)
    return who


CHECK_ALERT_XCOM_KEY = "check_alert"


class BusinessCheckNotifier(AdminsNotifier):
    """Tell an environment's owners, once per change of its business-check outcome.

    The check task decides whether its outcome is worth a message (``failed``, ``changed``,
    ``recovered``, or nothing while the same breakage repeats) and pushes that decision as the XCom
    ``check_alert``; this notifier, the task's failure and success callback, sends it after the last
    try. A task that failed before its checks had an outcome (no decision) tells the admins why, as
    :class:`AdminsNotifier` does for every task.

    :param env_api_conn_id: Airflow connection of the environment API (who owns the environment)
    """

    def __init__(self, *, env_api_conn_id: str = "baseline_env_api", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.env_api_conn_id = env_api_conn_id

    def notify(self, context: Context) -> None:
        decision = check_alert(context)
        if decision is None:
            if self.failure:
                super().notify(context)
            return
        if not decision.get("alert"):
            self.log.info("no message: the outcome did not change", environment=decision["environment"])
            return
        from baseline_guard.hooks.environment import EnvironmentHook

        env = EnvironmentHook(self.env_api_conn_id).get_environment(decision["environment"])
        title, body = alert_message(decision)
        who = notify_environment(env, title, body, failure=decision["alert"] != "recovered")
        self.log.info("outcome sent", environment=env.name, alert=decision["alert"], to=who)


def check_alert(context: Context) -> dict[str, Any] | None:
    """The decision the check task's last try pushed (``None`` when it never got that far)."""
    ti = context.get("ti") or context.get("task_instance")
    if ti is None:
        return None
    return ti.xcom_pull(task_ids=ti.task_id, key=CHECK_ALERT_XCOM_KEY, map_indexes=ti.map_index)


def alert_message(decision: dict[str, Any]) -> tuple[str, str]:
    """Title and body of an outcome message, for the environment's owners."""
    name = decision["environment"]
    if decision["alert"] == "recovered":
        return f"Business checks pass again on {name}", f"every scenario passed on {name}"
    report = decision.get("report_url") or "not uploaded"
    return f"Business checks failed on {name}", f"{decision['summary']}\nReport: {report}"
