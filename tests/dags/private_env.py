"""A private reference environment for a whole-DAG test, with the run's connections pointing at it."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from local_stack.connections import env_api_connections
from reference_env.launcher import ReferenceEnvironment


class PrivateEnvironment:
    """The environment, its API (notification sink cleared) and what the sink received per channel."""

    def __init__(self, env: ReferenceEnvironment) -> None:
        self.env = env
        self.api = httpx.Client(
            base_url=f"{env.api_url}/v1", headers={"Authorization": f"Bearer {env.token}"}, timeout=30
        )
        self.api.delete("/notifications").raise_for_status()

    def messages(self, channel: str = "admins") -> list[str]:
        sent = self.api.get("/notifications", params={"channel": channel}).json()
        return [f"{n.get('title', '')}\n{n.get('body', '')}" for n in sent]


def private_environment(
    make_env_api: Callable[[], ReferenceEnvironment], monkeypatch: pytest.MonkeyPatch
) -> PrivateEnvironment:
    env = make_env_api()
    conns = env_api_connections(env.api_port, env.token, gateway_port=env.gateway_port)
    for key, value in conns.items():
        monkeypatch.setenv(key, value)
    return PrivateEnvironment(env)


def delete_variable(key: str) -> None:
    """Forget a Variable a DAG keeps its state in (the session's metadata database is shared)."""
    from airflow.models import Variable

    Variable.delete(key)  # noqa: AIR311 (the metadata DB directly: no task context here)
