"""Fixtures: one real reference environment (API + gateway + sandbox processes) per test session."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest
from local_stack.ports import free_port
from reference_env.launcher import ReferenceEnvironment


@pytest.fixture(scope="session")
def refenv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceEnvironment]:
    env = ReferenceEnvironment(
        tmp_path_factory.mktemp("refenv"), api_port=free_port(), gateway_port=free_port(),
        token=secrets.token_urlsafe(24),
    )  # fmt: skip
    env.start()
    yield env
    env.stop()


@pytest.fixture(scope="session")
def api(refenv: ReferenceEnvironment) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=refenv.api_url, headers={"Authorization": f"Bearer {refenv.token}"}, timeout=20
    ) as client:
        yield client


@pytest.fixture(scope="session")
def gateway(refenv: ReferenceEnvironment) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=refenv.gateway_url, timeout=20) as client:
        yield client
