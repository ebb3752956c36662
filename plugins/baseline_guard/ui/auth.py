"""The page's guard: Airflow's own authentication (the JWT in the ``Authorization`` header or the UI's
``_token`` cookie, validated by Airflow's ``get_user``) and the auth manager's "website" permission.

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


async def airflow_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Any:
    """The signed-in Airflow user allowed to see the UI; 401 without a valid token, 403 without the right."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import get_user

    user = await get_user(request, None, credentials)
    if not get_auth_manager().is_authorized_view(access_view=AccessView.WEBSITE, user=user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden")
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
