"""Ports, secrets and the Airflow environment of the local stack (no servers needed)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from local_stack.airflow_env import CONNECTION_IDS, airflow_env, shell_exports
from local_stack.config import REPO_ROOT, Ports, StackConfig
from local_stack.connections import conn_env_var


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
