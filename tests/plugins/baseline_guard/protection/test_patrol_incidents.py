"""Patrol incidents (pure): down once, still down at most hourly, recovered, vanished dropped silently."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from baseline_guard.protection.patrol_incidents import messages, next_incidents

T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)
KEY = "baseline/order#1"


def _run(previous, down_now, minutes, checked=("baseline",), vanished=()):  # type: ignore[no-untyped-def]
    return next_incidents(
        previous, down_now, checked=checked, vanished=vanished, now=T0 + timedelta(minutes=minutes)
    )


def test_an_incident_is_told_down_once_still_down_hourly_and_recovered_once() -> None:
    told_kinds = []
    incidents: dict = {}
    for minute in range(0, 130, 5):  # every patrol run for two hours and more
        incidents, told = _run(incidents, {KEY: "restart failed"}, minute)
        told_kinds += [title.split(": ", 1)[1] for title, _, _ in messages(told)]
    incidents, told = _run(incidents, {}, 135)
    told_kinds += [title.split(": ", 1)[1] for title, _, _ in messages(told)]
    assert told_kinds == [
        "1 instance(s) down",
        "1 instance(s) still down",
        "1 instance(s) still down",
        "1 instance(s) recovered",
    ]
    assert incidents == {}


def test_vanished_environment_drops_its_incidents_and_unchecked_ones_are_kept() -> None:
    previous, _ = _run(
        {}, {"proj-a/quote#1": "restart failed", KEY: "restart failed"}, 0, checked=("baseline", "proj-a")
    )
    incidents, told = _run(previous, {}, 5, checked=(), vanished=("proj-a",))
    assert told.dropped == ["proj-a/quote#1"] and messages(told) == []
    assert list(incidents) == [KEY]  # baseline not looked at this run: unchanged, not "recovered"
