"""The team base class: owns the environment API connection id and the lazily built hook."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator

from baseline_guard.hooks.environment import EnvironmentHook


class EnvironmentApiOperator(BaseOperator):
    """Base for operators that talk to the environment API.

    :param env_api_conn_id: Airflow connection id of the environment API
    """

    def __init__(self, *, env_api_conn_id: str = EnvironmentHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.env_api_conn_id = env_api_conn_id

    @cached_property
    def env_api(self) -> EnvironmentHook:
        return EnvironmentHook(self.env_api_conn_id)

    def bind_trace_id(self, context: Any) -> str:
        """Name every API call of this try after the task instance, so API and task logs line up."""
        ti = context.get("ti") if hasattr(context, "get") else None
        if ti is not None:
            map_index = getattr(ti, "map_index", -1)
            self.env_api.trace_id = f"{ti.dag_id}.{ti.run_id}.{ti.task_id}.{map_index}.{ti.try_number}"
        return self.env_api.trace_id
