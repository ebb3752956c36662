"""A trigger's dates must be now (issue 20): the rule the REST guard applies before a run exists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from baseline_guard.errors import InvalidInput
from baseline_guard.run_dates import check_trigger_dates

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "body",
    [
        {"logical_date": None},
        {},
        {"logical_date": "2026-12-07T12:00:00Z", "run_after": "2026-12-07T11:58:00+00:00"},
        {
            "logical_date": "2026-12-07T11:56:00Z",
            "data_interval_start": "2026-12-07T11:56:00Z",
            "data_interval_end": "2026-12-07T11:59:59Z",
        },
        {"logical_date": "not a date"},  # Airflow's own validation answers 422
    ],
)
def test_dates_that_are_now_or_null_pass(body: dict) -> None:
    check_trigger_dates("test_data_backup", body, NOW)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"logical_date": "2098-01-01T00:00:00Z"}, "logical_date 2098-01-01T00:00:00+00:00 is in the future"),
        (
            {
                "logical_date": "2026-12-06T00:00:00Z",
                "data_interval_start": "2026-12-06T00:00:00Z",
                "data_interval_end": "2099-01-01T00:00:00Z",
            },
            "logical_date 2026-12-06T00:00:00+00:00 is 36 hours in the past",
        ),
        (
            {"logical_date": None, "data_interval_end": "2099-01-01T00:00:00Z"},
            "data_interval_end 2099-01-01T00:00:00+00:00 is in the future",
        ),
        (
            {"run_after": "2026-12-07T11:54:00"},
            "run_after 2026-12-07T11:54:00+00:00 is 6 minutes in the past",
        ),
        ({"run_after": "2026-12-07T12:00:01+00:00"}, "run_after 2026-12-07T12:00:01+00:00 is in the future"),
    ],
)
def test_dates_that_are_not_now_are_refused_saying_what_to_send(body: dict, expected: str) -> None:
    with pytest.raises(InvalidInput, match=r"send .* null and the run is dated now") as refused:
        check_trigger_dates("test_data_backup", body, NOW)
    assert expected in str(refused.value)


def test_the_tolerance_is_bounded_in_the_past_only() -> None:
    just_inside = (NOW - timedelta(minutes=5)).isoformat()
    check_trigger_dates("business_check", {"logical_date": just_inside}, NOW)
    with pytest.raises(InvalidInput, match="in the future"):
        check_trigger_dates("business_check", {"logical_date": (NOW + timedelta(seconds=1)).isoformat()}, NOW)
