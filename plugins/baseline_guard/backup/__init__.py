"""Test-data backup engine: ``pg_dump`` streamed to S3 with a manifest, verified restore, retention.

Plain Python (boto3 client and psycopg2 passed around), no Airflow import.

Engine names are exported lazily: importing one light module of this package loads nothing else.
"""

from __future__ import annotations

from baseline_guard._lazy import lazy_exports

_EXPORTS = {
    "BackupRef": "manifest",
    "DumpOutcome": "dump",
    "DumpRecord": "manifest",
    "ExpectedDump": "restore",
    "Manifest": "manifest",
    "PgConnectionInfo": "pgtools",
    "Phase": "manifest",
    "Progress": "dump",
    "RestoreResult": "restore",
    "ServerSideEncryption": "s3io",
    "backup_database": "dump",
    "choose_databases": "selection",
    "commit_backup": "manifest",
    "dump_key": "manifest",
    "list_backups": "manifest",
    "load_manifest": "manifest",
    "make_backup_id": "manifest",
    "manifest_key": "manifest",
    "resolve_backup_id": "manifest",
    "restore_database": "restore",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
