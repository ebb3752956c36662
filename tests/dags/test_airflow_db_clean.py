"""airflow_db_clean, a whole run under dag.test() on the session's real metadata database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

pytestmark = pytest.mark.airflow


def _log_rows(event: str) -> dict[str, datetime]:
    from airflow.models.log import Log
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(Log.extra, Log.dttm).where(Log.event == event)).all()
    return {extra: dttm for extra, dttm in rows}


def test_a_run_deletes_metadata_older_than_the_retention_and_keeps_the_rest(
    run_dag: Callable[..., dict[str, Any]],
) -> None:
    from airflow.models.log import Log
    from airflow.utils.session import create_session

    now = datetime.now(UTC)
    with create_session() as session:
        for name, age in (("old", timedelta(days=40)), ("recent", timedelta(days=5))):
            row = Log(event="bg-db-clean-test", extra=name)
            row.dttm = now - age
            session.add(row)
    assert set(_log_rows("bg-db-clean-test")) == {"old", "recent"}

    run = run_dag("airflow_db_clean", conf={"keep_days": 30})

    assert run["state"] == "success", run["tasks"]
    cutoff = datetime.fromisoformat(run["xcom"]["clean_metadata"]["cleaned_before"])
    assert abs(cutoff - (now - timedelta(days=30))) < timedelta(minutes=10)  # the task's clock
    assert set(_log_rows("bg-db-clean-test")) == {"recent"}


def test_a_retention_under_a_week_is_refused() -> None:
    from baseline_guard.errors import InvalidInput
    from baseline_guard.operators.maintenance import MetadataCleanupOperator

    with pytest.raises(InvalidInput, match="at least 7"):
        MetadataCleanupOperator(task_id="clean", keep_days=3).execute({})
