"""Registers Baseline Guard with Airflow: operator extra links (the UI needs them by name) and the
REST guard that refuses unknown or oversize run conf before a run exists."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from baseline_guard.operators.business_check import BusinessCheckReportLink
from baseline_guard.rest_guard import StrictConfMiddleware


class BaselineGuardPlugin(AirflowPlugin):
    name = "baseline_guard"
    operator_extra_links = [BusinessCheckReportLink()]
    fastapi_root_middlewares = [
        {"middleware": StrictConfMiddleware, "name": "Baseline Guard strict run conf"}
    ]
