"""The health report: everything the "Baseline health" page shows, as one JSON-ready model.

Built from the store's small tables (current state, incidents) plus the flaky query, so its cost
does not grow with the number of check runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from baseline_guard.health import measures
from baseline_guard.health.measures import ENVIRONMENT, TARGET, WINDOWS, Incident
from baseline_guard.health.protection import Protection, Provider, collect
from baseline_guard.health.store import HistoryStore, RunRef, StoredIncident

RUN_URL = "/dags/{dag_id}/runs/{run_id}"  # the Airflow UI's page of a DAG run
State = Literal["passing", "failing"]


class RunLink(BaseModel):
    dag_id: str | None
    run_id: str | None
    url: str | None = Field(description="The run in the Airflow UI.")
    report_url: str | None = Field(description="The business-check HTML report of the run.")
    started_at: datetime


class WindowAvailability(BaseModel):
    availability: float | None = Field(description="Share of the observed time up, 0..1; null: not observed.")
    meets_target: bool | None
    downtime_s: float
    incidents: int
    time_to_detect_s: float | None = Field(description="Median, over incidents with a known cause.")
    time_to_recover_s: float | None = Field(description="Median, over recovered incidents.")


class ModuleHealth(BaseModel):
    name: str
    state: State
    checked_at: datetime
    interface: str | None = Field(description="Where it fails now (null when passing).")
    instance: str | None
    version: str | None
    availability: dict[str, float | None]


class Cause(BaseModel):
    source: str
    changed_at: datetime
    changes: list[Any]


class IncidentView(BaseModel):
    module: str | None = Field(description="null: the environment as a whole.")
    started_at: datetime
    ended_at: datetime | None
    duration_s: float
    failed_checks: int
    first_failed_run: RunLink
    cause: Cause | None
    time_to_detect_s: float | None


class FlakyView(BaseModel):
    scenario: str
    module: str | None
    interface: str | None
    failures: int
    flaky_failures: int


class EnvironmentHealth(BaseModel):
    name: str
    routing_key: str | None
    state: State
    last_checked_at: datetime
    last_run: RunLink
    failing_modules: list[str]
    availability: dict[str, WindowAvailability]
    down_24h: list[tuple[datetime, datetime]] = Field(
        description="Down periods of the last 24 h (for the strip)."
    )
    modules: list[ModuleHealth]
    open_incidents: list[IncidentView]
    recent_incidents: list[IncidentView] = Field(description="Ended within the last 24 h, newest first.")
    flaky: list[FlakyView] = Field(description="Flaky scenarios over the last 7 days.")
    protection: Protection


class HealthReport(BaseModel):
    generated_at: datetime
    target: float
    windows: list[str]
    environments: list[EnvironmentHealth]


def run_link(ref: RunRef, run_url: str = RUN_URL) -> RunLink:
    url = run_url.format(dag_id=ref.dag_id, run_id=ref.run_id) if ref.dag_id and ref.run_id else None
    return RunLink(
        dag_id=ref.dag_id, run_id=ref.run_id, url=url, report_url=ref.report_url, started_at=ref.started_at
    )


def _window(
    incidents: Sequence[StoredIncident], start: datetime, now: datetime, observed_from: datetime
) -> WindowAvailability:
    scoped = [s for s in incidents if (s.incident.ended_at or now) > start]
    value = measures.availability(
        [s.incident for s in scoped], start=start, end=now, observed_from=observed_from
    )
    lo = max(start, observed_from)
    return WindowAvailability(
        availability=value,
        meets_target=None if value is None else value >= TARGET,
        downtime_s=sum(s.incident.downtime(lo, now).total_seconds() for s in scoped),
        incidents=len(scoped),
        time_to_detect_s=measures.median_seconds(_detect(s) for s in scoped),
        time_to_recover_s=measures.median_seconds(measures.time_to_recover(s.incident) for s in scoped),
    )


def _detect(stored: StoredIncident) -> timedelta | None:
    return measures.time_to_detect(stored.incident, [stored.cause]) if stored.cause else None


def _incident_view(stored: StoredIncident, now: datetime, run_url: str) -> IncidentView:
    i: Incident = stored.incident
    detect = _detect(stored)
    return IncidentView(
        module=i.scope or None,
        started_at=i.started_at,
        ended_at=i.ended_at,
        duration_s=((i.ended_at or now) - i.started_at).total_seconds(),
        failed_checks=i.failed_checks,
        first_failed_run=run_link(stored.first_failed, run_url),
        cause=Cause(
            source=stored.cause.source, changed_at=stored.cause.changed_at, changes=list(stored.cause.changes)
        )
        if stored.cause
        else None,
        time_to_detect_s=detect.total_seconds() if detect else None,
    )


def build_report(
    store: HistoryStore, now: datetime, *, providers: Sequence[Provider] = (), run_url: str = RUN_URL
) -> HealthReport:
    longest = max(WINDOWS.values())
    environments = store.environments()
    incidents = store.incidents(now - longest)
    modules = store.modules()
    flaky = store.flaky(now - WINDOWS["7d"])
    protection = collect([e.environment for e in environments], now, providers)
    report = []
    for env in environments:
        mine = [s for s in incidents if s.environment == env.environment]
        whole = [s for s in mine if s.incident.scope == ENVIRONMENT]
        by_module: dict[str, list[StoredIncident]] = {}
        for s in mine:
            if s.incident.scope != ENVIRONMENT:
                by_module.setdefault(s.incident.scope, []).append(s)
        module_views = [
            ModuleHealth(
                name=m.module,
                state="passing" if m.passed else "failing",
                checked_at=m.checked_at,
                interface=m.interface,
                instance=m.instance,
                version=m.version,
                availability={
                    w: measures.availability(
                        [s.incident for s in by_module.get(m.module, [])],
                        start=now - d,
                        end=now,
                        observed_from=env.first_checked_at,
                    )
                    for w, d in WINDOWS.items()
                },
            )
            for m in modules
            if m.environment == env.environment
        ]
        day = now - WINDOWS["24h"]
        report.append(
            EnvironmentHealth(
                name=env.environment,
                routing_key=env.routing_key,
                state="passing" if env.passed else "failing",
                last_checked_at=env.last_checked_at,
                last_run=run_link(env.last_run, run_url),
                failing_modules=[m.name for m in module_views if m.state == "failing"],
                availability={
                    w: _window(whole, now - d, now, env.first_checked_at) for w, d in WINDOWS.items()
                },
                down_24h=[
                    (max(s.incident.started_at, day), s.incident.ended_at or now)
                    for s in whole
                    if (s.incident.ended_at or now) > day
                ],
                modules=module_views,
                open_incidents=[_incident_view(s, now, run_url) for s in mine if s.incident.is_open],
                recent_incidents=[
                    _incident_view(s, now, run_url)
                    for s in reversed(mine)
                    if s.incident.ended_at and s.incident.ended_at > day
                ],
                flaky=[
                    FlakyView(
                        scenario=f.scenario,
                        module=f.module,
                        interface=f.interface,
                        failures=f.failures,
                        flaky_failures=f.flaky_failures,
                    )
                    for f in flaky
                    if f.environment == env.environment
                ],
                protection=protection[env.environment],
            )
        )
    return HealthReport(generated_at=now, target=TARGET, windows=list(WINDOWS), environments=report)
