"""Registers Baseline Guard's operator extra links with Airflow (the UI needs them by name)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from baseline_guard.operators.business_check import BusinessCheckReportLink
from baseline_guard.ui.app import URL_PREFIX, airflow_app


class BaselineGuardPlugin(AirflowPlugin):
    name = "baseline_guard"
    operator_extra_links = [BusinessCheckReportLink()]
    # the "Baseline health" page: a FastAPI app behind Airflow's auth, and its entry in the nav bar
    fastapi_apps = [{"app": airflow_app(), "url_prefix": URL_PREFIX, "name": "Baseline health"}]
    external_views = [
        {
            "name": "Baseline health",
            "href": f"{URL_PREFIX}/",
            "url_route": "baseline-health",
            "destination": "nav",
        }
    ]
