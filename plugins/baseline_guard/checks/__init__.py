"""Business checks: run scenario suites (chains of HTTP calls across modules) against an environment.

Plain Python, no Airflow import, so the operator, the CLI (``python -m baseline_guard.checks``) and
tests all use the same engine::

    suites = load_suites("include/scenarios")
    run = run_checks(suites, "http://127.0.0.1:8080", environment="baseline", tags=["smoke"])
    run.passed, run.broken_modules()  # {"pricing": {"POST /quotes": ["book-paris-double", ...]}}
"""

from __future__ import annotations

from baseline_guard.checks.loader import load_suite, load_suites
from baseline_guard.checks.results import (
    CheckRun,
    Failure,
    FailureKind,
    InterfaceHealth,
    RequestRecord,
    ResponseRecord,
    ScenarioResult,
    StepResult,
    StepStatus,
    Suspect,
)
from baseline_guard.checks.runner import run_checks, run_checks_async, select_scenarios
from baseline_guard.checks.suite import Scenario, Step, Suite

__all__ = [
    "CheckRun",
    "Failure",
    "FailureKind",
    "InterfaceHealth",
    "RequestRecord",
    "ResponseRecord",
    "Scenario",
    "ScenarioResult",
    "Step",
    "StepResult",
    "StepStatus",
    "Suite",
    "Suspect",
    "load_suite",
    "load_suites",
    "run_checks",
    "run_checks_async",
    "select_scenarios",
]
