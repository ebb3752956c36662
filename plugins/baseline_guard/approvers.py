"""Who may answer the project's human-in-the-loop tasks: the admins and the on-call group.

Airflow only lets the users listed in a HITL task's ``assigned_users`` answer it (an empty list
lets anyone). The lists come from the deployment's environment, read when a DAG is parsed:

- ``BASELINE_GUARD_ADMIN_USERS``: who approves destructive schema changes.
- ``BASELINE_GUARD_ONCALL_USERS``: who decides on production config changes.

Each is a comma-separated list of ``id`` or ``id:display name``, where ``id`` is the Airflow
username: the project's auth manager (``baseline_guard.auth_manager``) matches assigned ids against
usernames as well as against FAB's numeric user ids, which differ between deployments. No Airflow import: the entries are plain ``{"id", "name"}``
dicts, the shape of Airflow's ``HITLUser``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from baseline_guard.errors import InvalidInput

ADMIN_USERS_VAR = "BASELINE_GUARD_ADMIN_USERS"
ONCALL_USERS_VAR = "BASELINE_GUARD_ONCALL_USERS"
DEFAULT_ADMINS = "admin"
_ID = re.compile(r"^[A-Za-z0-9_.@-]{1,128}$")


def parse_users(spec: str, source: str) -> list[dict[str, str]]:
    """``"alice:Alice Smith, bob"`` → ``[{"id": "alice", "name": "Alice Smith"}, {"id": "bob", "name": "bob"}]``."""
    users: list[dict[str, str]] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        user_id, _, name = item.partition(":")
        user_id, name = user_id.strip(), name.strip() or user_id.strip()
        if not _ID.match(user_id):
            raise InvalidInput(
                f"{source}: {user_id!r} is not a user id; expected letters, digits, '_', '.', '@' or '-' "
                "(1-128 characters), optionally followed by ':display name'"
            )
        users.append({"id": user_id, "name": name})
    if not users:
        raise InvalidInput(f"{source} names nobody; expected a comma-separated list of user ids")
    return users


def admin_users(environ: Mapping[str, str] = os.environ) -> list[dict[str, str]]:
    """The admins: the only users who may approve held destructive schema changes."""
    return parse_users(environ.get(ADMIN_USERS_VAR, DEFAULT_ADMINS), ADMIN_USERS_VAR)


def oncall_users(environ: Mapping[str, str] = os.environ) -> list[dict[str, str]]:
    """The on-call group (defaults to the admins): who decides on production config changes."""
    spec = environ.get(ONCALL_USERS_VAR) or environ.get(ADMIN_USERS_VAR, DEFAULT_ADMINS)
    return parse_users(spec, ONCALL_USERS_VAR)
