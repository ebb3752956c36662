"""The syncs' last outcomes for the metrics, read from Airflow's own metadata models (the session's
SQLite metadata DB): per sync the run that finished last, succeeded or failed; running runs do not count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from baseline_guard.ui.syncs import SyncOutcome, last_sync_outcomes

pytestmark = pytest.mark.airflow

DAGS = Path(__file__).resolve().parents[4] / "dags"


def add_run(dag_id: str, run_id: str, state: str, end_date: datetime | None) -> None:
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.dagrun import DagRun
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import select

    bag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"))
    sync_bag_to_db(bag, "dags-folder", None)
    dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(bag.dags[dag_id]))
    with create_session() as session:
        dag.create_dagrun(
            run_id=run_id,
            logical_date=None,
            data_interval=None,
            run_after=datetime.now(UTC),
            conf={},
            run_type=DagRunType.MANUAL,
            state=DagRunState.RUNNING,
            triggered_by=DagRunTriggeredByType.TEST,
            triggering_user_name="test",
            session=session,
        )
    with create_session() as session:
        run = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)).one()
        run.state = state
        run.end_date = end_date


def test_each_syncs_last_finished_run_and_whether_it_succeeded() -> None:
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.utils import db

    db.initdb()
    DagBundlesManager().sync_bundles_to_db()
    # later than any run other tests of the session (sharing this metadata DB) may have finished
    now = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
    add_run("baseline_code_sync", "metrics_code_1", "success", now - timedelta(hours=2))
    add_run("baseline_code_sync", "metrics_code_2", "failed", now - timedelta(hours=1))
    add_run("baseline_code_sync", "metrics_code_3", "running", None)
    add_run("baseline_schema_sync", "metrics_schema_1", "failed", now - timedelta(hours=3))
    add_run("baseline_schema_sync", "metrics_schema_2", "success", now - timedelta(minutes=5))
    found = {o.sync: o for o in last_sync_outcomes()}
    assert found["code"] == SyncOutcome("code", False, now - timedelta(hours=1))
    assert found["schema"] == SyncOutcome("schema", True, now - timedelta(minutes=5))
