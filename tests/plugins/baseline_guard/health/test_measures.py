"""The measures on a hand-built history: exact numbers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from baseline_guard.health import measures
from baseline_guard.health.measures import ENVIRONMENT, RunObservation, ScenarioObservation
from history_fixtures import CHANGE, END, HISTORY, T0, m


def observations() -> list[RunObservation]:
    return [
        RunObservation(n, c.started_at, c.finished_at, c.passed, tuple(c.modules), tuple(c.failed_modules))
        for n, c in enumerate(HISTORY, 1)
    ]


def test_incidents_per_environment_and_module() -> None:
    found = measures.incidents(reversed(observations()))  # order of arrival does not matter
    assert [
        (i.scope, i.started_at - T0, i.ended_at - T0, i.failed_checks, i.first_failed_run, i.recovered_run)
        for i in found
    ] == [
        (ENVIRONMENT, m(60), m(120), 2, 2, 4),
        ("pricing", m(60), m(120), 2, 2, 4),
        (ENVIRONMENT, m(180), m(185), 1, 5, 6),
        ("search", m(180), m(185), 1, 5, 6),
    ]
    assert found[0].detected_at == T0 + m(60) + timedelta(seconds=30)
    assert found[0].previous_check_at == T0 and found[2].previous_check_at == T0 + m(120)


def test_time_weighted_availability() -> None:
    found = measures.incidents(observations())
    env = [i for i in found if i.scope == ENVIRONMENT]
    assert measures.availability(env, start=T0, end=END, observed_from=T0) == pytest.approx(1 - 65 / 240)
    pricing = [i for i in found if i.scope == "pricing"]
    assert measures.availability(pricing, start=T0, end=END, observed_from=T0) == pytest.approx(0.75)
    # a 24 h window observed only since T0 counts the observed 4 h
    day = END - timedelta(hours=24)
    assert measures.availability(env, start=day, end=END, observed_from=T0) == pytest.approx(1 - 65 / 240)
    # the last hour: only the 5-minute search incident
    assert measures.availability(env, start=END - m(60), end=END, observed_from=T0) == pytest.approx(55 / 60)
    assert measures.availability(env, start=T0, end=END, observed_from=None) is None


def test_an_open_incident_counts_until_now() -> None:
    runs = observations()[:3]  # still failing at 1:10
    env = [i for i in measures.incidents(runs) if i.scope == ENVIRONMENT]
    assert env[0].is_open
    assert measures.availability(env, start=T0, end=T0 + m(100), observed_from=T0) == pytest.approx(0.6)


def test_time_to_detect_from_the_change_that_broke_it_and_time_to_recover() -> None:
    first, _, second, _ = measures.incidents(observations())
    assert measures.cause(first, [CHANGE]) == CHANGE
    assert measures.time_to_detect(first, [CHANGE]) == timedelta(minutes=10, seconds=30)
    assert measures.time_to_detect(second, [CHANGE]) is None  # nothing changed since the 2:00 pass
    assert measures.time_to_recover(first) == m(60) and measures.time_to_recover(second) == m(5)
    assert measures.median_seconds([m(60), m(5), None]) == 1950.0


def test_a_change_before_the_previous_check_is_not_the_cause() -> None:
    early = CHANGE.__class__("baseline", T0 - m(5), "baseline_schema_sync")
    first = measures.incidents(observations())[0]
    assert measures.cause(first, [early]) is None


def scenario_observations() -> list[ScenarioObservation]:
    return [
        ScenarioObservation(c.environment, s.scenario, c.started_at, s.passed, s.module, s.interface)
        for c in HISTORY
        for s in c.scenarios
    ]


def test_flaky_is_a_failure_that_passes_on_an_immediate_recheck() -> None:
    found = measures.flaky_scenarios(scenario_observations())
    # search_hotels failed at 3:00 and passed at 3:05; quote_price and book_room failed twice and passed
    # only 50 minutes later: a real outage, not flakiness
    assert found == [measures.FlakyScenario("baseline", "search_hotels", "search", "GET /search", 1, 1)]
    assert measures.flaky_scenarios(scenario_observations(), window=m(4)) == []
    assert measures.flaky_scenarios(scenario_observations(), since=T0 + m(181)) == []
