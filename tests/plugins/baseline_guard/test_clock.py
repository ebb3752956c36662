"""The one time source: a run's caller-set dates never reach "as of" (issue 20)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from baseline_guard.clock import run_as_of
from baseline_guard.errors import InvalidInput

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
FUTURE = datetime(2099, 1, 1, tzinfo=UTC)
PAST = datetime(2020, 1, 1, tzinfo=UTC)


def _run(run_type: str, end: datetime | None) -> dict:
    dag_run = SimpleNamespace(
        run_type=run_type, data_interval_end=end, logical_date=end, run_after=end, start_date=end
    )
    return {"dag_run": dag_run, "data_interval_end": end, "logical_date": end}


@pytest.mark.parametrize("caller_date", [FUTURE, PAST])
@pytest.mark.parametrize("run_type", ["manual", "backfill", "asset_triggered"])
def test_a_run_a_caller_dated_is_as_of_the_tasks_own_clock(run_type: str, caller_date: datetime) -> None:
    assert run_as_of(_run(run_type, caller_date), now=NOW) == NOW


def test_a_scheduled_run_is_as_of_its_interval_end_the_scheduler_chose() -> None:
    end = NOW - timedelta(minutes=30)
    assert run_as_of(_run("scheduled", end), now=NOW) == end
    assert run_as_of({"data_interval_end": end}, now=NOW) == end  # a context without a run (a test)


def test_a_run_type_given_as_an_enum_counts_by_its_value() -> None:
    from airflow.utils.types import DagRunType

    assert run_as_of(_run(DagRunType.MANUAL, FUTURE), now=NOW) == NOW  # type: ignore[arg-type]
    assert run_as_of(_run(DagRunType.SCHEDULED, PAST), now=NOW) == PAST  # type: ignore[arg-type]


def test_a_context_without_a_run_time_is_refused() -> None:
    with pytest.raises(InvalidInput, match="expected the context of an Airflow task instance"):
        run_as_of({}, now=NOW)
    with pytest.raises(InvalidInput, match="no time zone"):
        run_as_of({"data_interval_end": datetime(2026, 1, 1)}, now=NOW)
