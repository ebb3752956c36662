"""What the history holds: one check run, its scenario results, and the environment changes it followed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from baseline_guard.checks.results import CheckRun, ScenarioResult, StepStatus


class Trigger(StrEnum):
    """Why a check ran."""

    HOURLY = "hourly"
    ENVIRONMENT_CHANGE = "environment_change"
    CI = "ci"
    RECHECK = "re-check"
    MANUAL = "manual"


@dataclass(frozen=True)
class ScenarioRecord:
    """One scenario's result. Where it failed (module, interface, answering instance and version), or
    for a pass the last step it reached."""

    scenario: str
    suite: str
    passed: bool
    duration_ms: float
    module: str
    interface: str
    instance: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class EnvironmentChange:
    """An environment changed (code, schema or config sync, a deploy by an environment manager, a
    restore): an ``environment_changed`` event, or a change a check step knows it follows.
    ``dag_id``/``run_id``: the Airflow run that made it, when one did (recorded once per run)."""

    environment: str
    changed_at: datetime
    source: str
    changes: list[Any] = field(default_factory=list)
    dag_id: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class CheckRecord:
    """One business-check run against one environment, as the history stores it."""

    environment: str
    started_at: datetime
    finished_at: datetime
    trigger: Trigger
    scenarios: tuple[ScenarioRecord, ...]
    routing_key: str | None = None
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    try_number: int | None = None
    report_url: str | None = None

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.scenarios)

    @property
    def duration_ms(self) -> float:
        return (self.finished_at - self.started_at).total_seconds() * 1000

    @property
    def modules(self) -> list[str]:
        """Every module a scenario reached, in first-seen order."""
        return list(dict.fromkeys(s.module for s in self.scenarios))

    @property
    def failed_modules(self) -> list[str]:
        return list(dict.fromkeys(s.module for s in self.scenarios if not s.passed))


def scenario_record(result: ScenarioResult) -> ScenarioRecord:
    if result.failure is not None:
        f = result.failure
        return ScenarioRecord(
            result.name, result.suite, False, result.duration_ms, f.module, f.interface, f.instance, f.version
        )
    reached = [s for s in result.steps if s.status is not StepStatus.NOT_RUN] or result.steps
    last = reached[-1]
    return ScenarioRecord(
        result.name,
        result.suite,
        result.passed,
        result.duration_ms,
        last.module,
        last.interface,
        last.instance,
        last.version,
    )


def check_record(run: CheckRun, *, trigger: Trigger, **where: Any) -> CheckRecord:
    """The history record of a finished :class:`CheckRun` (``where``: dag_id, run_id, task_id, ...)."""
    return CheckRecord(
        environment=run.environment,
        routing_key=run.routing_key,
        started_at=run.started_at,
        finished_at=run.started_at + timedelta(milliseconds=run.duration_ms),
        trigger=trigger,
        scenarios=tuple(scenario_record(s) for s in run.scenarios),
        **where,
    )
