"""Test helpers that point Airflow connections at a private reference environment, S3 bucket and check
history, read what the notification sink received, and put a version on every instance of a sandbox
service (a fault, or the healthy version back)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from baseline_guard.health import migrate
from baseline_guard.hooks.environment import EnvironmentHook
from local_stack.connections import env_api_connections
from local_stack.postgres import LocalPostgres
from local_stack.s3 import LocalS3
from reference_env.launcher import ReferenceEnvironment


def use_reference_environment(
    monkeypatch: pytest.MonkeyPatch, env: ReferenceEnvironment, **conn_id: str
) -> None:
    """The environment API, gateway and Apprise connections of ``env`` (``conn_id=`` renames the API's)."""
    for key, value in env_api_connections(
        env.api_port, env.token, gateway_port=env.gateway_port, **conn_id
    ).items():
        monkeypatch.setenv(key, value)


def backup_store_connection(s3_connection: dict[str, Any], bucket: str) -> str:
    """``AIRFLOW_CONN_*`` value of the backup store: an S3 connection naming ``bucket`` in its extra."""
    extra = {**s3_connection["extra"], "service_config": {"s3": {"bucket_name": bucket}}}
    return json.dumps({**s3_connection, "extra": extra})


def use_backup_store(
    monkeypatch: pytest.MonkeyPatch, s3: LocalS3, bucket: str, conn_id: str = "aws_backups"
) -> None:
    """A connection ``conn_id`` to ``bucket`` on the local S3 endpoint (the bucket is created if new)."""
    client = s3.client()
    if bucket not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=bucket)
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", backup_store_connection(s3.airflow_connection(), bucket)
    )


def deploy_everywhere(
    environment: str, service: str, version: str, conn_id: str = "baseline_env_api"
) -> None:
    """Deploy ``version`` to every instance of ``service`` and wait until each deploy succeeded."""
    hook = EnvironmentHook(conn_id)
    for inst in hook.get_service(environment, service).instances:
        op = hook.deploy(environment, service, inst.index, version)
        while not op.state.finished:
            time.sleep(0.1)
            op = hook.get_operation(op.id)
        assert op.state == "succeeded", op.message


@contextmanager
def history_database(postgres: LocalPostgres, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh migrated check-history database behind the ``baseline_guard_db`` connection; yields its DSN."""
    history = f"bg_dag_history_{secrets.token_hex(4)}"
    postgres.create_database(history)
    migrate.upgrade(postgres.uri(history))
    monkeypatch.setenv("AIRFLOW_CONN_BASELINE_GUARD_DB", json.dumps(postgres.airflow_connection(history)))
    try:
        yield postgres.uri(history)
    finally:
        postgres.psql(f'DROP DATABASE IF EXISTS "{history}" WITH (FORCE);')


@contextmanager
def check_services(
    env: ReferenceEnvironment, s3: LocalS3, postgres: LocalPostgres, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Everything a business-check DAG talks to, under the connection ids it uses by default: the
    reference environment ``env``, a fresh bucket, a fresh migrated history database (its DSN is yielded)."""
    use_reference_environment(monkeypatch, env)
    use_backup_store(monkeypatch, s3, f"bg-dag-checks-{secrets.token_hex(4)}")
    with history_database(postgres, monkeypatch) as history:
        yield history


def sent(env: ReferenceEnvironment, channel: str = "admins") -> list[dict[str, Any]]:
    """The messages the reference server's notification sink received on ``channel``."""
    answer = httpx.get(
        f"{env.api_url}/v1/notifications",
        params={"channel": channel},
        headers={"Authorization": f"Bearer {env.token}"},
        timeout=60,
    )
    answer.raise_for_status()
    return answer.json()
