"""Messages about one environment go to its owners; the baseline's (and an owner-less one's) to the admins.

The owners' channel is the Apprise URL the environment API lists for the environment
(``Environment.owners_notify_url``). It may hold a token, so it is used here only: never logged,
never returned, never passed as a task argument.
"""

from __future__ import annotations

import apprise
from apprise import NotifyType

from baseline_guard.environment_contract import Environment, EnvironmentKind
from baseline_guard.errors import BaselineGuardError
from baseline_guard.notifiers.admins import notify as notify_admins


class NotificationFailed(BaselineGuardError):
    """The owners' channel did not accept the message."""


def recipients(env: Environment) -> str:
    """Who hears about ``env``: ``owners`` (a project environment with a channel) or ``admins``."""
    return "owners" if env.kind == EnvironmentKind.PROJECT and env.owners_notify_url else "admins"


def notify_environment(env: Environment, title: str, body: str, *, failure: bool = False) -> str:
    """Send one message about ``env`` to :func:`recipients`; returns who was told."""
    who = recipients(env)
    if who == "admins":
        notify_admins(title, body, failure=failure)
        return who
    sender = apprise.Apprise()
    if not sender.add(env.owners_notify_url):
        raise NotificationFailed(f"the owners' channel of {env.name} is not a URL Apprise understands")
    if not sender.notify(
        body=body, title=title, notify_type=NotifyType.FAILURE if failure else NotifyType.INFO
    ):
        raise NotificationFailed(f"the owners' channel of {env.name} refused the message")
    return who
