"""Health measures over the check history: pure functions, exact on hand-built histories.

* An **incident** of a scope (the whole environment, or one module) starts at a failed check and
  ends at the next check that passes for that scope; the environment is *down* in between.
* **Availability** over a window is the share of the observed time not inside an incident.
* **Time to detect**: from the environment change that broke it (the last change after the previous
  check and before the failure) to the first failed check's result. **Time to recover**: from the
  first failed check to the next passing one.
* A **flaky** failure is one whose scenario passes on an immediate re-check (the next run of the same
  scenario on the same environment, within :data:`RECHECK_WINDOW`).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from baseline_guard.health.records import EnvironmentChange

ENVIRONMENT = ""  # the scope of the whole environment; any other scope is a module name
TARGET = 0.99
WINDOWS: dict[str, timedelta] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
RECHECK_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class RunObservation:
    """What one check run saw: which modules it reached and which of them failed."""

    id: int
    started_at: datetime
    finished_at: datetime
    passed: bool
    modules: tuple[str, ...] = ()
    failed_modules: tuple[str, ...] = ()


@dataclass
class Incident:
    scope: str
    started_at: datetime
    detected_at: datetime
    first_failed_run: int
    last_failed_run: int
    failed_checks: int = 1
    ended_at: datetime | None = None
    recovered_run: int | None = None
    previous_check_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.ended_at is None

    def downtime(self, start: datetime, end: datetime) -> timedelta:
        """How much of ``[start, end)`` this incident covers (an open one lasts until ``end``)."""
        lo, hi = max(self.started_at, start), min(self.ended_at or end, end)
        return max(hi - lo, timedelta(0))


def _outcomes(run: RunObservation) -> list[tuple[str, bool]]:
    """(scope, failed) for every scope the run says something about."""
    failed = set(run.failed_modules)
    return [
        (ENVIRONMENT, not run.passed),
        *((m, m in failed) for m in dict.fromkeys((*run.modules, *failed))),
    ]


def incidents(runs: Iterable[RunObservation]) -> list[Incident]:
    """Incidents of the environment and of each module, in order of start."""
    found: list[Incident] = []
    open_: dict[str, Incident] = {}
    last_seen: dict[str, datetime] = {}
    for run in sorted(runs, key=lambda r: (r.started_at, r.id)):
        for scope, failed in _outcomes(run):
            current = open_.get(scope)
            if failed and current is None:
                current = Incident(
                    scope,
                    run.started_at,
                    run.finished_at,
                    run.id,
                    run.id,
                    previous_check_at=last_seen.get(scope),
                )
                open_[scope] = current
                found.append(current)
            elif failed and current is not None:
                current.last_failed_run = run.id
                current.failed_checks += 1
            elif current is not None:
                current.ended_at, current.recovered_run = run.started_at, run.id
                del open_[scope]
            last_seen[scope] = run.started_at
    return found


def availability(
    scope_incidents: Iterable[Incident], *, start: datetime, end: datetime, observed_from: datetime | None
) -> float | None:
    """Share of ``[max(start, observed_from), end)`` outside the incidents; ``None`` if nothing was observed."""
    if observed_from is None:
        return None
    lo = max(start, observed_from)
    if lo >= end:
        return None
    down = sum((i.downtime(lo, end) for i in scope_incidents), timedelta(0))
    return 1 - down / (end - lo)


def cause(incident: Incident, changes: Iterable[EnvironmentChange]) -> EnvironmentChange | None:
    """The environment change that most likely broke it: the last one after the previous check and
    no later than the failed check."""
    candidates = [
        c
        for c in changes
        if c.changed_at <= incident.started_at
        and (incident.previous_check_at is None or c.changed_at > incident.previous_check_at)
    ]
    return max(candidates, key=lambda c: c.changed_at, default=None)


def time_to_detect(incident: Incident, changes: Iterable[EnvironmentChange]) -> timedelta | None:
    found = cause(incident, changes)
    return incident.detected_at - found.changed_at if found else None


def time_to_recover(incident: Incident) -> timedelta | None:
    return incident.ended_at - incident.started_at if incident.ended_at else None


def median_seconds(values: Iterable[timedelta | None]) -> float | None:
    seconds = [v.total_seconds() for v in values if v is not None]
    return statistics.median(seconds) if seconds else None


@dataclass(frozen=True)
class ScenarioObservation:
    environment: str
    scenario: str
    checked_at: datetime
    passed: bool
    module: str = ""
    interface: str = ""


@dataclass(frozen=True)
class FlakyScenario:
    environment: str
    scenario: str
    module: str
    interface: str
    failures: int
    flaky_failures: int


def flaky_scenarios(
    results: Sequence[ScenarioObservation],
    *,
    since: datetime | None = None,
    window: timedelta = RECHECK_WINDOW,
) -> list[FlakyScenario]:
    """Scenarios with at least one failure (at or after ``since``) that passed on an immediate re-check,
    most flaky first. ``module``/``interface`` are those of the latest flaky failure."""
    by_scenario: dict[tuple[str, str], list[ScenarioObservation]] = {}
    for r in sorted(results, key=lambda r: r.checked_at):
        by_scenario.setdefault((r.environment, r.scenario), []).append(r)
    found = []
    for (environment, scenario), history in by_scenario.items():
        failures, flaky, where = 0, 0, ("", "")
        for failed, following in zip(history, [*history[1:], None], strict=True):
            if failed.passed or (since is not None and failed.checked_at < since):
                continue
            failures += 1
            if (
                following is not None
                and following.passed
                and following.checked_at - failed.checked_at <= window
            ):
                flaky += 1
                where = (failed.module, failed.interface)
        if flaky:
            found.append(FlakyScenario(environment, scenario, *where, failures, flaky))
    return sorted(found, key=lambda f: (-f.flaky_failures, f.environment, f.scenario))
