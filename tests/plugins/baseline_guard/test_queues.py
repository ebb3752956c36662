"""The cluster policy that routes the dump and restore tasks to the pgtools queue, on the real DAGs."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from baseline_guard.queues import PGTOOLS_QUEUE_ENV, route_pg_tool_tasks

DAGS_DIR = Path(__file__).resolve().parents[3] / "dags"


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    bag = DagBag(dag_folder=str(DAGS_DIR))
    assert bag.import_errors == {}
    return bag


def _queues_after_policy(dagbag: DagBag) -> dict[tuple[str, str], str]:
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            route_pg_tool_tasks(task)
    return {(dag.dag_id, task.task_id): task.queue for dag in dagbag.dags.values() for task in dag.tasks}


def test_only_the_tasks_running_pg_tools_go_to_the_pgtools_queue(
    dagbag: DagBag, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PGTOOLS_QUEUE_ENV, "pgtools")
    queues = _queues_after_policy(dagbag)
    routed = {key for key, queue in queues.items() if queue == "pgtools"}
    # both are mapped tasks (one per database): the policy sets the queue on the mapped operator
    assert routed == {("test_data_backup", "dump_database"), ("test_data_restore", "restore_database")}
    assert {q for key, q in queues.items() if key not in routed} == {"default"}
    assert len(queues) > 20


def test_without_the_setting_no_queue_changes(dagbag: DagBag, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PGTOOLS_QUEUE_ENV, raising=False)
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            task.queue = "default"
    assert set(_queues_after_policy(dagbag).values()) == {"default"}
