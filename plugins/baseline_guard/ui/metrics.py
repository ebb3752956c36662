"""``/baseline-guard/metrics``: the health report's measures in Prometheus' exposition format.

A custom collector (:class:`HealthCollector`) turns one :class:`MetricsSnapshot` (the page's health
report, the history's running totals and the syncs' last outcomes) into metric families; the
snapshot is read at most once per cache period, in the background once one exists
(:class:`CachedSnapshot`), so scrapes by several Prometheus servers, or a short scrape interval, cost
no more history queries, and no scrape waits for one. Nothing is kept in
global mutable metrics: every scrape renders what the snapshot says.

Labels are bounded: ``environment``, ``module``, ``interface`` (from the scenario suites),
``window`` (24h, 7d, 30d), ``slot`` (the four protection slots), ``sync`` (code, schema, config),
``source`` (an environment change's origin, folded into a few kinds), ``result``. Never a run id.
Times are exported as Unix timestamps (``..._timestamp_seconds``); ages are ``time() - ...`` in
PromQL (deploy/prometheus/rules.yml records them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from baseline_guard.health.protection import SLOTS
from baseline_guard.health.report import HealthReport
from baseline_guard.health.store import HistoryTotals
from baseline_guard.ui.syncs import SYNC_DAGS, SyncOutcome

PREFIX = "baseline_guard"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CACHE_PERIOD = timedelta(seconds=30)
# seconds: time to detect is minutes after a change (hourly checks at worst); recovery can take hours
DETECT_BUCKETS = (30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)
RECOVER_BUCKETS = (60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0)


@dataclass(frozen=True)
class MetricsSnapshot:
    """What one scrape shows. ``syncs`` is None when Airflow's runs could not be read."""

    report: HealthReport
    totals: HistoryTotals
    syncs: Sequence[SyncOutcome] | None


SnapshotReader = Callable[[], MetricsSnapshot]


class CachedSnapshot:
    """The snapshot ``read`` returns, read at most once per ``ttl``, and never while a scrape waits once one
    was read: a scrape that finds the snapshot older than ``ttl`` gets it as it is and starts one read in
    the background for the next scrape (with Prometheus scraping every ``ttl``, no scrape pays the read).
    A snapshot older than ``max_age`` (nobody scraped for a while) is read again before answering. A
    failed read is kept like a snapshot (the endpoint answers 503), so a history database that is down is
    not asked again on every scrape.
    """

    def __init__(
        self,
        read: SnapshotReader,
        *,
        ttl: timedelta = CACHE_PERIOD,
        max_age: timedelta | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._ttl = ttl.total_seconds()
        self._max_age = (max_age or 3 * ttl).total_seconds()
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, MetricsSnapshot | Exception] | None = None
        self._refresh: threading.Thread | None = None
        self.reads = 0

    def _read_now(self) -> tuple[float, MetricsSnapshot | Exception]:
        self.reads += 1
        started = self._clock()
        try:
            return started, self._read()
        except Exception as exc:
            return started, exc

    def _read_in_background(self) -> None:
        found = self._read_now()
        with self._lock:
            self._cached = found
            self._refresh = None

    def __call__(self) -> MetricsSnapshot:
        with self._lock:  # concurrent scrapes wait for one read instead of repeating it
            age = None if self._cached is None else self._clock() - self._cached[0]
            if age is None or age >= self._max_age:
                self._cached = self._read_now()
            elif age >= self._ttl and self._refresh is None:
                self._refresh = threading.Thread(
                    target=self._read_in_background, name="baseline-guard-metrics", daemon=True
                )
                self._refresh.start()
            found = self._cached[1]
        if isinstance(found, Exception):
            raise found
        return found

    def join(self, timeout: float = 30.0) -> None:
        """Wait for a background read to end (tests, shutdown)."""
        thread = self._refresh
        if thread is not None:
            thread.join(timeout)


def _ts(at: datetime | None) -> float | None:
    return at.timestamp() if at is not None else None


def change_kind(source: str) -> str:
    """An environment change's source folded into a bounded label value."""
    for sync, dag_id in SYNC_DAGS.items():
        if source == dag_id:
            return f"{sync}_sync"
    return "restore" if "restore" in source else "other"


def _histogram(
    name: str, doc: str, values: Iterable[tuple[str, float]], buckets: Sequence[float]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=["environment"])
    by_env: dict[str, list[float]] = {}
    for env, value in values:
        by_env.setdefault(env, []).append(value)
    for env, found in sorted(by_env.items()):
        cumulative = [(floatToGoString(b), float(sum(1 for v in found if v <= b))) for b in buckets]
        family.add_metric([env], [*cumulative, ("+Inf", float(len(found)))], sum_value=sum(found))
    return family


def families(snapshot: MetricsSnapshot) -> list[Metric]:
    """Every metric family of the snapshot (pure: the same snapshot gives the same text)."""
    report, totals = snapshot.report, snapshot.totals

    def gauge(name: str, doc: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
        return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=list(labels))

    generated = gauge(
        "report_generated_timestamp_seconds", "When the health report of this scrape was built."
    )
    generated.add_metric([], report.generated_at.timestamp())
    target = gauge("availability_target_ratio", "The availability target (SLO) of every environment.")
    target.add_metric([], report.target)
    availability = gauge(
        "availability_ratio",
        "Share of the observed window the environment was up (its business checks passing).",
        ["environment", "window"],
    )
    detect_median = gauge(
        "time_to_detect_median_seconds",
        "Median time from the breaking change to the failed check, over the window's incidents.",
        ["environment", "window"],
    )
    recover_median = gauge(
        "time_to_recover_median_seconds",
        "Median time from the first failed check to the next passing one, over the window's incidents.",
        ["environment", "window"],
    )
    failing = gauge("environment_failing", "1 when the last business check failed.", ["environment"])
    failing_since = gauge(
        "environment_failing_since_timestamp_seconds",
        "Start of the open outage (the first failed check); absent while passing.",
        ["environment"],
    )
    last_check = gauge(
        "last_check_timestamp_seconds", "Start of the last recorded business check.", ["environment"]
    )
    module_failing = gauge(
        "module_failing", "1 when the module failed in its last check.", ["environment", "module"]
    )
    open_incidents = gauge(
        "open_incidents", "Open incidents: the environment's and each failing module's.", ["environment"]
    )
    flaky = gauge(
        "flaky_scenarios",
        "Scenarios that failed and passed on the immediate re-check (7 days).",
        ["environment"],
    )
    available = gauge(
        "protection_available", "1 when the protection slot's source could be read.", ["environment", "slot"]
    )
    attention = gauge(
        "protection_attention",
        "1 when the protection slot needs attention (red on the page).",
        ["environment", "slot"],
    )
    drift = gauge("drift_services", "Services running another version than production.", ["environment"])
    drift_since = gauge(
        "drift_since_timestamp_seconds", "Since when the earliest drifting service differs.", ["environment"]
    )
    held = gauge("held_approvals", "Schema and config changes waiting for a person.", ["environment"])
    held_since = gauge(
        "held_approvals_since_timestamp_seconds", "Since when the oldest held change waits.", ["environment"]
    )
    backup = gauge("last_backup_timestamp_seconds", "When the last backup was taken.", ["environment"])
    restore = gauge(
        "last_proven_restore_timestamp_seconds",
        "When a restore drill last proved a backup restorable.",
        ["environment"],
    )
    for env in report.environments:
        for window, w in env.availability.items():
            if w.availability is not None:
                availability.add_metric([env.name, window], w.availability)
            if w.time_to_detect_s is not None:
                detect_median.add_metric([env.name, window], w.time_to_detect_s)
            if w.time_to_recover_s is not None:
                recover_median.add_metric([env.name, window], w.time_to_recover_s)
        failing.add_metric([env.name], float(env.state == "failing"))
        whole_open = [i for i in env.open_incidents if i.module is None]
        if env.state == "failing" and whole_open:
            failing_since.add_metric([env.name], min(i.started_at for i in whole_open).timestamp())
        last_check.add_metric([env.name], env.last_checked_at.timestamp())
        for m in env.modules:
            module_failing.add_metric([env.name, m.name], float(m.state == "failing"))
        open_incidents.add_metric([env.name], float(len(env.open_incidents)))
        flaky.add_metric([env.name], float(len(env.flaky)))
        for slot in SLOTS:
            item = getattr(env.protection, slot)
            known = item.status != "not_available"
            available.add_metric([env.name, slot], float(known))
            if not known:
                continue
            attention.add_metric([env.name, slot], float(item.status == "attention"))
            if slot == "drift":
                drift.add_metric([env.name], float(len(item.details)))
                if item.since is not None:
                    drift_since.add_metric([env.name], item.since.timestamp())
            elif slot == "held_approvals":
                held.add_metric([env.name], float(len(item.details)))
                if item.since is not None:
                    held_since.add_metric([env.name], item.since.timestamp())
            elif slot == "last_backup" and item.at is not None:
                backup.add_metric([env.name], item.at.timestamp())
            elif slot == "last_proven_restore" and item.at is not None:
                restore.add_metric([env.name], item.at.timestamp())

    runs = CounterMetricFamily(
        f"{PREFIX}_check_runs", "Business-check runs recorded.", labels=["environment", "result"]
    )
    results = CounterMetricFamily(
        f"{PREFIX}_scenario_results", "Scenario results recorded.", labels=["environment"]
    )
    scenario_sums: dict[str, int] = {}
    for env_name, passed, count, scenarios in totals.runs:
        runs.add_metric([env_name, "passed" if passed else "failed"], count)
        scenario_sums[env_name] = scenario_sums.get(env_name, 0) + scenarios
    for env_name, n in sorted(scenario_sums.items()):
        results.add_metric([env_name], n)
    failed_scenarios = CounterMetricFamily(
        f"{PREFIX}_failed_scenarios",
        "Failed scenario results, by the module and interface where they failed.",
        labels=["environment", "module", "interface"],
    )
    for env_name, module, interface, n in totals.failed_scenarios:
        failed_scenarios.add_metric([env_name, module, interface], n)
    module_failures = CounterMetricFamily(
        f"{PREFIX}_module_failed_checks",
        "Check runs that failed in the module.",
        labels=["environment", "module"],
    )
    for env_name, module, n in totals.failed_module_checks:
        module_failures.add_metric([env_name, module], n)
    downtime = CounterMetricFamily(
        f"{PREFIX}_downtime_seconds",
        "Seconds the environment spent in incidents (an open one grows); rate() is the error ratio.",
        labels=["environment"],
    )
    for env_name, seconds in sorted(totals.downtime_s.items()):
        downtime.add_metric([env_name], seconds)
    detect = _histogram(
        f"{PREFIX}_incident_time_to_detect_seconds",
        "Time from the breaking environment change to the failed check, per incident with a known cause.",
        ((e, d) for e, d, _ in totals.incident_times if d is not None),
        DETECT_BUCKETS,
    )
    recover = _histogram(
        f"{PREFIX}_incident_time_to_recover_seconds",
        "Time from the first failed check to the next passing one, per recovered incident.",
        ((e, r) for e, _, r in totals.incident_times if r is not None),
        RECOVER_BUCKETS,
    )
    changes = gauge(
        "environment_change_last_timestamp_seconds",
        "The last recorded environment change, by kind of source.",
        ["environment", "source"],
    )
    latest: dict[tuple[str, str], float] = {}
    for env_name, source, at in totals.last_changes:
        key = (env_name, change_kind(source))
        latest[key] = max(latest.get(key, 0.0), at.timestamp())
    for key, at_s in sorted(latest.items()):
        changes.add_metric(list(key), at_s)

    syncs_readable = gauge("sync_runs_readable", "1 when Airflow's sync runs could be read.")
    syncs_readable.add_metric([], float(snapshot.syncs is not None))
    sync_at = gauge(
        "sync_last_finished_timestamp_seconds", "When the sync's last finished run ended.", ["sync"]
    )
    sync_ok = gauge("sync_last_succeeded", "1 when the sync's last finished run succeeded.", ["sync"])
    for outcome in snapshot.syncs or ():
        sync_at.add_metric([outcome.sync], outcome.finished_at.timestamp())
        sync_ok.add_metric([outcome.sync], float(outcome.succeeded))

    return [
        generated,
        target,
        availability,
        detect_median,
        recover_median,
        failing,
        failing_since,
        last_check,
        module_failing,
        open_incidents,
        flaky,
        available,
        attention,
        drift,
        drift_since,
        held,
        held_since,
        backup,
        restore,
        runs,
        results,
        failed_scenarios,
        module_failures,
        downtime,
        detect,
        recover,
        changes,
        syncs_readable,
        sync_at,
        sync_ok,
    ]


class HealthCollector(Collector):
    """A Prometheus collector over the cached snapshot (reads nothing itself)."""

    def __init__(self, snapshot: SnapshotReader) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        yield from families(self._snapshot())


def metrics_registry(snapshot: SnapshotReader) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HealthCollector(snapshot))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
