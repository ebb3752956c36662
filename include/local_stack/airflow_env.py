"""The Airflow configuration of the local stack: every setting and connection as environment variables.

Connections are ``AIRFLOW_CONN_<ID>`` in JSON form (safest: see docs/AIRFLOW3 notes); nothing is
written to Airflow's metadata database, so a fresh ``AIRFLOW_HOME`` needs no set-up step.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from urllib.parse import quote

from local_stack.config import AIRFLOW_USERS, BACKUP_BUCKET, StackConfig, write_private
from local_stack.connections import (
    APPRISE_ADMINS_CONN_ID,
    APPRISE_ONCALL_CONN_ID,
    ENV_API_CONN_ID,
    GATEWAY_CONN_ID,
    as_env,
    reference_env_connections,
)
from local_stack.postgres import PG_BIN_DIR
from local_stack.s3 import s3_connection
from local_stack.seed import all_databases

BACKUPS_CONN_ID = "aws_backups"
AIRFLOW_METADATA_DB = "airflow_metadata"
AUTH_MANAGER = "baseline_guard.auth_manager.BaselineGuardAuthManager"
HISTORY_CONN_ID = "baseline_guard_db"  # the check history (Baseline health page)
HISTORY_DB = "baseline_guard"


def postgres_conn_id(prefix: str, service_db: str) -> str:
    """``pg_baseline_hotel_search``: the connection reaching database ``baseline_hotel_search``."""
    return f"pg_{prefix}_{service_db}"


POSTGRES_CONN_IDS: tuple[str, ...] = tuple(postgres_conn_id(p, db) for p, db, _ in all_databases())

# Every connection id the local stack defines (docker-compose.yaml defines the same set).
CONNECTION_IDS: tuple[str, ...] = (
    ENV_API_CONN_ID,
    GATEWAY_CONN_ID,
    BACKUPS_CONN_ID,
    APPRISE_ADMINS_CONN_ID,
    APPRISE_ONCALL_CONN_ID,
    *POSTGRES_CONN_IDS,
    HISTORY_CONN_ID,
)


def connections(config: StackConfig) -> dict[str, dict[str, object]]:
    """Every connection of the local stack, by id, in Airflow's JSON form."""
    ports, host = config.ports, config.host
    conns = reference_env_connections(
        ports.env_api_port, config.secrets.env_api_token, gateway_port=ports.gateway_port, host=host
    )
    conns[BACKUPS_CONN_ID] = s3_connection(config.s3_endpoint_url, BACKUP_BUCKET)
    conns[HISTORY_CONN_ID] = {
        "conn_type": "postgres",
        "host": host,
        "port": ports.pg_port,
        "login": "postgres",
        "password": config.secrets.postgres_password,
        "schema": HISTORY_DB,
    }
    for prefix, service_db, database in service_databases(config):
        conns[postgres_conn_id(prefix, service_db)] = {
            "conn_type": "postgres",
            "host": host,
            "port": ports.pg_port,
            "login": "postgres",
            "password": config.secrets.postgres_password,
            "schema": database,
        }
    return conns


def service_databases(config: StackConfig) -> list[tuple[str, str, str]]:
    """``(prefix, service_db, database)`` of the stack's scale: the sandbox's eight, or the case study's 400."""
    if config.scale != "case-study":
        return all_databases()
    from local_stack.case_study import CaseStudy

    plans = CaseStudy(config.case_study_dir).databases()
    return [(prefix, p.database, f"{prefix}_{p.database}") for prefix in ("prod", "baseline") for p in plans]


def connection_env(config: StackConfig) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` variables (these hold secrets)."""
    return as_env(connections(config))


def airflow_env(config: StackConfig) -> dict[str, str]:
    """Every environment variable Airflow needs in the local stack (added to ``os.environ`` to run it)."""
    home = config.airflow_home
    repo = config.repo_root
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # PostgreSQL, not SQLite: with SQLite the scheduler, API server and DAG processor lock each
        # other out under load (HTTP 500 "Database error" on a REST trigger was seen).
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db_uri(config),
        "AIRFLOW__CORE__PARALLELISM": "6",
        "AIRFLOW__CORE__DAGS_FOLDER": str(repo / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(repo / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__FERNET_KEY": config.secrets.fernet_key,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{config.airflow_url}/execution/",
        "AIRFLOW__API__HOST": config.host,
        "AIRFLOW__API__PORT": str(config.ports.airflow_port),
        "AIRFLOW__API_AUTH__JWT_SECRET": config.secrets.jwt_secret,
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(config.ports.worker_log_port),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(config.ports.trigger_log_port),
        # FAB auth manager (users, roles, DAG-level permissions), as in production; docs/ci.md
        "AIRFLOW__CORE__AUTH_MANAGER": AUTH_MANAGER,
        # the API server would sync FAB's permissions and roles at every start (tens of seconds, most
        # of its start): the stack syncs them once per Airflow/FAB version before the components start
        # (local_stack.standalone_gate.fab_perms_marker, ``baseline_guard.access --sync-fab-perms``)
        "AIRFLOW__FAB__UPDATE_FAB_PERMS": "False",
        # who may answer the human-in-the-loop tasks (baseline_guard.approvers): FAB usernames
        "BASELINE_GUARD_ADMIN_USERS": "admin",
        "BASELINE_GUARD_ONCALL_USERS": "admin",
        # pg_dump / pg_restore of the embedded PostgreSQL, the same major version as the server
        "BASELINE_GUARD_PG_BIN_DIR": str(PG_BIN_DIR),
        # standalone starts each component as `airflow ...` found on PATH: use this environment's.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
    }
    if config.scale == "case-study":  # the generated 300-scenario suite (business_check's default suites)
        env["BASELINE_GUARD_SCENARIOS_DIR"] = str(config.case_study_dir / "scenarios")
    env.update(connection_env(config))
    return env


def metadata_db_uri(config: StackConfig) -> str:
    """Airflow's metadata database on the stack's PostgreSQL server."""
    password = quote(config.secrets.postgres_password, safe="")
    return f"postgresql+psycopg2://postgres:{password}@{config.host}:{config.ports.pg_port}/{AIRFLOW_METADATA_DB}"


def write_airflow_passwords(config: StackConfig) -> Path:
    """The passwords of the local Airflow users, read by ``baseline_guard.access`` (fixed local
    credentials; mode 600 all the same)."""
    config.airflow_home.mkdir(parents=True, exist_ok=True)
    path = config.airflow_passwords_file
    write_private(path, json.dumps({user: password for user, (_, password) in AIRFLOW_USERS.items()}))
    return path


def shell_exports(config: StackConfig, *, full_airflow: bool = False) -> str:
    """``export AIRFLOW_CONN_...='...'`` lines for a shell (they contain the stack's secrets); with
    ``full_airflow`` every variable Airflow runs with (``AIRFLOW_HOME``, config), so ``airflow ...``
    commands in that shell use the stack's Airflow."""
    env = airflow_env(config) if full_airflow else connection_env(config)
    env.pop("PATH", None)
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items()))
