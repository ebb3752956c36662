"""Defence in depth for strict run input: every task refuses a run whose conf names unknown keys.

The REST guard (``baseline_guard.rest_guard``) refuses such conf before a run exists. Runs can also
be created without passing it (``airflow dags trigger`` on a scheduler host, a
``TriggerDagRunOperator`` in some other DAG, a future API path): for those, the cluster policy
:func:`task_policy` (registered in ``plugins/airflow_local_settings.py``) gives every task a
pre-execute check, so a run with unknown keys fails before any task does its work, with
:class:`~baseline_guard.errors.InvalidInput` (never retried) naming the key. No DAG file needs code
for it.

Mapped tasks are left alone (their kwargs are serialized; a callable cannot be): each of them has
an upstream task that fetched what it maps over, which refuses first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from baseline_guard.strict_conf import check_conf

if TYPE_CHECKING:
    from airflow.sdk import Context

PreExecuteHook = Callable[[Any], Any]


def refuse_unknown_conf(context: Context) -> None:
    """Raise ``InvalidInput`` when the run's conf has keys that are not params of its DAG."""
    dag = context["dag"]
    conf = getattr(context.get("dag_run"), "conf", None) or {}
    check_conf(dag.dag_id, conf, dag.params.keys())


def with_conf_check(previous: PreExecuteHook | None) -> PreExecuteHook:
    """A pre-execute hook that checks the conf, then runs ``previous`` (a task's own hook), if any."""
    if previous is not None and getattr(previous, "checks_conf", False):
        return previous  # already wrapped (the policy ran twice)
    return _ConfCheckHook(previous)


class _ConfCheckHook:
    """The hook :func:`with_conf_check` makes: checks the conf, then runs ``previous``, if any."""

    checks_conf = True

    def __init__(self, previous: PreExecuteHook | None) -> None:
        self.previous = previous

    def __call__(self, context: Context) -> None:
        refuse_unknown_conf(context)
        if self.previous is not None:
            self.previous(context)


def task_policy(task: Any) -> None:
    """Cluster policy: give each (unmapped) task the conf check before it executes."""
    if isinstance(task, BaseOperator):  # not a MappedOperator
        task._pre_execute_hook = with_conf_check(task._pre_execute_hook)
