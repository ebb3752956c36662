"""Which environments the minute re-check picks: open whole-environment outages younger than the window."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from baseline_guard.clock import run_as_of
from baseline_guard.health.recheck import failing_environments
from baseline_guard.health.store import HistoryStore
from history_fixtures import HISTORY, T0, check, m


def test_an_outage_is_re_checked_while_young_and_not_once_it_ended(store: HistoryStore) -> None:
    for record in HISTORY[:3]:  # baseline fails at T0+1:00 and still fails at 1:10
        store.record(record)
    store.record(check(m(30), ("search_hotels",), environment="proj-a"))  # proj-a fails from T0+0:30

    assert failing_environments(store, as_of=T0 + m(75)) == ["baseline", "proj-a"]
    assert failing_environments(store, as_of=T0 + m(100)) == ["baseline"]  # proj-a's outage is older than 1 h
    assert failing_environments(store, as_of=T0 + m(100), within=timedelta(hours=2)) == ["baseline", "proj-a"]

    store.record(HISTORY[3])  # baseline passes at T0+2:00
    assert failing_environments(store, as_of=T0 + m(121), within=timedelta(hours=3)) == ["proj-a"]


def test_a_run_time_from_airflow_counts_back_in_its_time_zone(store: HistoryStore) -> None:
    for record in HISTORY[:2]:
        store.record(record)
    as_of = T0 + m(75)  # as Airflow gives it (pendulum), whose own arithmetic would drop the zone
    airflow_as_of = pendulum.instance(as_of).replace(tzinfo=as_of.tzinfo)
    run_time = run_as_of({"data_interval_end": airflow_as_of})
    assert (run_time - timedelta(hours=1)).tzinfo is not None
    assert failing_environments(store, as_of=run_time) == ["baseline"]
