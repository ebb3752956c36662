"""Fixtures shared by the backup, restore and drill tests (operators and whole DAGs).

``backup_store``: a fresh bucket behind the ``aws_backups`` connection (the bucket named in the
connection's extra, as in production). ``baseline_databases``: the baseline's databases, as the
reference environment API lists them, made real on the test server with rows and connections.
Registered for every test by the root conftest (``pytest_plugins``).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from local_stack.postgres import PG_BIN_DIR, LocalPostgres
from local_stack.s3 import LocalS3

DRILL_ROWS = 250


@dataclass(frozen=True)
class BackupStore:
    bucket: str
    client: Any  # boto3 S3 client


@pytest.fixture
def backup_store(s3: LocalS3, monkeypatch: pytest.MonkeyPatch) -> BackupStore:
    """A fresh bucket named by the ``aws_backups`` connection; the pg tools of the test server on PATH."""
    bucket = f"bg-store-{secrets.token_hex(4)}"
    client = s3.client()
    client.create_bucket(Bucket=bucket)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_BACKUPS", json.dumps(s3.airflow_connection(bucket=bucket)))
    monkeypatch.setenv("BASELINE_GUARD_PG_BIN_DIR", str(PG_BIN_DIR))
    return BackupStore(bucket, client)


@pytest.fixture
def baseline_databases(postgres: LocalPostgres, env_api: Any, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The baseline's databases (``Database`` records of the environment API), each made afresh on the
    real server holding only ``drill_rows`` (250 rows), with its Airflow connection set."""
    from baseline_guard.hooks.environment import EnvironmentHook

    listed = EnvironmentHook().list_databases("baseline")
    for db in listed:  # made afresh: other tests (the schema sync's) leave other tables behind
        postgres.psql(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE);')
        postgres.create_database(db.name)
        postgres.psql(
            f"CREATE TABLE drill_rows AS SELECT i, md5(i::text) AS v FROM generate_series(1, {DRILL_ROWS}) i;",
            db.name,
        )
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{db.conn_id.upper()}", json.dumps(postgres.airflow_connection(db.name))
        )
    return listed


def commit_test_backup(
    store: BackupStore,
    postgres: LocalPostgres,
    databases: list[str],
    *,
    environment: str = "baseline",
    phase: str = "pre_test",
    at: datetime | None = None,
) -> str:
    """Back up ``databases`` of the test server as a committed backup of ``environment``; its id."""
    from baseline_guard.backup import (
        PgConnectionInfo,
        backup_database,
        commit_backup,
        dump_key,
        make_backup_id,
    )

    backup_id = make_backup_id(at or datetime.now(UTC), phase, secrets.token_hex(4))
    for name in databases:
        backup_database(
            store.client,
            source=PgConnectionInfo(postgres.host, postgres.port, postgres.user, name, postgres.password),
            bucket=store.bucket,
            key=dump_key(environment, backup_id, name),
            compression="none",
            pg_bin_dir=PG_BIN_DIR,
        )
    commit_backup(
        store.client, store.bucket, environment=environment, backup_id=backup_id, databases=databases
    )
    return backup_id


def corrupt_dump(store: BackupStore, environment: str, backup_id: str, database: str) -> str:
    """Flip one byte near the end of a committed dump (same size, wrong checksum); its key."""
    from baseline_guard.backup import load_manifest

    key = load_manifest(store.client, store.bucket, environment, backup_id).database(database).key
    data = bytearray(store.client.get_object(Bucket=store.bucket, Key=key)["Body"].read())
    data[-200] ^= 0xFF
    store.client.put_object(Bucket=store.bucket, Key=key, Body=bytes(data))
    return key


def admin_messages(env_api: Any) -> list[dict[str, Any]]:
    """Every message the reference server's sink received on the admins' channel, oldest first."""
    import httpx

    answer = httpx.get(
        f"http://127.0.0.1:{env_api.api_port}/v1/notifications",
        params={"channel": "admins"},
        headers={"Authorization": f"Bearer {env_api.token}"},
    )
    answer.raise_for_status()
    return answer.json()
