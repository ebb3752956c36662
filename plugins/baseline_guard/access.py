"""Who may do what in Airflow: the CI and Metrics roles and the deployment's users, synced into the FAB
auth manager.

The **CI** role may trigger and read runs of the DAGs meant for CI (:data:`CI_DAG_IDS`) and nothing
else: no other DAG, no pause, delete, run state change, clear, backfill, no approvals, no
connections, variables or configuration. Its permissions (:func:`ci_role_permissions`) are set
exactly on every sync: anything added by hand is removed.

The **Metrics** role (a Prometheus scraper's account) may read ``/baseline-guard/metrics`` and nothing
else: one permission, ``can_read`` on the custom resource :data:`METRICS_RESOURCE`; no website, no
DAG, not the health page. The Admin role is given that permission too (added, nothing removed).

It also creates the deployment's pools (:mod:`baseline_guard.pools`: the syncs' shared slots).

Run after ``airflow db migrate``, with Airflow's configuration in the environment::

    python -m baseline_guard.access --passwords-file /run/secrets/airflow_passwords

The passwords file is a JSON object ``{"admin": "...", "ci": "...", "metrics": "..."}`` (any of them): each user is created (or its
password and roles reset) with the role :data:`USER_ROLES` gives it. Passwords never appear on a
command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

CI_ROLE = "CI"
ADMIN_ROLE = "Admin"
METRICS_ROLE = "Metrics"
METRICS_RESOURCE = "Baseline Guard Metrics"  # checked by baseline_guard.ui.auth.metrics_reader
CI_DAG_IDS: tuple[str, ...] = ("business_check", "test_data_backup", "test_data_restore")
USER_ROLES: dict[str, str] = {"admin": ADMIN_ROLE, "ci": CI_ROLE, "metrics": METRICS_ROLE}

# Global resources whose read is also checked against the DAG's own read permission, so they show
# nothing of DAGs outside CI_DAG_IDS: the task instances, logs and results of a run.
CI_GLOBAL_READS = ("Website", "DAG Runs", "Task Instances", "Task Logs", "XComs")


def ci_role_permissions(dag_ids: Iterable[str] = CI_DAG_IDS) -> set[tuple[str, str]]:
    """``(action, resource)`` pairs of the CI role: read the DAG, read and create its runs."""
    perms = {("can_read", resource) for resource in CI_GLOBAL_READS}
    for dag_id in dag_ids:
        perms |= {
            ("can_read", f"DAG:{dag_id}"),
            ("can_read", f"DAG Run:{dag_id}"),
            ("can_create", f"DAG Run:{dag_id}"),
        }
    return perms


def metrics_role_permissions() -> set[tuple[str, str]]:
    """``(action, resource)`` pairs of the Metrics role: read the metrics, nothing else."""
    return {("can_read", METRICS_RESOURCE)}


def grant(sm: Any, name: str, wanted: set[tuple[str, str]]) -> None:
    """Add ``wanted`` to role ``name`` (nothing removed)."""
    role = sm.find_role(name)
    have = {(p.action.name, p.resource.name) for p in role.permissions}
    for action, resource in sorted(wanted - have):
        sm.add_permission_to_role(
            role, sm.get_permission(action, resource) or sm.create_permission(action, resource)
        )


def sync_role(sm: Any, name: str, wanted: set[tuple[str, str]]) -> None:
    """Give role ``name`` exactly the permissions ``wanted`` (created if missing)."""
    role = sm.find_role(name) or sm.add_role(name)
    have = {(p.action.name, p.resource.name): p for p in role.permissions}
    for action, resource in sorted(wanted - have.keys()):
        sm.add_permission_to_role(
            role, sm.get_permission(action, resource) or sm.create_permission(action, resource)
        )
    for key in sorted(have.keys() - wanted):
        sm.remove_permission_from_role(role, have[key])


def sync_users(sm: Any, passwords: Mapping[str, str], roles: Mapping[str, str] = USER_ROLES) -> list[str]:
    """Create each user of ``passwords`` or reset its password and role; returns the usernames synced."""
    synced = []
    for username, password in passwords.items():
        if username not in roles:
            raise ValueError(f"user {username!r} has no role: expected one of {sorted(roles)}")
        role = sm.find_role(roles[username])
        user = sm.find_user(username=username)
        if user is None:
            user = sm.add_user(
                username, username, "(Baseline Guard)", f"{username}@baseline-guard.invalid", role, password
            )
            if not user:
                raise RuntimeError(f"could not create Airflow user {username!r} (see the log above)")
        else:
            user.roles = [role]
            sm.update_user(user)
            sm.reset_password(user.id, password)
        synced.append(username)
    return synced


def read_passwords(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(
            f'cannot read {path}: {err}; expected a JSON object {{"admin": "...", "ci": "..."}}'
        ) from None
    if not isinstance(data, dict) or not all(isinstance(v, str) and v for v in data.values()):
        raise ValueError(f"{path} must hold a JSON object of username -> non-empty password")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m baseline_guard.access", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--passwords-file", type=Path, required=True, help="JSON {username: password}")
    parser.add_argument(
        "--sync-fab-perms",
        action="store_true",
        help="also sync FAB's permissions and built-in roles, as the API server does at its start when "
        "[fab] update_fab_perms is on (the local stack turns that off and syncs here once per version)",
    )
    args = parser.parse_args(argv)
    try:
        passwords = read_passwords(args.passwords_file)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        sm = appbuilder.sm
        if args.sync_fab_perms:
            appbuilder.add_permissions(update_perms=True)
            sm.sync_roles()
        elif sm.find_role(ADMIN_ROLE) is None:  # before the API server's first start (docker-compose)
            sm.sync_roles()  # FAB's built-in roles (Admin, Viewer, ...), as the API server makes them
        sync_role(sm, CI_ROLE, ci_role_permissions())
        sync_role(sm, METRICS_ROLE, metrics_role_permissions())
        grant(sm, ADMIN_ROLE, metrics_role_permissions())
        users = sync_users(sm, passwords)
    from baseline_guard.pools import sync_pools

    pools = sync_pools()
    print(
        f"role {CI_ROLE} synced for DAGs {', '.join(CI_DAG_IDS)}, role {METRICS_ROLE} for the metrics; "
        f"users synced: {', '.join(users)}; pools synced: {', '.join(pools)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
