"""Session fixtures: real local services, started once per test session on free ports."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from local_stack.connections import env_api_connections
from local_stack.ports import free_port
from local_stack.postgres import LocalPostgres
from local_stack.s3 import LocalS3
from reference_env.launcher import ReferenceEnvironment
from reference_envs import start_env_api

pytest_plugins = ("backup_store_fixtures", "process_watch")

os.environ.setdefault("XDG_RUNTIME_DIR", f"/tmp/runtime-{os.getuid()}")
Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, exist_ok=True)

# In-process Airflow (DagBag, ``dag.test()``) gets a throw-away home and metadata database of its
# own, set before anything imports Airflow. The local stack's Airflow sets its own.
_AIRFLOW_TEST_HOME = Path(tempfile.mkdtemp(prefix="bg-test-airflow-"))
os.environ.setdefault("AIRFLOW_HOME", str(_AIRFLOW_TEST_HOME))
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_AIRFLOW_TEST_HOME}/airflow.db")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parents[1] / "dags"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

# The modules that each start a whole Airflow stack. Under pytest-xdist (scripts/test.sh) they form one
# unit of work, run one after another on one worker, so two stacks never compete for the CPU, while the
# other worker runs the rest of the suite. Every other folder is one unit of work (its session and
# module fixtures start once). xdist's own ``xdist_group`` marks do not take effect with pytest 9
# (xdist 3.8 renames ``item._nodeid``, which pytest 9 no longer reads): hence a scheduler here.
AIRFLOW_STACK_MODULES = frozenset(
    {"test_local_stack_airflow.py", "test_local_stack_airflow_config_sync.py", "test_local_stack_celery.py"}
)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``--dist loadscope`` with this suite's scopes: the Airflow stack modules together, else the folder."""
    from xdist.scheduler import LoadScopeScheduling

    class StackLaneScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            folder, _, module = nodeid.split("::", 1)[0].rpartition("/")
            return "airflow-stacks" if module in AIRFLOW_STACK_MODULES else folder

    return StackLaneScheduling(config, log) if config.getoption("dist") == "loadscope" else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist the Airflow stack modules first (in file order): the longest unit of work starts first."""
    if config.getoption("dist", "no") != "no":
        items.sort(key=lambda item: item.path.name not in AIRFLOW_STACK_MODULES)


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """A real PostgreSQL 18 server on 127.0.0.1 with password authentication.

    Its data lives outside pytest's temp root: the server runs as another user (PostgreSQL
    refuses root), and a later pytest session resets that root to mode 700.
    """
    root = Path(tempfile.mkdtemp(prefix="bg-test-pg-"))
    server = LocalPostgres(pgdata=root / "data", port=free_port(), password=secrets.token_urlsafe(16)).start()
    yield server
    server.destroy()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def s3() -> Iterator[LocalS3]:
    """A real S3 endpoint (moto server mode) over HTTP on 127.0.0.1."""
    server = LocalS3(port=free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def make_env_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], ReferenceEnvironment]]:
    """Factory for a private reference environment for one test (tests that change it); every one it
    started is stopped when the test ends. Module- or package-wide ones use ``start_env_api``."""
    started: list[ReferenceEnvironment] = []

    def make() -> ReferenceEnvironment:
        started.append(start_env_api(tmp_path_factory))
        return started[-1]

    yield make
    for env in started:
        env.stop()


@pytest.fixture(scope="session")
def env_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceEnvironment]:
    """The shared reference environment; Airflow connections to it are set for the whole session.

    Tests that deploy faulty versions or change rotation use their own (``make_env_api``).
    """
    env = start_env_api(tmp_path_factory)
    saved = {
        k: os.environ.get(k)
        for k in env_api_connections(env.api_port, env.token, gateway_port=env.gateway_port)
    }
    os.environ.update(env_api_connections(env.api_port, env.token, gateway_port=env.gateway_port))
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    env.stop()
