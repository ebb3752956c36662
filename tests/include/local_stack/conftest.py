"""Fixtures for the local stack tests: a seeded server of their own, state directories for stacks, and
the standalone Airflow stack shared by the two modules that drive it over REST."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_stack.ports import free_port
from local_stack.postgres import LocalPostgres
from local_stack.seed import seed_all
from local_stack_helpers import StackRun, stack_env


def _outside_pytest_tmp(prefix: str) -> Path:
    """A fresh directory outside ``/tmp/pytest-of-<user>``.

    As root, PostgreSQL runs as a dedicated user that must traverse every parent of its data
    directory; each new pytest session (other engineers' too) resets ``/tmp/pytest-of-<user>`` to
    mode 700, which makes a running server there PANIC ("pg_control: Permission denied").
    """
    return Path(tempfile.mkdtemp(prefix=prefix))


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """A state directory for one ``python -m local_stack`` stack."""
    path = _outside_pytest_tmp("bg-stack-test-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def seeded_postgres() -> Iterator[LocalPostgres]:
    """A PostgreSQL server of this module's own (the seed creates fixed database names)."""
    root = _outside_pytest_tmp("bg-seed-test-")
    server = LocalPostgres(pgdata=root / "data", port=free_port(), password=secrets.token_urlsafe(16)).start()
    seed_all(server)
    yield server
    server.destroy()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def module_state_dir() -> Iterator[Path]:
    """A state directory for one stack shared by a whole test module."""
    path = _outside_pytest_tmp("bg-stack-module-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="package")
def standalone_stack() -> Iterator[StackRun]:
    """One ``python -m local_stack up`` with Airflow standalone for ``test_local_stack_airflow.py`` and
    ``test_local_stack_airflow_config_sync.py``, in that order (file order; the second's tests only
    use services, releases and runs of their own). Airflow's first start (migration, FAB's roles) is
    the slowest part of either module, so it happens once. The last test stops it with SIGTERM."""
    state_dir = _outside_pytest_tmp("bg-stack-standalone-")
    run = StackRun(state_dir=state_dir, env=stack_env(), args=["--airflow-timeout", "1100"]).start()
    try:
        run.wait_ready(1200)  # FAB creates its roles and permissions on the first start (slow under load)
        yield run
    finally:
        run.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
