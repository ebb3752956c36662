"""A private reference environment for a whole-DAG test, with the run's connections pointing at it, and the
state the DAGs keep in the guard's database (a fresh one per test: fixture ``guard_db``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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


def stored_state(dsn: str) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The config decision records and the open patrol incidents the DAGs left in the guard's database."""
    from baseline_guard.health.guard_state import ConfigDecisionStore, PatrolIncidentStore, connect

    conn = connect(dsn)
    try:
        return ConfigDecisionStore(conn).load(), PatrolIncidentStore(conn).load()
    finally:
        conn.close()
