"""``python -m local_stack up --no-airflow`` in a subprocess on free ports: start, stop, restart, kill -9."""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_stack.airflow_env import CONNECTION_IDS
from local_stack.config import BACKUP_BUCKET
from local_stack.connections import conn_env_var
from local_stack.postgres import LocalPostgres
from local_stack.stack import reference_env_available
from local_stack_helpers import StackRun, all_gone, secrets_of, stack_env

START_TIMEOUT = 120


def env_exports(state_dir: Path, env: dict[str, str]) -> dict[str, str]:
    """What ``python -m local_stack env`` prints, parsed back into variables."""
    out = subprocess.run(
        [sys.executable, "-m", "local_stack", "--state-dir", str(state_dir), "env"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    exported = {}
    for line in out.splitlines():
        words = shlex.split(line)
        assert words[0] == "export", line
        name, _, value = words[1].partition("=")
        exported[name] = value
    return exported


@pytest.fixture(scope="module")
def running_stack() -> Iterator[StackRun]:
    state = Path(tempfile.mkdtemp(prefix="bg-stack-test-"))
    run = StackRun(state_dir=state, env=stack_env(), args=["--no-airflow"]).start()
    try:
        run.wait_ready(START_TIMEOUT)
        yield run
    finally:
        run.stop()
        shutil.rmtree(state, ignore_errors=True)


def test_every_part_keeps_running_after_the_banner(running_stack: StackRun) -> None:
    """The parts are started from threads; a child's PR_SET_PDEATHSIG fires when the thread that forked
    it ends, which killed moto and the reference environment a moment after the banner."""
    time.sleep(5)
    out = running_stack.drain(wait=1.0)
    assert "exited unexpectedly" not in out and running_stack.process.poll() is None, out[-2000:]
    commands = [" ".join(p.cmdline()) for p in running_stack.processes() if p.is_running()]
    assert any("moto.server" in c for c in commands), commands
    if reference_env_available():
        assert any("-m reference_env" in c for c in commands), commands


def test_up_prints_where_everything_is_and_no_secret(running_stack: StackRun) -> None:
    out = running_stack.output
    env = running_stack.env
    assert f"S3 endpoint            http://127.0.0.1:{env['BG_S3_PORT']}" in out
    assert f"PostgreSQL             127.0.0.1:{env['BG_PG_PORT']}" in out
    assert "8 created and seeded" in out
    if reference_env_available():
        assert f"http://127.0.0.1:{env['BG_ENV_API_PORT']}/docs" in out
    for secret in secrets_of(running_stack.state_dir).values():
        assert secret not in out
    secrets_file = running_stack.state_dir / "secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600


def test_env_prints_every_connection_and_each_parses_as_an_airflow_connection(
    running_stack: StackRun,
) -> None:
    from airflow.models.connection import Connection

    exported = env_exports(running_stack.state_dir, running_stack.env)
    assert set(exported) == {conn_env_var(c) for c in CONNECTION_IDS}  # the bucket is in aws_backups
    env = running_stack.env
    conns = {cid: Connection.from_json(exported[conn_env_var(cid)], conn_id=cid) for cid in CONNECTION_IDS}
    api = conns["baseline_env_api"]
    assert (api.conn_type, api.host, api.port, api.schema) == (
        "http",
        "127.0.0.1",
        int(env["BG_ENV_API_PORT"]),
        "http",
    )
    assert api.password == secrets_of(running_stack.state_dir)["env_api_token"]
    assert conns["aws_backups"].conn_type == "aws"
    assert conns["aws_backups"].extra_dejson["endpoint_url"] == f"http://127.0.0.1:{env['BG_S3_PORT']}"
    for audience in ("admins", "oncall"):
        apprise = conns[f"apprise_{audience}"]
        assert apprise.conn_type == "apprise"
        assert apprise.extra_dejson["config"] == {
            "path": f"json://127.0.0.1:{env['BG_ENV_API_PORT']}/v1/notifications/{audience}",
            "tag": "all",
        }
    pg = conns["pg_prod_quote"]
    assert (pg.conn_type, pg.port, pg.schema) == ("postgres", int(env["BG_PG_PORT"]), "prod_quote")


def test_postgres_connections_really_connect(
    running_stack: StackRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    exported = env_exports(running_stack.state_dir, running_stack.env)
    for name, value in exported.items():
        monkeypatch.setenv(name, value)
    pg_ids = [c for c in CONNECTION_IDS if c.startswith("pg_")]
    assert len(pg_ids) == 8
    for conn_id in pg_ids:
        database = conn_id.removeprefix("pg_")
        assert PostgresHook(postgres_conn_id=conn_id).get_first("SELECT current_database()") == (database,)
    hotels = PostgresHook(postgres_conn_id="pg_baseline_hotel_search").get_first(
        "SELECT count(*) FROM hotels"
    )
    assert hotels == (12,)


def test_backup_bucket_exists_behind_the_aws_connection(
    running_stack: StackRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    from baseline_guard.hooks.backup_store import BackupStoreHook

    exported = env_exports(running_stack.state_dir, running_stack.env)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_BACKUPS", exported["AIRFLOW_CONN_AWS_BACKUPS"])
    hook = BackupStoreHook()
    assert hook.bucket == BACKUP_BUCKET and hook.test_connection()[0]
    assert hook.check_for_bucket(BACKUP_BUCKET)
    hook.load_string("ok", key="probe/local-stack", bucket_name=BACKUP_BUCKET)
    assert hook.read_key("probe/local-stack", bucket_name=BACKUP_BUCKET) == "ok"


@pytest.mark.skipif(not reference_env_available(), reason="reference environment API not in this checkout")
def test_reference_api_answers_with_the_stack_token(running_stack: StackRun) -> None:
    port = running_stack.env["BG_ENV_API_PORT"]
    token = secrets_of(running_stack.state_dir)["env_api_token"]
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/environments", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        kinds = {e["kind"] for e in json.loads(response.read())}
    assert {"production", "baseline"} <= kinds


def test_stop_redis_needs_the_celery_mode(running_stack: StackRun) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "local_stack", "--state-dir", str(running_stack.state_dir), "stop", "redis"],
        env=running_stack.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "is not in the Celery mode: only `up --celery` runs Redis" in done.stderr
    assert not (running_stack.state_dir / "redis-stop-requested").exists()


def test_sigterm_stops_everything_and_a_second_start_works(state_dir: Path) -> None:
    run = StackRun(state_dir=state_dir, env=stack_env(), args=["--no-airflow"]).start()
    try:
        run.wait_ready(START_TIMEOUT)
        procs = run.processes()
        assert len(procs) > 3  # up, moto, postgres and its workers (+ the reference API and sandbox)
        run.signal(signal.SIGTERM)
        assert run.wait_exit() == 0
        assert all_gone(procs) == []
        assert "Stopped." in run.output
        assert not (state_dir / "stack.pid").exists()

        run.start()
        run.wait_ready(START_TIMEOUT)
        assert "0 created and seeded, 8 already there" in run.output
        run.signal(signal.SIGINT)  # Ctrl-C
        assert run.wait_exit() == 0
    finally:
        run.stop()


def test_start_after_kill_9_cleans_up_and_down_stops_the_stack(state_dir: Path) -> None:
    run = StackRun(state_dir=state_dir, env=stack_env(), args=["--no-airflow"]).start()
    try:
        run.wait_ready(START_TIMEOUT)
        procs = run.processes()
        run.signal(signal.SIGKILL)
        run.wait_exit()

        run.start()
        run.wait_ready(START_TIMEOUT)
        assert all_gone(procs) == []  # the killed stack's processes (postgres included) are gone
        procs = run.processes()
        down = subprocess.run(
            [sys.executable, "-m", "local_stack", "--state-dir", str(state_dir), "down"],
            env=run.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert down.returncode == 0, down.stdout + down.stderr
        assert run.wait_exit() == 0
        assert all_gone(procs) == []
    finally:
        run.stop()


def test_a_taken_port_is_named_with_the_variable_to_change(state_dir: Path) -> None:
    env = stack_env()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", int(env["BG_S3_PORT"])))
        blocker.listen()
        run = StackRun(state_dir=state_dir, env=env, args=["--no-airflow"]).start()
        code = run.wait_exit(timeout=60)
    assert code == 1
    assert f"port {env['BG_S3_PORT']} (S3 endpoint (moto))" in run.output
    assert "set BG_S3_PORT to a free port" in run.output
    assert not LocalPostgres(pgdata=state_dir / "pg", port=0, password="").is_running()


def test_a_bad_port_variable_is_refused(state_dir: Path) -> None:
    run = StackRun(state_dir=state_dir, env=stack_env(BG_PG_PORT="54x"), args=["--no-airflow"]).start()
    assert run.wait_exit(timeout=60) == 2
    assert "BG_PG_PORT='54x' is not a valid port: expected an integer from 1024 to 65535" in run.output
