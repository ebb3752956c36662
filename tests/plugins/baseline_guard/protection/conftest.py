"""Fixtures for the protection tests: a bucket, databases on the real server, committed backups."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from baseline_guard.backup import PgConnectionInfo, backup_database, commit_backup, dump_key, make_backup_id
from local_stack.postgres import PG_BIN_DIR, LocalPostgres
from local_stack.s3 import LocalS3


@pytest.fixture
def s3_client(s3: LocalS3):
    return s3.client()


@pytest.fixture
def bucket(s3_client) -> str:
    name = f"bg-drill-{secrets.token_hex(4)}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def make_db(postgres: LocalPostgres) -> Callable[[str, str], str]:
    def create(prefix: str, sql: str) -> str:
        name = f"{prefix}_{secrets.token_hex(4)}"
        postgres.create_database(name)
        postgres.psql(sql, name)
        return name

    return create


@pytest.fixture
def conn_info(postgres: LocalPostgres) -> Callable[[str], PgConnectionInfo]:
    def info(database: str) -> PgConnectionInfo:
        return PgConnectionInfo(
            host=postgres.host,
            port=postgres.port,
            user=postgres.user,
            password=postgres.password,
            database=database,
        )

    return info


@pytest.fixture
def take_backup(s3_client, bucket, conn_info) -> Callable[..., str]:
    """Back up ``databases`` as a committed backup of ``environment``; returns the backup id."""

    def backup(
        environment: str, databases: list[str], *, phase: str = "pre_test", at: datetime | None = None
    ) -> str:
        backup_id = make_backup_id(at or datetime.now(UTC), phase, secrets.token_hex(4))
        for database in databases:
            backup_database(
                s3_client,
                source=conn_info(database),
                bucket=bucket,
                key=dump_key(environment, backup_id, database),
                compression="none",
                pg_bin_dir=PG_BIN_DIR,
            )
        commit_backup(s3_client, bucket, environment=environment, backup_id=backup_id, databases=databases)
        return backup_id

    return backup
