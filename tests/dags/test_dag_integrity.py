"""Every DAG file parses, carries the project's conventions, and opens no connection while parsing."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
EXPECTED_DAG_IDS = {
    "airflow_db_clean",
    "baseline_code_sync",
    "baseline_config_sync",
    "baseline_schema_sync",
    "business_check",
    "env_patrol",
    "project_environment_checks",
    "recheck_failing_environments",
    "restore_drill",
    "test_data_backup",
    "test_data_restore",
}


class _NoNetwork(socket.socket):
    def connect(self, address: object) -> None:  # type: ignore[override]
        raise AssertionError(f"DAG parsing opened a connection to {address}")

    def connect_ex(self, address: object) -> int:  # type: ignore[override]
        raise AssertionError(f"DAG parsing opened a connection to {address}")


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    mp = pytest.MonkeyPatch()
    mp.setattr(socket, "socket", _NoNetwork)
    try:
        return DagBag(dag_folder=str(DAGS_DIR))
    finally:
        mp.undo()


def test_no_import_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}


def test_expected_dags_present_and_file_name_is_dag_id(dagbag: DagBag) -> None:
    assert set(dagbag.dag_ids) >= EXPECTED_DAG_IDS
    for dag_id, dag in dagbag.dags.items():
        assert Path(dag.fileloc).stem == dag_id, (
            f"{dag.fileloc} defines {dag_id}: one DAG per file, file name = dag_id"
        )


def test_conventions(dagbag: DagBag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md and len(dag.doc_md) > 100, f"{dag_id} has no doc_md"
        assert dag.start_date is not None and dag.start_date.tzinfo is not None, (
            f"{dag_id}: start_date not tz-aware"
        )
        for t in dag.tasks:
            assert t.owner not in (None, "", "airflow"), f"{dag_id}.{t.task_id} has no owner"
            assert t.retries >= 1, f"{dag_id}.{t.task_id} has no retries"
            assert t.execution_timeout is not None, f"{dag_id}.{t.task_id} has no execution_timeout"


def test_params_have_descriptions(dagbag: DagBag) -> None:
    for dag_id, dag in dagbag.dags.items():
        for name, param in dag.params.items():
            assert getattr(param, "description", None), f"{dag_id} param {name} has no description"
