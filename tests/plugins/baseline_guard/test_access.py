"""The CI role: exactly read + trigger of the DAGs tagged ``ci``, in FAB's own resource names; the Metrics
role: the metrics only (asked of the project's auth manager with FAB's own user and role models)."""

from __future__ import annotations

from pathlib import Path

from airflow.api_fastapi.auth.managers.models.resource_details import AccessView, DagAccessEntity, DagDetails
from airflow.dag_processing.dagbag import DagBag
from airflow.providers.fab.auth_manager.models import Action, Permission, Resource, Role, User
from airflow.providers.fab.www.security import permissions
from baseline_guard.access import (
    CI_DAG_IDS,
    CI_ROLE,
    METRICS_RESOURCE,
    METRICS_ROLE,
    USER_ROLES,
    ci_role_permissions,
    metrics_role_permissions,
)
from baseline_guard.auth_manager import BaselineGuardAuthManager
from baseline_guard.ui import auth as ui_auth

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


def _fab_user(role_name: str, perms: set[tuple[str, str]]) -> User:
    """A FAB user of one role, as FAB's own models compute its permissions (from the role, no app)."""
    role = Role(name=role_name)
    role.permissions = [
        Permission(action=Action(name=a), resource=Resource(name=r)) for a, r in sorted(perms)
    ]
    user = User(username=role_name.lower())
    user.roles = [role]
    user.active = True
    return user


def test_the_metrics_role_reads_the_metrics_and_nothing_else() -> None:
    manager = BaselineGuardAuthManager()
    metrics = _fab_user(METRICS_ROLE, metrics_role_permissions())
    assert metrics_role_permissions() == {("can_read", METRICS_RESOURCE)}
    assert manager.is_authorized_custom_view(method="GET", resource_name=METRICS_RESOURCE, user=metrics)
    assert not manager.is_authorized_custom_view(method="PUT", resource_name=METRICS_RESOURCE, user=metrics)
    # not the health page (the website), not a DAG, not a run
    assert not manager.is_authorized_view(access_view=AccessView.WEBSITE, user=metrics)
    assert not manager.is_authorized_dag(method="GET", user=metrics, details=DagDetails(id="business_check"))
    assert not manager.is_authorized_dag(
        method="POST",
        user=metrics,
        access_entity=DagAccessEntity.RUN,
        details=DagDetails(id="business_check"),
    )


def test_the_ci_role_cannot_read_the_metrics() -> None:
    ci = _fab_user(CI_ROLE, ci_role_permissions())
    manager = BaselineGuardAuthManager()
    assert not manager.is_authorized_custom_view(method="GET", resource_name=METRICS_RESOURCE, user=ci)


def test_the_page_checks_the_resource_the_role_is_given() -> None:
    assert ui_auth.METRICS_RESOURCE == METRICS_RESOURCE
    assert USER_ROLES["metrics"] == METRICS_ROLE
