"""Helpers of the restore tests: back a database up, prepare its restore, read one value."""

from __future__ import annotations

from typing import Any

from baseline_guard.backup import ExpectedDump, backup_database
from baseline_guard.backup.restore import prepare_restore
from local_stack.postgres import PG_BIN_DIR


def backup_of(s3_client: Any, bucket: str, conn_info: Any, database: str, key: str) -> Any:
    """The dump record of an uncompressed backup of ``database`` at ``key``."""
    return backup_database(
        s3_client,
        source=conn_info(database),
        bucket=bucket,
        key=key,
        compression="none",
        pg_bin_dir=PG_BIN_DIR,
    ).record


def prepare(
    s3_client: Any, bucket: str, conn_info: Any, record: Any, target: str, restore_id: str, **kwargs: Any
) -> Any:
    """``prepare_restore`` of ``record`` into ``target`` (not production unless ``production=`` says so)."""
    return prepare_restore(
        s3_client,
        bucket=bucket,
        key=record.key,
        expected=kwargs.pop("expected", None) or ExpectedDump.from_record(record),
        target=conn_info(target),
        production=kwargs.pop("production", []),
        restore_id=restore_id,
        pg_bin_dir=PG_BIN_DIR,
        **kwargs,
    )


def value(postgres: Any, database: str, sql: str) -> str:
    return str(postgres.psql(sql, database).strip())
