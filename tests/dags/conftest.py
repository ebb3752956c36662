"""Whole-DAG tests: ``dag.test()`` in this process, against the real local services.

The metadata database (SQLite in the session's throw-away ``AIRFLOW_HOME``, see the root conftest) is
created once; each test runs one DAG run end to end: the scheduler's dependency rules, mapping,
XCom, retries and task callbacks are Airflow's own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Airflow's metadata schema, created once per session."""
    from airflow.utils import db

    db.initdb()


@pytest.fixture(scope="session")
def run_dag(airflow_db: None) -> Callable[..., dict[str, Any]]:
    """Run one DAG with ``dag.test()``; returns the run's state and each task's state and XCom.

    ``run_dag("env_patrol", conf={...})`` -> ``{"state": "success", "tasks": {"task_id[map]": "success"},
    "xcom": {"task_id[map]": value}, "run_id": ...}``.
    """
    from airflow.dag_processing.dagbag import DagBag

    def run(dag_id: str, conf: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        bag = DagBag(dag_folder=str(DAGS_DIR / f"{dag_id}.py"))
        assert not bag.import_errors, bag.import_errors
        dag_run = bag.dags[dag_id].test(run_conf=conf or {}, **kwargs)
        tasks, xcom = {}, {}
        for ti in dag_run.get_task_instances():
            key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            tasks[key] = ti.state
            xcom[key] = ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index)
        return {"state": dag_run.state, "run_id": dag_run.run_id, "tasks": tasks, "xcom": xcom}

    return run


@pytest.fixture
def check_services(make_env_api: Any, s3: Any, postgres: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """For the business-check DAGs: a private reference environment (its faults stay in the test), a
    fresh bucket and history database under the connection ids the DAGs use; yields ``(env, history_dsn)``."""
    from sandbox_connections import check_services as connect

    env = make_env_api()
    with connect(env, s3, postgres, monkeypatch) as history:
        yield env, history


@pytest.fixture
def guard_db(postgres: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh migrated guard database behind ``baseline_guard_db`` (decisions, incidents, check history);
    yields its DSN. The DAGs keep their state there, so each test starts from none."""
    from sandbox_connections import history_database

    with history_database(postgres, monkeypatch) as dsn:
        yield dsn
