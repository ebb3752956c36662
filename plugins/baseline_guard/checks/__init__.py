"""Business checks: run scenario suites (chains of HTTP calls across modules) against an environment.

Plain Python, no Airflow import, so the operator, the CLI (``python -m baseline_guard.checks``) and
tests all use the same engine::

    suites = load_suites("include/scenarios")
    run = run_checks(suites, "http://127.0.0.1:8080", environment="baseline", tags=["smoke"])
    run.passed, run.broken_modules()  # {"pricing": {"POST /quotes": ["book-paris-double", ...]}}

Engine names are exported lazily: importing one light module of this package loads nothing else.
"""

from __future__ import annotations

from baseline_guard._lazy import lazy_exports

_EXPORTS = {
    "CheckRun": "results",
    "Failure": "results",
    "FailureKind": "results",
    "InterfaceHealth": "results",
    "RequestRecord": "results",
    "ResponseRecord": "results",
    "Scenario": "suite",
    "ScenarioResult": "results",
    "Step": "suite",
    "StepResult": "results",
    "StepStatus": "results",
    "Suite": "suite",
    "Suspect": "results",
    "load_suite": "loader",
    "load_suites": "loader",
    "run_checks": "runner",
    "run_checks_async": "runner",
    "select_scenarios": "runner",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
