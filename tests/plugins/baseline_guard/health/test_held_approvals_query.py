"""The held-approvals query over Airflow's own metadata models (the session's SQLite metadata DB; the
local-stack e2e test runs it on PostgreSQL): a schema-sync approval is held while its task waits for
an answer, and only then."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from baseline_guard.health.protection_state import pending_schema_hitl
from baseline_guard.protection.state import held_schema_approvals

pytestmark = pytest.mark.airflow

DAGS = Path(__file__).resolve().parents[4] / "dags"


@pytest.fixture(scope="module")
def make_run() -> Iterator[Callable[[str, str], Any]]:
    """``make_run(dag_id, run_id)``: a run of a real DAG of ``dags/`` in the metadata DB, with its task instances."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils import db
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    db.initdb()
    DagBundlesManager().sync_bundles_to_db()
    dags: dict[str, Any] = {}

    def make(dag_id: str, run_id: str) -> str:
        if dag_id not in dags:
            bag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"))
            sync_bag_to_db(bag, "dags-folder", None)
            dags[dag_id] = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(bag.dags[dag_id]))
        with create_session() as session:
            dags[dag_id].create_dagrun(
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
        return run_id

    yield make


def ask(
    dag_id: str, run_id: str, task_id: str, *, state: str, created_at: datetime, answered: bool = False
) -> None:
    """Put the task instance in ``state`` with a HITL detail, as the HITL operator and the REST API write it."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        ti = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == task_id
            )
        ).one()
        ti.state = state
        session.add(
            HITLDetail(
                ti_id=ti.id,
                options=["Approve", "Reject"],
                subject=f"{run_id}: apply destructive changes?",
                defaults=["Reject"],
                created_at=created_at,
                responded_at=created_at + timedelta(minutes=1) if answered else None,
                chosen_options=["Approve"] if answered else None,
            )
        )


def test_an_approval_is_held_while_its_task_waits_for_an_answer_and_only_then(
    make_run: Callable[[str, str], Any],
) -> None:
    t0 = datetime(2026, 11, 30, 9, 10, tzinfo=UTC)
    waiting = make_run("baseline_schema_sync", "manual__waiting")
    ask("baseline_schema_sync", waiting, "approve_destructive", state="awaiting_input", created_at=t0)
    answered = make_run("baseline_schema_sync", "manual__answered")
    ask(
        "baseline_schema_sync", answered, "approve_destructive", state="success", created_at=t0, answered=True
    )
    # the run was marked failed while it waited: the detail keeps no answer, but nobody is asked anymore
    abandoned = make_run("baseline_schema_sync", "manual__abandoned")
    ask("baseline_schema_sync", abandoned, "approve_destructive", state="failed", created_at=t0)
    # a HITL of another DAG is not a schema approval
    other_dag = make_run("business_check", "manual__other_dag")
    ask("business_check", other_dag, "run_business_checks", state="awaiting_input", created_at=t0)

    details = list(pending_schema_hitl())

    assert details == [
        {
            "subject": "manual__waiting: apply destructive changes?",
            "created_at": t0,
            "response_received": False,
            "task_instance": {
                "dag_id": "baseline_schema_sync",
                "dag_run_id": waiting,
                "task_id": "approve_destructive",
            },
        }
    ]
    held = held_schema_approvals(details)
    assert [(h.run_id, h.since) for h in held] == [(waiting, t0)]
