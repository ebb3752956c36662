"""Run a deferrable operator in this process as Airflow does: execute, run each trigger, resume (tests, benchmarks)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from airflow.sdk.exceptions import TaskDeferred
from airflow.triggers.base import BaseTrigger


async def first_event(trigger: BaseTrigger) -> Any:
    """The first event the trigger yields (what the triggerer hands back to the task)."""
    async for event in trigger.run():
        return event
    raise AssertionError(f"{trigger!r} ended without an event")


class DeferrableRun:
    """``run(operator)``: execute, and on every deferral run the trigger and call the resume method.

    ``deferrals`` keeps each ``TaskDeferred`` raised, so a test can check the trigger and the state.
    """

    def __init__(self) -> None:
        self.deferrals: list[TaskDeferred] = []

    def __call__(self, operator: Any, context: dict[str, Any] | None = None) -> Any:
        context = context if context is not None else {}
        step: Callable[[], Any] = lambda: operator.execute(context)  # noqa: E731
        while True:
            try:
                return step()
            except TaskDeferred as deferred:
                self.deferrals.append(deferred)
                event = asyncio.run(first_event(deferred.trigger))
                resume = getattr(operator, deferred.method_name)
                kwargs = deferred.kwargs or {}
                step = functools.partial(resume, context, event=event.payload, **kwargs)
