"""The health report (the page's JSON) from a real history database: exact figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import pytest
from baseline_guard.health.protection import ProtectionItem, Slot
from baseline_guard.health.report import build_report
from baseline_guard.health.store import HistoryStore
from history_fixtures import CHANGE, END, HISTORY, T0, check, m


def test_report_of_a_failing_baseline_and_a_healthy_project(store: HistoryStore) -> None:
    for n, record in enumerate(HISTORY[:3]):  # baseline still failing at 1:10
        store.record(record, [CHANGE] if n == 1 else [])
    store.record(check(m(30), environment="proj-a", run_id="ci__proj-a"))
    report = build_report(store, T0 + m(100)).model_dump(mode="json")

    assert report["target"] == 0.99 and report["windows"] == ["24h", "7d", "30d"]
    baseline, proj = report["environments"]
    assert (baseline["name"], baseline["state"], baseline["failing_modules"]) == (
        "baseline",
        "failing",
        ["pricing"],
    )
    assert baseline["availability"]["24h"]["availability"] == pytest.approx(0.6)  # down 40 of 100 minutes
    assert baseline["availability"]["30d"]["meets_target"] is False
    assert baseline["availability"]["24h"]["downtime_s"] == 2400
    assert {m["name"]: m["state"] for m in baseline["modules"]} == {"search": "passing", "pricing": "failing"}
    pricing = next(m for m in baseline["modules"] if m["name"] == "pricing")
    assert (pricing["interface"], pricing["instance"]) == ("POST /quotes", "baseline/pricing/1")
    [whole, module] = baseline["open_incidents"]
    assert (whole["module"], module["module"]) == (None, "pricing")
    assert whole["first_failed_run"]["url"] == "/dags/business_check/runs/scheduled__20261101T0100__baseline"
    assert whole["first_failed_run"]["report_url"] == "http://s3/reports/0100/report.html"
    assert whole["cause"]["source"] == "baseline_code_sync" and whole["time_to_detect_s"] == 630
    assert whole["failed_checks"] == 2 and whole["duration_s"] == 2400
    assert (proj["state"], proj["availability"]["24h"]["availability"], proj["open_incidents"]) == (
        "passing",
        1.0,
        [],
    )
    assert proj["protection"]["last_proven_restore"] == {
        "status": "not_available",
        "summary": None,
        "since": None,
        "at": None,
        "link": None,
        "details": [],
    }


def test_recovered_history_measures_and_protection_slots_from_a_provider(store: HistoryStore) -> None:
    for n, record in enumerate(HISTORY):
        store.record(record, [CHANGE] if n == 1 else [])

    def restores(environments: Sequence[str], now: datetime) -> Mapping[str, Mapping[Slot, ProtectionItem]]:
        return {
            "baseline": {"last_proven_restore": ProtectionItem(status="ok", summary="pre_test 41", at=T0)}
        }

    report = build_report(store, END, providers=[restores])
    [baseline] = report.environments
    assert baseline.state == "passing" and baseline.open_incidents == []
    week = baseline.availability["7d"]
    assert week.availability == pytest.approx(1 - 65 / 240) and week.incidents == 2
    assert (week.time_to_detect_s, week.time_to_recover_s) == (630, 1950)
    assert [i.module for i in baseline.recent_incidents] == ["search", None, "pricing", None]
    assert [(f.scenario, f.flaky_failures, f.failures) for f in baseline.flaky] == [("search_hotels", 1, 1)]
    assert [(lo - T0, hi - T0) for lo, hi in baseline.down_24h] == [(m(60), m(120)), (m(180), m(185))]
    assert baseline.protection.last_proven_restore.summary == "pre_test 41"
    assert baseline.protection.drift.status == "not_available"
