"""The history store on a real PostgreSQL: migrations, recording, incidents kept current, reads."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import timedelta

from baseline_guard.health import measures, migrate
from baseline_guard.health.measures import ENVIRONMENT, ScenarioObservation
from baseline_guard.health.records import EnvironmentChange
from baseline_guard.health.store import HistoryStore
from history_fixtures import CHANGE, END, HISTORY, T0, check, m


def _summary(store: HistoryStore) -> list[tuple]:
    return [
        (
            s.environment,
            s.incident.scope,
            s.incident.started_at - T0,
            s.incident.ended_at - T0 if s.incident.ended_at else None,
            s.incident.failed_checks,
            s.cause.source if s.cause else None,
        )
        for s in store.incidents(T0 - m(1))
    ]


EXPECTED = [
    ("baseline", ENVIRONMENT, m(60), m(120), 2, "baseline_code_sync"),
    ("baseline", "pricing", m(60), m(120), 2, "baseline_code_sync"),
    ("baseline", ENVIRONMENT, m(180), m(185), 1, None),
    ("baseline", "search", m(180), m(185), 1, None),
]


def test_migrate_cli_brings_an_empty_database_to_head(postgres, history_dsn: str) -> None:
    name = "bg_history_cli"
    postgres.create_database(name, drop_existing=True)
    out = subprocess.run(
        [sys.executable, "-m", "baseline_guard.health", "migrate", "--url", postgres.uri(name)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert f"at revision {migrate.head_revision()}" in out.stdout
    tables = postgres.psql(
        "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public';",
        name,
    ).strip()
    assert (
        tables
        == "alembic_version,check_result,check_run,config_decision,environment_change,environment_state,incident,"
        "module_state,patrol_incident"
    )
    assert migrate.current_revision(history_dsn) == migrate.head_revision()


def test_recorded_history_gives_the_incidents_the_measures_compute(store: HistoryStore) -> None:
    for n, record in enumerate(HISTORY):
        store.record(record, [CHANGE] if n == 1 else [])
    assert _summary(store) == EXPECTED
    first = store.incidents(T0)[0]
    assert first.first_failed.run_id == "scheduled__20261101T0100__baseline"
    assert first.first_failed.report_url == "http://s3/reports/0100/report.html"
    assert measures.time_to_detect(first.incident, [first.cause]) == timedelta(minutes=10, seconds=30)
    env = [s.incident for s in store.incidents(T0) if s.incident.scope == ENVIRONMENT]
    assert measures.availability(env, start=T0, end=END, observed_from=T0) == 1 - 65 / 240


def test_an_environment_failing_at_its_first_check_knows_the_change_before_it(store: HistoryStore) -> None:
    """A new project environment: an environment manager deployed to it, its first check fails."""
    deployed = EnvironmentChange("proj-a", T0 + m(55), "env-manager", [{"service": "quote"}])
    later = EnvironmentChange("proj-a", T0 + m(61), "env-manager", [{"service": "order"}])
    store.record(check(m(60), ("quote_price",), environment="proj-a"), [deployed, later])

    [whole, pricing] = store.incidents(T0)
    assert (whole.incident.scope, pricing.incident.scope) == (ENVIRONMENT, "pricing")
    assert whole.cause == pricing.cause == deployed  # not the change after the failed check began
    assert measures.time_to_detect(whole.incident, [whole.cause]) == timedelta(minutes=5, seconds=30)


def test_a_change_recorded_again_by_a_retry_of_the_run_that_made_it_changes_nothing(
    store: HistoryStore,
) -> None:
    """A restore's check step records the restore at its own start: each try would give another time."""
    restored = EnvironmentChange(
        "baseline",
        T0 + m(59),
        "test_data_restore",
        [{"backup_id": "b1"}],
        dag_id="test_data_restore",
        run_id="ci__r1",
    )
    first, retry = (
        check(m(60), ("quote_price",), run_id="ci__r1"),
        check(m(62), ("quote_price",), run_id="ci__r1"),
    )
    store.record(first, [restored])
    store.record(replace(retry, try_number=2), [replace(restored, changed_at=T0 + m(61))])

    assert store.changes("baseline", T0) == [restored]
    assert [(s.incident.failed_checks, s.cause) for s in store.incidents(T0)] == [
        (2, restored),
        (2, restored),
    ]


def test_late_and_out_of_order_arrivals_give_the_same_incidents(store: HistoryStore) -> None:
    store.record_changes([CHANGE])
    for i in (5, 0, 3, 2, 4, 1):
        store.record(HISTORY[i])
    assert _summary(store) == EXPECTED


def test_recording_the_same_try_twice_changes_nothing(store: HistoryStore) -> None:
    first = store.record(HISTORY[1])
    assert store.record(HISTORY[1]) == first
    with store.conn, store.conn.cursor() as cur:
        cur.execute("SELECT count(*), (SELECT count(*) FROM check_result) FROM check_run")
        assert cur.fetchone() == (1, 3)


def test_current_state_of_environments_and_modules(store: HistoryStore) -> None:
    for record in HISTORY[:3]:
        store.record(record)
    store.record(check(m(30), environment="proj-a", run_id="ci__proj-a"))
    store.record(HISTORY[0])  # an old run arriving late does not overwrite the newer state
    envs = {e.environment: e for e in store.environments()}
    assert envs["baseline"].passed is False and envs["baseline"].last_run.started_at == T0 + m(70)
    assert envs["baseline"].first_checked_at == T0 and envs["proj-a"].passed is True
    modules = {(s.environment, s.module): s for s in store.modules()}
    assert modules["baseline", "pricing"].passed is False
    assert (modules["baseline", "pricing"].interface, modules["baseline", "pricing"].instance) == (
        "POST /quotes",
        "baseline/pricing/1",
    )
    assert modules["baseline", "search"].passed is True and modules["proj-a", "pricing"].passed is True
    [open_incident] = [s for s in store.incidents(T0) if s.incident.scope == ENVIRONMENT]
    assert open_incident.incident.is_open and open_incident.incident.failed_checks == 2


def test_flaky_in_sql_equals_the_pure_measure(store: HistoryStore) -> None:
    for record in HISTORY:
        store.record(record)
    pure = measures.flaky_scenarios(
        [
            ScenarioObservation(c.environment, s.scenario, c.started_at, s.passed, s.module, s.interface)
            for c in HISTORY
            for s in c.scenarios
        ]
    )
    assert store.flaky(T0) == pure and [f.scenario for f in pure] == ["search_hotels"]
    assert store.flaky(T0 + m(181)) == []


def test_rebuild_after_a_bulk_import_gives_what_recording_gives(store: HistoryStore) -> None:
    store.record_changes([CHANGE])
    for record in HISTORY:
        store.record(record)
    recorded = (_summary(store), store.environments(), store.modules())
    with store.conn, store.conn.cursor() as cur:
        cur.execute("DELETE FROM incident; DELETE FROM environment_state; DELETE FROM module_state")
    store.rebuild("baseline")
    assert (_summary(store), store.environments(), store.modules()) == recorded


def test_totals_count_the_whole_history_for_the_metrics(store: HistoryStore) -> None:
    store.record_changes([CHANGE])
    for record in HISTORY:
        store.record(record)
    store.record(check(m(30), environment="proj-a"))
    totals = store.totals(END)
    assert totals.runs == [("baseline", False, 3, 9), ("baseline", True, 3, 9), ("proj-a", True, 1, 3)]
    assert totals.failed_scenarios == [
        ("baseline", "pricing", "POST /quotes", 4),
        ("baseline", "search", "GET /search", 1),
    ]
    assert totals.failed_module_checks == [("baseline", "pricing", 2), ("baseline", "search", 1)]
    assert totals.downtime_s == {"baseline": 65 * 60.0}  # [1:00, 2:00) and [3:00, 3:05)
    # the first incident's cause is the code sync 10 min before, detected 30 s after the check
    assert totals.incident_times == [("baseline", 630.0, 3600.0), ("baseline", None, 300.0)]
    assert [(e, s, t - T0) for e, s, t in totals.last_changes] == [("baseline", "baseline_code_sync", m(50))]
    # an open incident (from T0+5:00) counts up to the moment asked (T0+5:40)
    store.record(check(m(300), ("search_hotels",)))
    assert store.totals(END + m(100)).downtime_s == {"baseline": (65 + 40) * 60.0}
    assert store.totals(END + m(100)).incident_times[-1] == ("baseline", None, None)
