"""Registers Baseline Guard's operator extra links with Airflow (the UI needs them by name)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from baseline_guard.operators.business_check import BusinessCheckReportLink


class BaselineGuardPlugin(AirflowPlugin):
    name = "baseline_guard"
    operator_extra_links = [BusinessCheckReportLink()]
