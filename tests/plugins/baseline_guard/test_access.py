"""The CI role: exactly read + trigger of the DAGs tagged ``ci``, in FAB's own resource names."""

from __future__ import annotations

from pathlib import Path

from airflow.dag_processing.dagbag import DagBag
from airflow.providers.fab.www.security import permissions
from baseline_guard.access import CI_DAG_IDS, ci_role_permissions

DAGS_DIR = Path(__file__).resolve().parents[3] / "dags"


def test_the_ci_dags_are_the_dags_tagged_ci() -> None:
    bag = DagBag(dag_folder=str(DAGS_DIR))
    assert bag.import_errors == {}
    assert {d.dag_id for d in bag.dags.values() if "ci" in d.tags} == set(CI_DAG_IDS)


def test_ci_may_read_and_create_runs_of_the_ci_dags_and_edit_or_delete_nothing() -> None:
    perms = ci_role_permissions()
    for dag_id in CI_DAG_IDS:
        dag_resource = permissions.resource_name(dag_id, permissions.RESOURCE_DAG)
        run_resource = permissions.resource_name(dag_id, permissions.RESOURCE_DAG_RUN)
        assert {("can_read", dag_resource), ("can_read", run_resource), ("can_create", run_resource)} <= perms
    assert {action for action, _ in perms} == {"can_read", "can_create"}
    assert {resource for action, resource in perms if action == "can_create"} == {
        f"DAG Run:{dag_id}" for dag_id in CI_DAG_IDS
    }
    assert not any(
        resource in {"DAGs", "HITL Detail", "Backfills", "Variables", "Connections"} for _, resource in perms
    )
