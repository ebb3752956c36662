"""docker-compose.yaml is consistent with the project (no Docker engine here: read it with PyYAML)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from baseline_guard.access import USER_ROLES
from local_stack.airflow_env import CONNECTION_IDS, airflow_env, connections
from local_stack.config import AIRFLOW_USERS, BACKUP_BUCKET, Ports, StackConfig, StackSecrets
from local_stack.connections import conn_env_var

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)(?::?[-?][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


def pins() -> dict[str, str]:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return {name.lower(): version for name, _, version in (d.partition("==") for d in deps) if version}


def substitute(value: str) -> str:
    """Compose-style ``${VAR}`` / ``${VAR:-default}`` / ``${VAR:?msg}`` with a URL-safe stand-in or the default."""

    def one(match: re.Match[str]) -> str:
        default = re.match(r"\$\{[A-Z0-9_]+:-([^}]*)\}", match.group(0))
        return default.group(1) if default else f"value-of-{match.group(1).lower()}"

    return VARIABLE.sub(one, value)


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_every_airflow_service_runs_the_pinned_official_image(services: dict[str, dict]) -> None:
    airflow = pins()["apache-airflow"]
    assert set(services) >= AIRFLOW_SERVICES
    for name in AIRFLOW_SERVICES:
        build = services[name]["build"]
        assert build["args"]["AIRFLOW_IMAGE"] == f"apache/airflow:{airflow}-python3.11", name
        assert build["args"]["AIRFLOW_VERSION"] == airflow, name
        assert services[name]["image"].endswith(f":{airflow}-python3.11"), name
        assert (REPO / build["context"] / build["dockerfile"]).is_file(), name
    dockerfile = (REPO / "docker" / "airflow.Dockerfile").read_text()
    assert f"ARG AIRFLOW_IMAGE=apache/airflow:{airflow}-python3.11" in dockerfile
    assert f"ARG AIRFLOW_VERSION={airflow}" in dockerfile


def test_airflow_image_extras_have_the_pyproject_pins() -> None:
    lines = (REPO / "docker" / "airflow-requirements.txt").read_text().splitlines()
    required = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    assert required, "docker/airflow-requirements.txt pins nothing"
    project = pins()
    for package, version in required.items():
        assert project.get(package.lower()) == version, (
            f"{package}=={version} but pyproject pins {project.get(package)}"
        )


def test_celery_executor_with_an_existing_redis_broker(services: dict[str, dict]) -> None:
    for name in AIRFLOW_SERVICES:
        env = environment(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        broker = re.match(r"redis://(?:[^@]*@)?([^:/]+)", env["AIRFLOW__CELERY__BROKER_URL"])
        assert broker, env["AIRFLOW__CELERY__BROKER_URL"]
        assert services[broker.group(1)]["image"].startswith("redis:")
    worker = services["airflow-worker"]
    assert worker["command"][:2] == ["celery", "worker"]
    metadata = re.search(r"@([^/:]+)/", environment(worker)["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert metadata and services[metadata.group(1)]["image"].startswith("postgres:")


def test_each_depends_on_names_an_existing_service(services: dict[str, dict]) -> None:
    for name, service in services.items():
        for dependency in service.get("depends_on", []):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            assert dependency != name


def test_mounted_folders_and_build_contexts_exist(services: dict[str, dict]) -> None:
    mounted = set()
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (REPO / source).is_dir(), f"{name} mounts {source}, which is not in the repository"
                mounted.add(source)
        if "build" in service:
            assert (REPO / service["build"]["context"] / service["build"]["dockerfile"]).is_file(), name
    assert {"./dags", "./plugins", "./include"} <= mounted


def test_connection_ids_are_the_local_stacks(services: dict[str, dict]) -> None:
    local = connections(StackConfig(state_dir=REPO / ".local" / "x", ports=Ports.from_env({}),
                                    secrets=StackSecrets.generate()))  # fmt: skip
    for name in AIRFLOW_SERVICES:
        env = environment(services[name])
        conn_vars = {k for k in env if k.startswith("AIRFLOW_CONN_")}
        assert conn_vars == {conn_env_var(c) for c in CONNECTION_IDS}, name
        assert env["AIRFLOW_VAR_BASELINE_GUARD_BACKUP_BUCKET"] == BACKUP_BUCKET
    env = environment(services["airflow-scheduler"])
    for conn_id in CONNECTION_IDS:
        raw = env[conn_env_var(conn_id)]
        parsed = json.loads(substitute(raw))
        assert parsed["conn_type"] == local[conn_id]["conn_type"], conn_id
        assert parsed.get("schema") == local[conn_id].get("schema"), conn_id
        if "password" in parsed:  # secrets come from .env, never written into the file
            assert VARIABLE.fullmatch(re.search(r'"password": "([^"]*)"', raw).group(1)), conn_id


def test_connections_parse_as_airflow_connections(services: dict[str, dict]) -> None:
    from airflow.models.connection import Connection

    env = environment(services["airflow-worker"])
    for conn_id in CONNECTION_IDS:
        conn = Connection.from_json(substitute(env[conn_env_var(conn_id)]), conn_id=conn_id)
        assert conn.conn_type
    s3 = Connection.from_json(substitute(env["AIRFLOW_CONN_AWS_BACKUPS"]), conn_id="aws_backups")
    assert s3.extra_dejson["endpoint_url"] == "http://minio:9000"
    assert "minio" in services


def test_the_backup_bucket_is_created(services: dict[str, dict]) -> None:
    init = services["minio-init"]
    assert f"local/{BACKUP_BUCKET}" in "\n".join(init["entrypoint"])
    assert "minio" in init["depends_on"]


def test_reference_api_service_runs_reference_env(services: dict[str, dict]) -> None:
    ref = services["reference-env"]
    command = ref["command"]
    assert command[:3] == ["python", "-m", "reference_env"]
    api_port = command[command.index("--api-port") + 1]
    api_conn = json.loads(
        substitute(environment(services["airflow-scheduler"])["AIRFLOW_CONN_BASELINE_ENV_API"])
    )
    assert (api_conn["host"], str(api_conn["port"])) == ("reference-env", api_port)
    assert VARIABLE.fullmatch(environment(ref)["REFENV_TOKEN"])
    assert ref["build"]["dockerfile"] == "docker/Dockerfile"
    seed = services["sandbox-seed"]
    assert seed["command"] == ["python", "-m", "local_stack.seed"]


def test_every_required_variable_is_in_env_example() -> None:
    text = (REPO / "docker-compose.yaml").read_text()
    required = {m.group(1) for m in VARIABLE.finditer(text) if ":-" not in m.group(0)}
    documented = {line.split("=", 1)[0].lstrip("# ") for line in (REPO / ".env.example").read_text().splitlines()
                  if "=" in line}  # fmt: skip
    assert required, "no variables found: the pattern is broken"
    assert required <= documented, f"missing from .env.example: {sorted(required - documented)}"


def test_same_auth_manager_users_and_approvers_as_the_local_stack(services: dict[str, dict]) -> None:
    local = airflow_env(StackConfig(state_dir=REPO / ".local" / "x", ports=Ports.from_env({}),
                                    secrets=StackSecrets.generate()))  # fmt: skip
    assert local["AIRFLOW__CORE__AUTH_MANAGER"] == "baseline_guard.auth_manager.BaselineGuardAuthManager"
    for name in AIRFLOW_SERVICES:
        env = environment(services[name])
        assert env["AIRFLOW__CORE__AUTH_MANAGER"] == local["AIRFLOW__CORE__AUTH_MANAGER"], name
        assert not any(k.startswith("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER") for k in env), name
        for var in ("BASELINE_GUARD_ADMIN_USERS", "BASELINE_GUARD_ONCALL_USERS"):
            assert substitute(env[var]) == local[var], (name, var)
        assert "/opt/airflow/plugins" in env["PYTHONPATH"].split(":"), name  # baseline_guard.access
    init = " ".join(services["airflow-init"]["command"])
    assert (
        "airflow db migrate && python -m baseline_guard.access --passwords-file /run/secrets/airflow_passwords"
        in init
    )
    assert "airflow_passwords" in services["airflow-init"]["secrets"]
    assert {user: role for user, (role, _) in AIRFLOW_USERS.items()} == USER_ROLES  # banner = roles synced
