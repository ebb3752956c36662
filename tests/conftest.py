"""Session fixtures: real local services, started once per test session on free ports."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from local_stack.ports import free_port
from local_stack.postgres import LocalPostgres
from local_stack.s3 import LocalS3


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """A real PostgreSQL 18 server on 127.0.0.1 with password authentication."""
    server = LocalPostgres(
        pgdata=tmp_path_factory.mktemp("pg") / "data", port=free_port(), password=secrets.token_urlsafe(16)
    ).start()
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def s3() -> Iterator[LocalS3]:
    """A real S3 endpoint (moto server mode) over HTTP on 127.0.0.1."""
    server = LocalS3(port=free_port()).start()
    yield server
    server.stop()
