"""The DAGs' decision and incident state as rows of the guard's real PostgreSQL database: overlapping
writers (threads, each with its own connection) lose no on-call decision and tell no incident twice."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from baseline_guard.configsync.decisions import (
    asked_record,
    decided_record,
    unmatched_config_changes,
)
from baseline_guard.environment_contract import ConfigDigest
from baseline_guard.health.__main__ import main as health_cli
from baseline_guard.health.guard_state import ConfigDecisionStore, PatrolIncidentStore, connect
from baseline_guard.protection.patrol_incidents import next_incidents
from local_stack.postgres import LocalPostgres

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SERVICES = [f"svc-{i:03d}" for i in range(40)]


@pytest.fixture
def open_conn(history_dsn: str) -> Iterator[Any]:
    opened: list[Any] = []

    def open_() -> Any:
        opened.append(connect(history_dsn))
        return opened[-1]

    yield open_
    for conn in opened:
        conn.close()


def _digest(service: str) -> ConfigDigest:
    return ConfigDigest(service=service, digest=f"sha256:{service}", changed_at=NOW - timedelta(hours=3))


def _change(service: str) -> dict[str, str]:
    d = _digest(service)
    return {"service": service, "digest": d.digest, "changed_at": d.changed_at.isoformat()}


def test_records_round_trip_as_the_logic_wrote_them(open_conn: Any) -> None:
    store = ConfigDecisionStore(open_conn())
    asked = asked_record(_change("quote"), asked_at=NOW, response_timeout=timedelta(minutes=50), run_id="r1")
    decided = decided_record(_change("order"), "Not needed for the baseline", {"name": "oncall"}, NOW)

    written = store.update(["quote", "order"], lambda current: {"quote": asked, "order": decided})

    assert written == {"quote": asked, "order": decided}
    assert store.load() == {"quote": asked, "order": decided}  # absent fields stay absent, times ISO in UTC
    assert store.pending() == {"quote": asked}
    with pytest.raises(ValueError, match="not given"):
        store.update(["quote"], lambda current: {"order": decided})


def test_an_hourly_run_overlapping_the_answers_loses_no_decision(open_conn: Any) -> None:
    """Every question timed out, so each hourly run asks all of them again, while the on-call person
    answers them one by one: whichever commits first, every answer must stand at the end."""
    expired = {
        s: {
            **asked_record(
                _change(s),
                asked_at=NOW - timedelta(hours=2),
                response_timeout=timedelta(minutes=50),
                run_id="old",
            ),
            "status": "timed_out",
        }
        for s in SERVICES
    }
    ConfigDecisionStore(open_conn()).import_records(expired)
    digests = [_digest(s) for s in SERVICES]
    answered: list[str] = []
    hourly_runs_asked = 0

    def hourly_run() -> None:
        nonlocal hourly_runs_asked
        store = ConfigDecisionStore(open_conn())

        def decide(recorded: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
            needs_person, updates = unmatched_config_changes(digests, recorded, [], now=NOW)
            for change in needs_person:
                updates[change["service"]] = asked_record(
                    change, asked_at=NOW, response_timeout=timedelta(minutes=50), run_id="hourly"
                )
            time.sleep(0.05)  # a slow run holds its rows: the answers must wait, not be overwritten
            return updates

        for _ in range(6):
            hourly_runs_asked += len(store.update(SERVICES, decide))

    def answer(services: list[str]) -> None:
        store = ConfigDecisionStore(open_conn())
        for service in services:
            record = decided_record(_change(service), "Test config updated by hand", {"name": "oncall"}, NOW)
            store.update(
                [service],
                lambda current, s=service, r=record: (
                    {s: r} if current.get(s, {}).get("digest") == r["digest"] else {}
                ),
            )
            answered.append(service)
            time.sleep(0.002)

    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [
            pool.submit(hourly_run),
            pool.submit(answer, SERVICES[::2]),
            pool.submit(answer, SERVICES[1::2]),
        ]
        for f in futures:
            f.result()

    records = ConfigDecisionStore(open_conn()).load()
    assert sorted(answered) == SERVICES and hourly_runs_asked > 0  # the runs really overlapped the answers
    lost = [s for s in SERVICES if records[s].get("status") != "decided"]
    assert lost == [], f"decisions overwritten by an overlapping run: {lost}"
    assert {r["decided_by"] for r in records.values()} == {"oncall"}


def test_a_first_sighting_raced_by_two_runs_is_recorded_once_and_decided_once(open_conn: Any) -> None:
    barrier = threading.Barrier(2)
    calls = []

    def run() -> dict[str, dict[str, Any]]:
        store = ConfigDecisionStore(open_conn())
        barrier.wait()

        def decide(recorded: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
            calls.append(dict(recorded))
            _, updates = unmatched_config_changes([_digest("quote")], recorded, [], now=NOW)
            time.sleep(0.1)
            return updates

        return store.update(["quote"], decide)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = [f.result() for f in [pool.submit(run), pool.submit(run)]]

    assert sorted(len(r) for r in results) == [0, 1]  # the loser started again and saw the row
    assert len(calls) == 3 and calls[-1]["quote"]["status"] == "recorded"
    assert list(ConfigDecisionStore(open_conn()).load()) == ["quote"]


def test_two_overlapping_patrols_tell_a_new_incident_once(open_conn: Any) -> None:
    barrier = threading.Barrier(2)

    def patrol(down: dict[str, str]) -> list[str]:
        store = PatrolIncidentStore(open_conn())
        barrier.wait()

        def step(previous: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], list[str]]:
            incidents, told = next_incidents(previous, down, checked=["baseline"], vanished=[], now=NOW)
            time.sleep(0.1)
            return incidents, sorted(told.down)

        return store.advance(step)

    down = {"baseline/order#1": "restart failed"}
    with ThreadPoolExecutor(max_workers=2) as pool:
        told = [f.result() for f in [pool.submit(patrol, down), pool.submit(patrol, down)]]

    assert sorted(told) == [[], ["baseline/order#1"]]
    stored = PatrolIncidentStore(open_conn()).load()
    assert list(stored) == ["baseline/order#1"] and stored["baseline/order#1"]["since"] == NOW.isoformat()

    recovered = PatrolIncidentStore(open_conn()).advance(
        lambda previous: next_incidents(previous, {}, checked=["baseline"], vanished=[], now=NOW)
    )
    assert recovered.recovered == ["baseline/order#1"] and PatrolIncidentStore(open_conn()).load() == {}


def test_import_state_copies_the_old_variables_once(open_conn: Any, history_dsn: str, tmp_path: Path) -> None:
    digests = {"quote": {"digest": "sha256:aa", "seen_at": NOW.isoformat(), "status": "recorded"}}
    incidents = {
        "proj-a/quote#2": {"since": NOW.isoformat(), "last_told": NOW.isoformat(), "reason": "restart failed"}
    }
    (tmp_path / "d.json").write_text(json.dumps(digests))
    (tmp_path / "i.json").write_text(json.dumps(incidents))
    args = ["import-state", "--url", history_dsn, "--config-digests", str(tmp_path / "d.json")]

    assert health_cli([*args, "--patrol-incidents", str(tmp_path / "i.json")]) == 0
    ConfigDecisionStore(open_conn()).update(
        ["quote"], lambda current: {"quote": {**current["quote"], "status": "asked"}}
    )
    assert health_cli(args) == 0  # again: the row written since is kept

    assert ConfigDecisionStore(open_conn()).load()["quote"]["status"] == "asked"
    assert PatrolIncidentStore(open_conn()).load() == incidents
    (tmp_path / "wrong.json").write_text(json.dumps({"order": {"digest": "sha256:bb", "status": "maybe"}}))
    wrong = ["import-state", "--url", history_dsn, "--config-digests", str(tmp_path / "wrong.json")]
    assert health_cli(wrong) == 2 and "order" not in ConfigDecisionStore(open_conn()).load()
    (tmp_path / "bad.json").write_text("[]")
    assert (
        health_cli(["import-state", "--url", history_dsn, "--config-digests", str(tmp_path / "bad.json")])
        == 2
    )


def test_the_health_page_reads_the_pending_decisions_from_the_database(
    open_conn: Any, history_dsn: str, postgres: LocalPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    from baseline_guard.health.protection_state import config_decision_records
    from baseline_guard.protection.state import pending_config_decisions

    asked = asked_record(_change("quote"), asked_at=NOW, response_timeout=timedelta(minutes=50), run_id="r1")
    decided = decided_record(_change("order"), "Not needed for the baseline", {"name": "oncall"}, NOW)
    ConfigDecisionStore(open_conn()).update(
        ["quote", "order"], lambda current: {"quote": asked, "order": decided}
    )
    database = history_dsn.rsplit("/", 1)[1].split("?")[0]
    monkeypatch.setenv("AIRFLOW_CONN_BASELINE_GUARD_DB", json.dumps(postgres.airflow_connection(database)))

    pending = pending_config_decisions(config_decision_records())

    assert [(p.service, p.digest, p.asked_at) for p in pending] == [("quote", asked["digest"], NOW)]
