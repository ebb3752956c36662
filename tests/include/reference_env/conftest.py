"""Fixtures: one real reference environment (API + gateway + sandbox processes) per test session."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from reference_env.launcher import ReferenceEnvironment


@pytest.fixture(scope="session")
def refenv(make_env_api: Callable[[], ReferenceEnvironment]) -> ReferenceEnvironment:
    """This folder's own reference environment (its tests change it)."""
    return make_env_api()


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
