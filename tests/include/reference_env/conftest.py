"""Fixtures: one real reference environment (API + gateway + sandbox processes) per test session."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from reference_env.launcher import ReferenceEnvironment
from reference_envs import running_env_api


@pytest.fixture(scope="package")
def refenv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceEnvironment]:
    """This folder's own reference environment (its tests change it); stopped with the folder."""
    with running_env_api(tmp_path_factory) as env:
        yield env


@pytest.fixture(scope="package")
def api(refenv: ReferenceEnvironment) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=refenv.api_url, headers={"Authorization": f"Bearer {refenv.token}"}, timeout=20
    ) as client:
        yield client


@pytest.fixture(scope="package")
def gateway(refenv: ReferenceEnvironment) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=refenv.gateway_url, timeout=20) as client:
        yield client
