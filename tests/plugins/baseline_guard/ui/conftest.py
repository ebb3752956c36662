"""The page app served standalone with Airflow's own auth manager, on a real history database.

The history: three days of hourly checks (baseline had a 2-hour pricing outage two days ago), then
real business checks against a sandbox: baseline passes, a wrong ``quote`` release is deployed and
baseline fails at pricing; the project environment ``proj-a`` passes.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from baseline_guard.checks import load_suites, run_checks
from baseline_guard.health import migrate
from baseline_guard.health.recorder import record_check
from baseline_guard.health.records import CheckRecord, ScenarioRecord, Trigger
from baseline_guard.health.store import HistoryStore
from baseline_guard.hooks.environment import EnvironmentHook
from baseline_guard.operators.business_check import DEFAULT_SUITES
from local_stack.connections import env_api_connections
from local_stack.ports import free_port
from local_stack.postgres import LocalPostgres
from local_stack.s3 import LocalS3
from reference_env.launcher import ReferenceEnvironment
from reference_envs import running_env_api
from ui_page_server import USERS, PageServer


def _hourly(environment: str, start: datetime, hours: int, down: range = range(0)) -> list[CheckRecord]:
    records = []
    for h in range(hours):
        at = start + timedelta(hours=h)
        failed = h in down
        scenarios = (
            ScenarioRecord("search_hotels", "search", True, 80.0, "search", "GET /search"),
            ScenarioRecord(
                "quote_price",
                "pricing",
                not failed,
                95.0,
                "pricing",
                "POST /quotes",
                f"{environment}/quote/1",
                "1.1.0",
            ),
        )
        records.append(
            CheckRecord(
                environment,
                at,
                at + timedelta(seconds=20),
                Trigger.HOURLY,
                scenarios,
                dag_id="business_check",
                run_id=f"scheduled__{at:%Y%m%dT%H%M}",
                task_id="run_business_checks",
                try_number=1,
            )
        )
    return records


def _record_real_checks(store: HistoryStore, env: ReferenceEnvironment) -> None:
    suites = load_suites(DEFAULT_SUITES)
    record_check(
        store, run_checks(suites, env.gateway_url, environment="baseline", tags=["smoke"], timeout_s=30)
    )
    api = httpx.Client(base_url=f"{env.api_url}/v1", headers={"Authorization": f"Bearer {env.token}"})
    api.post(
        "/environments", json={"name": "proj-a", "services": {"hotel-detail": "1.1.0"}}
    ).raise_for_status()
    checked = run_checks(
        suites, env.gateway_url, environment="proj-a", routing_key="proj-a", tags=["smoke"], timeout_s=30
    )
    assert checked.passed
    record_check(store, checked)
    hook = EnvironmentHook("ui_env_api")
    for inst in hook.get_service("baseline", "quote").instances:
        op = hook.deploy("baseline", "quote", inst.index, "1.9.2-wrong")
        while not op.state.finished:
            time.sleep(0.1)
            op = hook.get_operation(op.id)
    failed = run_checks(
        suites, env.gateway_url, environment="baseline", tags=["smoke", "pricing"], timeout_s=30
    )
    assert not failed.passed
    record_check(store, failed)


@pytest.fixture(scope="package")
def ui_env_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceEnvironment]:
    """The page's own sandbox: its checks are recorded, its protection state is shown."""
    with running_env_api(tmp_path_factory) as env:
        yield env


@pytest.fixture(scope="package")
def history_dsn(postgres: LocalPostgres, ui_env_api: ReferenceEnvironment) -> Iterator[str]:
    name = f"bg_ui_{secrets.token_hex(4)}"
    postgres.create_database(name)
    dsn = postgres.uri(name)
    migrate.upgrade(dsn)
    env = ui_env_api
    saved = dict(os.environ)
    os.environ.update(
        env_api_connections(env.api_port, env.token, gateway_port=env.gateway_port, conn_id="ui_env_api")
    )
    store = HistoryStore.connect(dsn)
    try:
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=72)
        for record in [*_hourly("baseline", start, 71, down=range(24, 26)), *_hourly("proj-a", start, 71)]:
            store.record(record)
        _record_real_checks(store, env)
    finally:
        store.conn.close()
        os.environ.clear()
        os.environ.update(saved)
    yield dsn
    postgres.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')


@pytest.fixture(scope="package")
def page_server(
    history_dsn: str,
    postgres: LocalPostgres,
    ui_env_api: ReferenceEnvironment,
    s3: LocalS3,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PageServer]:
    home = tmp_path_factory.mktemp("airflow-home")
    bucket = f"bg-ui-{secrets.token_hex(4)}"  # empty: no backup yet
    s3.client().create_bucket(Bucket=bucket)
    (home / "passwords.json").write_text(json.dumps(USERS))
    database = history_dsn.rsplit("/", 1)[1]
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        # a metadata database of its own, never migrated: the HITL details cannot be read, whatever
        # other tests of this session did to theirs (the held-approvals slot is then "not available")
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW_CONN_BASELINE_GUARD_DB": json.dumps(postgres.airflow_connection(database)),
        # the protection slots' sources: the sandbox and the backup store
        **env_api_connections(ui_env_api.api_port, ui_env_api.token, gateway_port=ui_env_api.gateway_port),
        "AIRFLOW_CONN_AWS_BACKUPS": json.dumps(s3.airflow_connection(bucket=bucket)),
    }
    port = free_port()
    log = home / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "baseline_guard.ui.standalone", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240  # importing Airflow takes a while on a busy machine
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            httpx.get(f"{base}/baseline-guard/api/health", timeout=5)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(1)
    yield PageServer(base, history_dsn, log)
    proc.terminate()
    proc.wait(timeout=30)
