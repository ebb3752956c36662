"""Run an operator as Airflow's task runner does: each try's ``execute``, then, after the last try, the
task's failure or success callbacks with the same context.

The task instance keeps the XComs of the running try (a new try starts with none, as in Airflow), so
a callback reads what the last try pushed. Outside systems (environment API, gateway, S3, the
notification sink) are the real local ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseOperator


@dataclass
class TryingTaskInstance:
    """The parts of a task instance a check and its notifier use."""

    task_id: str
    run_id: str
    dag_id: str = "business_check"
    map_index: int = -1
    try_number: int = 1
    xcoms: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value

    def xcom_pull(self, task_ids: str | None = None, key: str = "return_value", **_: Any) -> Any:
        return self.xcoms.get(key)


@dataclass
class TaskOutcome:
    result: Any
    error: BaseException | None
    ti: TryingTaskInstance


def run_task(
    operator: BaseOperator, *, run_id: str = "manual__1", tries: int = 1, as_of: datetime | None = None
) -> TaskOutcome:
    """Run ``tries`` tries of ``operator`` (each after the previous one failed), then its callbacks once."""
    ti = TryingTaskInstance(task_id=operator.task_id, run_id=run_id)
    context: dict[str, Any] = {
        "ti": ti,
        "task_instance": ti,
        "run_id": run_id,
        "task": operator,
        "data_interval_end": as_of or datetime.now(UTC),
    }
    result, error = None, None
    for number in range(1, tries + 1):
        ti.try_number, ti.xcoms = number, {}
        try:
            result, error = operator.execute(context), None
            break
        except Exception as exc:
            result, error = None, exc
    context["exception"] = error
    for callback in _callbacks(operator.on_failure_callback if error else operator.on_success_callback):
        callback(context)
    return TaskOutcome(result, error, ti)


def _callbacks(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
