"""The page's guard: Airflow's own authentication (the JWT in the ``Authorization`` header or the UI's
``_token`` cookie, validated by Airflow's ``get_user``), the auth manager's "website" permission, and
the right to read every Baseline Guard DAG (:data:`PAGE_DAG_IDS`): the page shows every environment,
held approvals and report links, so an account that may read only some DAGs (the CI role,
``baseline_guard.access``) is refused.

Plugin routes are not behind Airflow's authentication by themselves; every route of the page app
depends on :func:`airflow_user`. Airflow is imported when a request arrives, not when the plugin
loads (plugins load in every Airflow process, the scheduler's too).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from baseline_guard.access import METRICS_RESOURCE  # the custom view a scraper needs (the Metrics role)

bearer = HTTPBearer(auto_error=False)

# The DAGs whose runs, held approvals, drills and checks the page shows: reading it is reading them.
# (An auth manager answers "may list DAGs" for an account that may read any one of them, so each
# is asked for by name.)
PAGE_DAG_IDS: tuple[str, ...] = (
    "business_check",
    "project_environment_checks",
    "recheck_failing_environments",
    "baseline_code_sync",
    "baseline_schema_sync",
    "baseline_config_sync",
    "test_data_backup",
    "test_data_restore",
    "restore_drill",
    "env_patrol",
)


async def airflow_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Any:
    """The signed-in Airflow user allowed to see the UI and read every DAG the page reports on; 401
    without a valid token, 403 without the right."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView, DagDetails
    from airflow.api_fastapi.core_api.security import get_user

    user = await get_user(request, None, credentials)
    auth = get_auth_manager()
    if not auth.is_authorized_view(access_view=AccessView.WEBSITE, user=user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden")
    if not all(
        auth.is_authorized_dag(method="GET", details=DagDetails(id=dag_id), user=user)
        for dag_id in PAGE_DAG_IDS
    ):  # not named: a DAG this account may not read is not one it should learn of here
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "Baseline health shows the results of every Baseline Guard DAG; this account may not read them all",
        )
    return user


async def metrics_reader(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Any:
    """The signed-in Airflow user allowed to read the metrics (``can_read`` on :data:`METRICS_RESOURCE`
    with the FAB auth manager); 401 without a valid token, 403 without the right."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.core_api.security import get_user

    user = await get_user(request, None, credentials)
    if not get_auth_manager().is_authorized_custom_view(
        method="GET", resource_name=METRICS_RESOURCE, user=user
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden")
    return user
