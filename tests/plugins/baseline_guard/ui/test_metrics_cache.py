"""The metrics' cache (one history read per cache period) and the background refresher of the page's
protection slots (the first request finds them read)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from baseline_guard.health.protection_state import CachedProtectionState
from baseline_guard.health.report import HealthReport
from baseline_guard.protection.state import ProtectionState
from baseline_guard.ui.metrics import CachedSnapshot, MetricsSnapshot, change_kind
from baseline_guard.ui.refresher import Refresher


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_read_per_cache_period_whatever_the_scrapes() -> None:
    clock, reads = Clock(), []

    def read() -> float:
        reads.append(clock.now)
        return clock.now

    cache = CachedSnapshot(read, ttl=timedelta(seconds=30), clock=clock)  # type: ignore[arg-type]
    served = []
    for t in range(0, 90, 5):  # a scrape every 5 s for 90 s
        clock.now = float(t)
        served.append(cache())
        cache.join()
    assert reads == [0.0, 30.0, 60.0]
    # the scrape that finds the snapshot expired gets it as it is; the next one gets the new read
    assert served[6] == 0.0 and served[7] == 30.0


def test_no_scrape_waits_for_a_read_once_a_snapshot_exists() -> None:
    clock, release = Clock(), threading.Event()
    values = iter([1, 2])

    def read() -> int:
        if clock.now:
            assert release.wait(10)
        return next(values)

    cache = CachedSnapshot(read, ttl=timedelta(seconds=30), clock=clock)  # type: ignore[arg-type]
    assert cache() == 1
    clock.now = 31.0
    t0 = time.monotonic()
    assert cache() == 1 and cache() == 1  # the read runs in the background, blocked
    assert time.monotonic() - t0 < 1 and cache.reads == 2
    release.set()
    cache.join()
    assert cache() == 2


def test_a_snapshot_nobody_scraped_for_long_is_read_before_answering() -> None:
    clock = Clock()
    cache = CachedSnapshot(lambda: clock.now, ttl=timedelta(seconds=30), clock=clock)  # type: ignore[arg-type,return-value]
    assert cache() == 0.0
    clock.now = 3600.0
    assert cache() == 3600.0


def test_concurrent_scrapes_wait_for_one_read() -> None:
    reads = []

    def slow() -> int:
        reads.append(1)
        time.sleep(0.3)
        return len(reads)

    cache = CachedSnapshot(slow, ttl=timedelta(seconds=30))  # type: ignore[arg-type]
    threads = [threading.Thread(target=cache) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(reads) == 1


def test_a_failed_read_is_remembered_for_the_period() -> None:
    clock, calls = Clock(), []

    def down() -> None:
        calls.append(1)
        raise ConnectionError("history down")

    cache = CachedSnapshot(down, ttl=timedelta(seconds=30), clock=clock)  # type: ignore[arg-type]
    for _ in range(3):
        with pytest.raises(ConnectionError):
            cache()
    assert len(calls) == 1


def test_the_refresher_reads_the_slots_before_any_request() -> None:
    reads: list[datetime] = []

    def read(as_of: datetime) -> ProtectionState:
        reads.append(as_of)
        return ProtectionState(
            as_of=as_of, environments=[], held_schema_approvals=[], pending_config_decisions=[]
        )

    provider = CachedProtectionState(read, ttl=timedelta(seconds=60))
    refresher = Refresher(provider.refresh, provider.ttl)
    refresher.start()
    try:
        deadline = time.monotonic() + 10
        while not refresher.refreshed and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(reads) == 1
        assert provider(["baseline"], datetime.now(UTC)) == {}  # served from the refresher's read
        assert len(reads) == 1
    finally:
        refresher.stop()
    assert not any(t.name == "baseline-guard-refresher" for t in threading.enumerate())


def test_a_failing_refresh_is_retried_at_the_next_tick() -> None:
    calls = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("environment API down")

    refresher = Refresher(flaky, timedelta(seconds=0.1))
    refresher.start()
    try:
        deadline = time.monotonic() + 10
        while refresher.refreshed < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        refresher.stop()
    assert len(calls) >= 2 and refresher.refreshed >= 1


def test_change_sources_fold_into_a_few_label_values() -> None:
    assert change_kind("baseline_code_sync") == "code_sync"
    assert change_kind("baseline_schema_sync") == "schema_sync"
    assert change_kind("test_data_restore") == "restore"
    assert change_kind("envmgr-deploy-7f3a") == "other"


def test_the_app_starts_the_refresher_with_its_lifespan_and_guards_metrics_apart() -> None:
    from baseline_guard.ui.app import create_app
    from fastapi import Depends, HTTPException
    from fastapi.testclient import TestClient

    refreshed = threading.Event()
    refresher = Refresher(refreshed.set, timedelta(seconds=60))

    def page_only() -> None:  # a user who may read the page but not the metrics
        return None

    def no_metrics() -> None:
        raise HTTPException(403, "Forbidden")

    def no_history() -> HealthReport:
        raise LookupError("no history database configured")

    def not_to_be_read() -> MetricsSnapshot:
        raise AssertionError("the metrics were read for a caller without the right")

    app = create_app(
        no_history,
        dependencies=(Depends(page_only),),
        metrics=not_to_be_read,
        metrics_dependencies=(Depends(no_metrics),),
        refresher=refresher,
    )
    with TestClient(app) as client:
        assert refreshed.wait(10)  # before any request
        assert client.get("/metrics").status_code == 403
        assert client.get("/api/health").status_code == 503  # the page's own guard let it through
    assert refresher._thread is None  # stopped with the app


def test_a_request_during_the_first_background_read_waits_for_it_instead_of_reading_again() -> None:
    reads, started = [], threading.Event()

    def slow(as_of: datetime) -> ProtectionState:
        reads.append(as_of)
        started.set()
        time.sleep(0.5)
        return ProtectionState(
            as_of=as_of, environments=[], held_schema_approvals=[], pending_config_decisions=[]
        )

    provider = CachedProtectionState(slow, ttl=timedelta(seconds=60))
    refresher = Refresher(provider.refresh, provider.ttl)
    refresher.start()
    try:
        assert started.wait(10)
        assert provider(["baseline"], datetime.now(UTC)) == {}
        assert len(reads) == 1
    finally:
        refresher.stop()


def test_metrics_answer_503_while_the_history_cannot_be_read() -> None:
    import psycopg2
    from baseline_guard.ui.app import create_app
    from fastapi.testclient import TestClient

    def history_down() -> MetricsSnapshot:
        raise psycopg2.OperationalError("connection refused")

    app = create_app(
        lambda: None,  # type: ignore[arg-type,return-value]
        dependencies=(),
        metrics=CachedSnapshot(history_down),
        metrics_dependencies=(),
    )
    with TestClient(app) as client:
        r = client.get("/metrics")
    assert r.status_code == 503 and "OperationalError" in r.text and "refused" not in r.text
