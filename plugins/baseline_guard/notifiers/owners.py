"""Messages about one environment go to its owners; the baseline's (and an owner-less one's) to the admins.

The owners' channel is the Apprise URL the environment API lists for the environment
(``Environment.owners_notify_url``). It may hold a token, so it is used here only: never logged,
never returned, never passed as a task argument.
"""

from __future__ import annotations

from baseline_guard.environment_contract import Environment, EnvironmentKind
from baseline_guard.notifiers.channels import send, send_to_url


def recipients(env: Environment) -> str:
    """Who hears about ``env``: ``owners`` (a project environment with a channel) or ``admins``."""
    return "owners" if env.kind == EnvironmentKind.PROJECT and env.owners_notify_url else "admins"


def notify_environment(env: Environment, title: str, body: str, *, failure: bool = False) -> str:
    """Send one message about ``env`` to :func:`recipients`; returns who was told."""
    who = recipients(env)
    if who == "admins":
        send(title, body, failure=failure)
    else:
        send_to_url(
            env.owners_notify_url, title, body, failure=failure, label=f"the owners' channel of {env.name}"
        )
    return who
