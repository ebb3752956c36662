"""A hand-built check history with known answers, shared by the measure and store tests.

baseline, from T0 (every run reaches search and pricing):

    T0+0:50  environment change (baseline_code_sync deploys quote 1.9.2)
    T0+1:00  fail: pricing (quote_price, book_room)   result at +30 s
    T0+1:10  fail: pricing (quote_price, book_room)
    T0+2:00  pass
    T0+3:00  fail: search (search_hotels)              no change before it
    T0+3:05  pass                                      (an immediate re-check)

Incidents: environment [1:00, 2:00) and [3:00, 3:05); pricing [1:00, 2:00); search [3:00, 3:05).
Over [T0, T0+4:00): down 65 of 240 min; time to detect the first 10 min 30 s; the second has no cause.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from baseline_guard.health.records import CheckRecord, EnvironmentChange, ScenarioRecord, Trigger

T0 = datetime(2026, 11, 1, tzinfo=UTC)
END = T0 + timedelta(hours=4)
SCENARIOS = {
    "search_hotels": ("search", "GET /search"),
    "quote_price": ("pricing", "POST /quotes"),
    "book_room": ("pricing", "POST /quotes"),
}
CHANGE = EnvironmentChange("baseline", T0 + timedelta(minutes=50), "baseline_code_sync", ["quote 1.9.2"])


def check(
    at: timedelta,
    failed: tuple[str, ...] = (),
    *,
    environment: str = "baseline",
    trigger: Trigger = Trigger.HOURLY,
    run_id: str | None = None,
) -> CheckRecord:
    started = T0 + at
    return CheckRecord(
        environment=environment,
        started_at=started,
        finished_at=started + timedelta(seconds=30),
        trigger=trigger,
        scenarios=tuple(
            ScenarioRecord(
                name,
                "suite",
                name not in failed,
                120.0,
                *where,
                instance=f"{environment}/{where[0]}/1",
                version="1.0.0",
            )
            for name, where in SCENARIOS.items()
        ),
        dag_id="business_check",
        run_id=run_id or f"scheduled__{started:%Y%m%dT%H%M}__{environment}",
        task_id="run_business_checks",
        try_number=1,
        report_url=f"http://s3/reports/{started:%H%M}/report.html",
    )


def m(minutes: int) -> timedelta:
    return timedelta(minutes=minutes)


HISTORY = [
    check(m(0)),
    check(m(60), ("quote_price", "book_room")),
    check(m(70), ("quote_price", "book_room"), trigger=Trigger.RECHECK),
    check(m(120)),
    check(m(180), ("search_hotels",)),
    check(m(185), trigger=Trigger.RECHECK),
]
