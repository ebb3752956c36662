"""Defaults every Baseline Guard DAG shares: owner, retries with exponential backoff, timeouts.

Errors a retry cannot fix (:class:`~baseline_guard.errors.RetryCannotHelp`: bad input, safety
refusals, a rollout that already rolled back) fail at once through a retry policy instead of
burning retries. A task that fails for good sends the admins one message. Imports no engine:
every DAG parse runs this.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import ExceptionRetryPolicy, Param, RetryAction, RetryRule

from baseline_guard.backup.names import DATABASE_PATTERN
from baseline_guard.environment_contract import NAME_PATTERN
from baseline_guard.errors import RetryCannotHelp
from baseline_guard.notifiers.admins import AdminsNotifier
from baseline_guard.strict_conf import LIMITS

OWNER = "platform-qa"
START_DATE = datetime(2026, 1, 1, tzinfo=UTC)

NO_RETRY_FOR: list[type[Exception]] = [RetryCannotHelp]


def default_args(
    what: str,
    *,
    execution_timeout: timedelta = timedelta(minutes=30),
    no_retry_for: Sequence[type[Exception]] = (),
) -> dict[str, Any]:
    """``default_args`` for a DAG doing ``what`` ("test-data restore").

    A task that fails for good tells the admins once (:class:`AdminsNotifier`, after the retries);
    ``no_retry_for`` adds exception types that fail at once.
    """
    return {
        "owner": OWNER,
        "retries": 2,
        "retry_delay": timedelta(seconds=20),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=5),
        "execution_timeout": execution_timeout,
        "on_failure_callback": AdminsNotifier(what=what),
        "retry_policy": ExceptionRetryPolicy(
            rules=[
                RetryRule(
                    exception=[*NO_RETRY_FOR, *no_retry_for],
                    action=RetryAction.FAIL,
                    reason="retrying cannot fix this",
                )
            ]
        ),
    }


def environment_param(description: str, default: str = "baseline") -> Param:
    """An environment name, validated by the trigger form and the REST API before a run exists."""
    return Param(default, type="string", pattern=NAME_PATTERN, description=description)


def databases_param(description: str) -> Param:
    """A list of database names (empty: all of them), as many as a run conf may hold in an array."""
    return Param(
        [],
        type="array",
        items={"type": "string", "pattern": DATABASE_PATTERN},
        maxItems=LIMITS.max_array_items,
        description=description,
    )


class ParamValue:
    """A param's value for an operator argument, of the type the param declares.

    ``"{{ params.pipeline_id }}"`` in a DAG that renders templates as native objects turns the string
    ``"1234"`` into the int 1234 (Jinja's native rendering reads its output as a Python literal).
    This hands the operator the run's validated param as it is: Airflow calls :meth:`resolve` when
    it renders the task's templated fields.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def resolve(self, context: Any) -> Any:
        return context["params"][self.name]

    def __repr__(self) -> str:  # what the UI shows as the unrendered field
        return f"params.{self.name}"


def param_value(name: str) -> ParamValue:
    """The run's value of param ``name``, as its declared type (for a templated operator argument)."""
    return ParamValue(name)
