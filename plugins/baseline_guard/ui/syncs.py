"""The last finished run of each hourly sync (code, schema, config), from Airflow's metadata DB.

The check history knows a sync only when it changed the environment; whether the last sync succeeded
or failed is Airflow's to say (its DAG runs). Airflow is imported inside the function: this module is
loaded by the plugin in every Airflow process.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

SYNC_DAGS: dict[str, str] = {
    "code": "baseline_code_sync",
    "schema": "baseline_schema_sync",
    "config": "baseline_config_sync",
}


class SyncOutcome(NamedTuple):
    sync: str  # code, schema or config
    succeeded: bool
    finished_at: datetime


def last_sync_outcomes() -> list[SyncOutcome]:
    """Each sync's last DAG run that finished (success or failed), newest by end date."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import func, select

    finished = (DagRunState.SUCCESS, DagRunState.FAILED)
    latest = (
        select(DagRun.dag_id, func.max(DagRun.end_date).label("end_date"))
        .where(DagRun.dag_id.in_(SYNC_DAGS.values()), DagRun.state.in_(finished), DagRun.end_date.isnot(None))
        .group_by(DagRun.dag_id)
        .subquery()
    )
    query = select(DagRun.dag_id, DagRun.state, DagRun.end_date).join(
        latest, (DagRun.dag_id == latest.c.dag_id) & (DagRun.end_date == latest.c.end_date)
    )
    with create_session() as session:
        rows = session.execute(query).all()
    sync_of = {dag_id: sync for sync, dag_id in SYNC_DAGS.items()}
    found = {
        sync_of[dag_id]: SyncOutcome(sync_of[dag_id], state == DagRunState.SUCCESS, end_date)
        for dag_id, state, end_date in rows
    }
    return [found[s] for s in SYNC_DAGS if s in found]
