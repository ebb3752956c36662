"""Ports, secrets and the Airflow environment of the local stack (no servers needed)."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from local_stack.airflow_env import CONNECTION_IDS, airflow_env, shell_exports
from local_stack.celery_mode import celery_env
from local_stack.config import REPO_ROOT, Ports, StackConfig
from local_stack.connections import conn_env_var
from local_stack.shared_settings import SHARED_SETTINGS_FILE, read_env_file


def test_default_ports_and_overrides() -> None:
    assert Ports.from_env({}).airflow_port == 28080
    assert Ports.from_env({}).pg_port == 28432
    assert Ports.from_env({"BG_S3_PORT": "39000"}).s3_port == 39000


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"BG_AIRFLOW_PORT": "80"},
            "BG_AIRFLOW_PORT='80' is not a valid port: expected an integer from 1024",
        ),
        ({"BG_GATEWAY_PORT": "-1"}, "BG_GATEWAY_PORT='-1' is not a valid port"),
        ({"BG_S3_PORT": "28432"}, "BG_PG_PORT and BG_S3_PORT are both 28432: every port must be different"),
    ],
)
def test_bad_ports_are_refused_with_what_was_expected(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        Ports.from_env(env)


def test_secrets_are_generated_once_into_a_private_file(tmp_path: Path) -> None:
    first = StackConfig.load(tmp_path / "stack", environ={})
    again = StackConfig.load(tmp_path / "stack", environ={})
    assert first.secrets == again.secrets
    path = tmp_path / "stack" / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("{not json")
    with pytest.raises(ValueError, match="is not a valid secrets file"):
        StackConfig.load(tmp_path / "stack", environ={})


def test_airflow_env_points_airflow_at_the_repository_and_the_stack(tmp_path: Path) -> None:
    config = StackConfig.load(tmp_path, environ={"BG_AIRFLOW_PORT": "38080"})
    env = airflow_env(config)
    assert env["AIRFLOW_HOME"] == str(tmp_path / "airflow")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO_ROOT / "dags")
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(REPO_ROOT / "plugins")
    assert env["AIRFLOW__API__PORT"] == "38080"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:38080/execution/"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "6"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://postgres:")
    for conn_id in CONNECTION_IDS:
        assert json.loads(env[conn_env_var(conn_id)])["conn_type"]
    assert len(CONNECTION_IDS) == len(set(CONNECTION_IDS)) == 14  # + baseline_guard_db (check history)


def test_env_with_airflow_exports_the_home_without_the_path(tmp_path: Path) -> None:
    config = StackConfig.load(tmp_path, environ={})
    short = shell_exports(config)
    full = shell_exports(config, full_airflow=True)
    assert "AIRFLOW_HOME" not in short
    assert f"export AIRFLOW_HOME={tmp_path / 'airflow'}" in full
    assert "export PATH=" not in full
    assert config.secrets.postgres_password in short  # `env` prints secrets, as documented


def test_celery_mode_env_is_the_shared_settings_plus_this_stacks_addresses(tmp_path: Path) -> None:
    config = StackConfig.load(tmp_path, environ={"BG_REDIS_PORT": "38379", "BG_PG_PORT": "38432"})
    env = celery_env(config)
    shared = read_env_file(SHARED_SETTINGS_FILE)
    assert {k: env[k] for k in shared} == shared
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:38379/0"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://postgres:")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].endswith("@127.0.0.1:38432/airflow_metadata")
    assert env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == "local_stack.hostname.from_environment"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('A="quoted"', "expected KEY=VALUE without quotes"),
        ("A=${SECRET}", "expected KEY=VALUE without quotes"),
        ("NO_EQUALS_SIGN", "expected KEY=VALUE"),
        ("A=1\nA=2", "A is set twice"),
    ],
)
def test_shared_settings_file_refuses_what_compose_would_read_differently(
    tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "settings.env"
    path.write_text(f"# comment\n\n{line}\n")
    with pytest.raises(ValueError, match=rf"settings.env:\d+: {re.escape(message)}"):
        read_env_file(path)


def test_celery_mode_cannot_go_without_airflow(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "local_stack", "--state-dir", str(tmp_path), "up", "--celery", "--no-airflow"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "--celery runs Airflow on Celery workers: it cannot go with --no-airflow" in done.stderr
