"""docker-compose.yaml is consistent with the project (no Docker engine here: read it with PyYAML)."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from baseline_guard.access import USER_ROLES
from local_stack.airflow_env import CONNECTION_IDS, airflow_env, connections
from local_stack.celery_mode import COMPOSE_ONLY_SETTINGS, REDIS_CONF, WORKER_QUEUES, celery_env, redis_argv
from local_stack.config import AIRFLOW_USERS, BACKUP_BUCKET, Ports, StackConfig, StackSecrets
from local_stack.connections import conn_env_var
from local_stack.shared_settings import SHARED_SETTINGS_FILE, read_env_file

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


def declared_environment(service: dict) -> dict[str, str]:
    """The service's own ``environment`` block."""
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def environment(service: dict) -> dict[str, str]:
    """What the container gets: its ``env_file`` files, overridden by its ``environment`` (compose's order)."""
    env: dict[str, str] = {}
    for path in service.get("env_file", []):
        env.update(read_env_file(REPO / path))
    return {**env, **declared_environment(service)}


def test_every_airflow_service_runs_the_pinned_official_image(services: dict[str, dict]) -> None:
    airflow = pins()["apache-airflow"]
    assert set(services) >= AIRFLOW_SERVICES
    for name in AIRFLOW_SERVICES:
        build = services[name]["build"]
        assert build["args"]["AIRFLOW_IMAGE"] == f"apache/airflow:slim-{airflow}-python3.11", name
        assert build["args"]["AIRFLOW_VERSION"] == airflow, name
        assert services[name]["image"].endswith(f":{airflow}-python3.11"), name
        assert (REPO / build["context"] / build["dockerfile"]).is_file(), name
    dockerfile = (REPO / "docker" / "airflow.Dockerfile").read_text()
    assert f"ARG AIRFLOW_IMAGE=apache/airflow:slim-{airflow}-python3.11" in dockerfile
    assert f"ARG AIRFLOW_VERSION={airflow}" in dockerfile


def requirement_pins(text: str) -> dict[str, str]:
    """``name -> version`` of the ``name==version`` lines of a requirements file (markers ignored)."""
    found = {}
    for line in text.splitlines():
        spec = line.split(";", 1)[0].strip()
        if spec and not spec.startswith(("#", "-")):
            name, sep, version = spec.partition("==")
            assert sep, f"not pinned: {line!r}"
            found[name.split("[", 1)[0].strip().lower().replace("_", "-")] = version.strip()
    return found


def requirement_lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}


def locked_runtime_requirements() -> str:
    """Every package the project needs at run time, at the lock file's version (``uv export``)."""
    return subprocess.run(
        [
            "uv",
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--no-hashes",
            "--no-annotate",
            "--no-header",
            "--format",
            "requirements-txt",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout


def test_airflow_image_installs_exactly_the_locked_packages() -> None:
    text = (REPO / "docker" / "airflow-requirements.txt").read_text()
    image, locked = requirement_lines(text), requirement_lines(locked_runtime_requirements())
    assert image == locked, (
        f"docker/airflow-requirements.txt differs from uv.lock: only in the image {sorted(image - locked)}, "
        f"only in the lock {sorted(locked - image)}; regenerate it (the command is in its header)"
    )
    pinned = requirement_pins(text)
    for package, version in pins().items():  # the direct dependencies, Airflow itself included
        assert pinned[package.split("[", 1)[0]] == version, package
    dockerfile = (REPO / "docker" / "airflow.Dockerfile").read_text()
    assert "--no-deps -r /tmp/baseline-guard-requirements.txt" in dockerfile


def test_compose_reads_the_shared_airflow_settings_and_overrides_none(services: dict[str, dict]) -> None:
    shared = read_env_file(SHARED_SETTINGS_FILE)
    assert shared["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert [REPO / p for p in service["env_file"]] == [SHARED_SETTINGS_FILE], name
        overridden = shared.keys() & declared_environment(service).keys()
        assert not overridden, (
            f"{name} overrides the shared settings {sorted(overridden)} (docker/airflow-settings.env)"
        )
        assert {k: environment(service)[k] for k in shared} == shared, name


def test_the_tested_celery_mode_runs_with_the_same_settings_as_compose(services: dict[str, dict]) -> None:
    config = StackConfig(
        state_dir=REPO / ".local" / "x", ports=Ports.from_env({}), secrets=StackSecrets.generate()
    )
    local = celery_env(config)
    compose_env = environment(services["airflow-scheduler"])
    shared = read_env_file(SHARED_SETTINGS_FILE)
    assert {k: local[k] for k in shared} == shared
    # every other Airflow setting compose makes (addresses, secrets), the local mode makes too
    per_deployment = (
        {k for k in compose_env if k.startswith("AIRFLOW__")} - shared.keys() - COMPOSE_ONLY_SETTINGS
    )
    assert per_deployment <= local.keys(), sorted(per_deployment - local.keys())
    assert local["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert local["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    assert compose_env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")


def test_compose_workers_serve_the_queues_of_the_local_workers(services: dict[str, dict]) -> None:
    command = services["airflow-worker"]["command"]
    queues = command[command.index("--queues") + 1].split(",")
    assert tuple(queues) == WORKER_QUEUES
    assert read_env_file(SHARED_SETTINGS_FILE)["BASELINE_GUARD_PGTOOLS_QUEUE"] in queues


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


def test_compose_redis_persists_with_the_local_stacks_redis_settings(
    compose: dict, services: dict[str, dict]
) -> None:
    redis = services["redis"]
    [program, conf_path] = redis["command"]  # nothing on the command line overrides the shared file
    assert program == "redis-server"
    source_at = {target: source for source, target, *_ in (v.split(":") for v in redis["volumes"])}
    assert REPO / source_at[conf_path] == REDIS_CONF
    assert source_at["/data"] in compose["volumes"]  # named: the append-only file outlives the container
    local = redis_argv(
        StackConfig(
            state_dir=REPO / ".local" / "x", ports=Ports.from_env({}), secrets=StackSecrets.generate()
        )
    )
    assert local[1] == str(REDIS_CONF)
    assert not {"--appendonly", "--appendfsync", "--save"} & set(local)  # the file decides, here too
    settings = [line.split(None, 1) for line in REDIS_CONF.read_text().splitlines() if line[:1].isalpha()]
    assert {key: value for key, value in settings} == {
        "appendonly": "yes",
        "appendfsync": "always",
        "save": '""',
    }


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
                assert (REPO / source).exists(), f"{name} mounts {source}, which is not in the repository"
                mounted.add(source)
        if "build" in service:
            assert (REPO / service["build"]["context"] / service["build"]["dockerfile"]).is_file(), name
    assert {"./dags", "./plugins", "./include"} <= mounted


def test_connection_ids_are_the_local_stacks(services: dict[str, dict]) -> None:
    local = connections(
        StackConfig(
            state_dir=REPO / ".local" / "x", ports=Ports.from_env({}), secrets=StackSecrets.generate()
        )
    )
    for name in AIRFLOW_SERVICES:
        env = environment(services[name])
        conn_vars = {k for k in env if k.startswith("AIRFLOW_CONN_")}
        assert conn_vars == {conn_env_var(c) for c in CONNECTION_IDS}, name
        assert not [k for k in env if k.startswith("AIRFLOW_VAR_")], (
            "the bucket lives in the aws_backups connection"
        )
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
    assert s3.extra_dejson["service_config"] == {"s3": {"bucket_name": BACKUP_BUCKET}}
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
    documented = {
        line.split("=", 1)[0].lstrip("# ")
        for line in (REPO / ".env.example").read_text().splitlines()
        if "=" in line
    }
    assert required, "no variables found: the pattern is broken"
    assert required <= documented, f"missing from .env.example: {sorted(required - documented)}"


def test_same_auth_manager_users_and_approvers_as_the_local_stack(services: dict[str, dict]) -> None:
    local = airflow_env(
        StackConfig(
            state_dir=REPO / ".local" / "x", ports=Ports.from_env({}), secrets=StackSecrets.generate()
        )
    )
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


def test_prometheus_scrapes_the_api_server_with_the_shipped_config_and_rules(
    services: dict[str, dict],
) -> None:
    from baseline_guard.access import METRICS_ROLE
    from baseline_guard.ui.app import URL_PREFIX

    prometheus, token = services["prometheus"], services["metrics-token"]
    mounts = dict(v.split(":")[:2] for v in prometheus["volumes"])
    assert mounts["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    config = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    for rule_file in config["rule_files"]:  # relative to the config file's folder
        assert mounts[f"./deploy/prometheus/{rule_file}"] == f"/etc/prometheus/{rule_file}"
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == f"{URL_PREFIX}/metrics"
    [target] = job["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host in services and host == "airflow-apiserver"
    assert any(p.endswith(f":{port}") for p in services[host]["ports"])
    # the token file Prometheus reads is the one metrics-token writes, in the volume both mount
    credentials = Path(job["authorization"]["credentials_file"])
    volume = next(src for src, dst in mounts.items() if credentials.is_relative_to(dst))
    assert volume in {"prometheus-token"} and mounts[volume] == str(credentials.parent)
    token_mounts = dict(v.split(":")[:2] for v in token["volumes"])
    argv = token["command"]
    assert Path(token_mounts[volume]) / credentials.name == Path(argv[argv.index("--out") + 1])
    assert argv[argv.index("--username") + 1] == "metrics" and USER_ROLES["metrics"] == METRICS_ROLE
    assert {"./plugins", "./include"} <= set(token_mounts)  # the package it runs is mounted, as in Airflow's
    assert argv[argv.index("--url") + 1] == f"http://airflow-apiserver:{port}"
    assert "airflow_passwords" in token["secrets"]
    assert "--web.enable-lifecycle" not in prometheus["command"]
    retention = next(a for a in prometheus["command"] if a.startswith("--storage.tsdb.retention.time="))
    assert int(retention.split("=")[1].removesuffix("d")) >= 33  # the 30-day window and the 3-day burn rate
    assert token["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    assert prometheus["depends_on"]["metrics-token"]["condition"] == "service_healthy"
