"""Reference environments for tests: one started per fixture scope, stopped when that scope ends."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from local_stack.ports import free_port
from reference_env.launcher import ReferenceEnvironment


def start_env_api(tmp_path_factory: pytest.TempPathFactory) -> ReferenceEnvironment:
    """A fresh reference environment (API + gateway + sandbox processes); the caller stops it."""
    return ReferenceEnvironment(
        tmp_path_factory.mktemp("envapi"), free_port(), free_port(), secrets.token_urlsafe(16)
    ).start()


@contextmanager
def running_env_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceEnvironment]:
    """``start_env_api`` for a ``with`` block: the environment stops when the block ends."""
    env = start_env_api(tmp_path_factory)
    try:
        yield env
    finally:
        env.stop()
