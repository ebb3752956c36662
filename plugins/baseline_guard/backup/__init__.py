"""Test-data backup engine: ``pg_dump`` streamed to S3 with a manifest, verified restore, retention.

Plain Python (boto3 client and psycopg2 passed around), no Airflow import.
"""

from __future__ import annotations

from baseline_guard.backup.dump import DumpOutcome, Progress, backup_database
from baseline_guard.backup.manifest import (
    BackupRef,
    DumpRecord,
    Manifest,
    Phase,
    commit_backup,
    dump_key,
    list_backups,
    load_manifest,
    make_backup_id,
    manifest_key,
    resolve_backup_id,
)
from baseline_guard.backup.pgtools import PgConnectionInfo
from baseline_guard.backup.restore import ExpectedDump, RestoreResult, restore_database
from baseline_guard.backup.s3io import ServerSideEncryption

__all__ = [
    "BackupRef",
    "DumpOutcome",
    "DumpRecord",
    "ExpectedDump",
    "Manifest",
    "PgConnectionInfo",
    "Phase",
    "Progress",
    "RestoreResult",
    "ServerSideEncryption",
    "backup_database",
    "commit_backup",
    "dump_key",
    "list_backups",
    "load_manifest",
    "make_backup_id",
    "manifest_key",
    "resolve_backup_id",
    "restore_database",
]
