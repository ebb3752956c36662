"""Registers Baseline Guard with Airflow: operator extra links (the UI needs them by name), the
REST guard that refuses unknown or oversize run conf before a run exists, and the "Baseline
health" page (a FastAPI app behind Airflow's auth) with its entry in the nav bar."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from baseline_guard.operators.business_check import BusinessCheckReportLink
from baseline_guard.rest_guard import StrictConfMiddleware
from baseline_guard.ui.app import URL_PREFIX, airflow_app


class BaselineGuardPlugin(AirflowPlugin):
    name = "baseline_guard"
    operator_extra_links = [BusinessCheckReportLink()]
    fastapi_root_middlewares = [
        {"middleware": StrictConfMiddleware, "name": "Baseline Guard strict run conf"}
    ]
    fastapi_apps = [{"app": airflow_app(), "url_prefix": URL_PREFIX, "name": "Baseline health"}]
    external_views = [
        {
            "name": "Baseline health",
            "href": f"{URL_PREFIX}/",
            "url_route": "baseline-health",
            "destination": "nav",
        }
    ]
