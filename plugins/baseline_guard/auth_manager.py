"""Airflow's FAB auth manager with two narrow changes, so a CI account can trigger without editing DAGs.

Configured with ``AIRFLOW__CORE__AUTH_MANAGER=baseline_guard.auth_manager.BaselineGuardAuthManager``
(the local stack and docker-compose.yaml do). Everything else (users, roles, the login page, the
``airflow users``/``roles`` commands, ``/auth/token``) is the FAB auth manager's.

1. **Triggering is its own permission.** FAB allows creating a run of a DAG only with ``can_edit``
   on the DAG itself, which also lets the holder pause, unpause and edit the DAG. Here ``can_create``
   on ``DAG Run:<dag_id>`` (FAB's own per-DAG run resource) together with ``can_read`` on
   ``DAG:<dag_id>`` is enough to create runs of that DAG. What FAB allows, this allows too.
   (Backfills are runs of the DAG as well; the REST guard asks ``can_edit`` on the DAG for them.)
2. **Approvers are named by username.** A HITL task's ``assigned_users`` hold ids; FAB reports its
   numeric database id as ``get_id()``, which differs between deployments. Here an assigned id also
   matches the user's (unique) username, so ``BASELINE_GUARD_ADMIN_USERS=admin`` works everywhere.
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.providers.fab.auth_manager.fab_auth_manager import FabAuthManager
from airflow.providers.fab.www.security import permissions


class BaselineGuardAuthManager(FabAuthManager):
    """FAB auth manager; see the module docstring for the two differences."""

    def is_authorized_dag(
        self,
        *,
        method: Any,
        user: Any,
        access_entity: DagAccessEntity | None = None,
        details: DagDetails | None = None,
    ) -> bool:
        if super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details):
            return True
        return self._may_trigger(method, user, access_entity, details)

    def _may_trigger(
        self, method: Any, user: Any, access_entity: DagAccessEntity | None, details: DagDetails | None
    ) -> bool:
        if method != "POST" or access_entity != DagAccessEntity.RUN or not (details and details.id):
            return False
        run_resource = permissions.resource_name(details.id, permissions.RESOURCE_DAG_RUN)
        return self._is_authorized(method="POST", resource_type=run_resource, user=user) and (
            self._is_authorized_dag(method="GET", details=details, user=user)
        )

    def is_authorized_hitl_task(self, *, assigned_users: set[str], user: Any) -> bool:
        username = getattr(user, "username", None)
        return user.get_id() in assigned_users or (username is not None and username in assigned_users)
