"""A migrated check-history database per test, on the session's real PostgreSQL."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from baseline_guard.health import migrate
from baseline_guard.health.store import HistoryStore
from local_stack.postgres import LocalPostgres

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def history_dsn(postgres: LocalPostgres) -> Iterator[str]:
    name = f"bg_history_{secrets.token_hex(4)}"
    postgres.create_database(name)
    dsn = postgres.uri(name)
    migrate.upgrade(dsn)
    yield dsn
    postgres.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')


@pytest.fixture
def store(history_dsn: str) -> Iterator[HistoryStore]:
    s = HistoryStore.connect(history_dsn)
    yield s
    s.conn.close()
