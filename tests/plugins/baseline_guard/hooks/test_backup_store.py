"""BackupStoreHook: the bucket comes from the ``aws_backups`` connection, against a real S3 endpoint."""

from __future__ import annotations

import json

import pytest
from backup_store_fixtures import BackupStore
from baseline_guard.errors import InvalidInput
from baseline_guard.hooks.backup_store import BackupStoreHook
from local_stack.s3 import LocalS3


def test_the_bucket_is_the_one_the_connection_names_and_it_is_reachable(backup_store: BackupStore) -> None:
    hook = BackupStoreHook()

    assert hook.bucket == backup_store.bucket
    assert hook.test_connection() == (True, f"bucket {backup_store.bucket!r} reachable")
    hook.load_string("ok", key="probe/hook", bucket_name=hook.bucket)
    assert (
        backup_store.client.get_object(Bucket=backup_store.bucket, Key="probe/hook")["Body"].read() == b"ok"
    )


def test_a_connection_naming_no_bucket_says_where_to_name_it(
    s3: LocalS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AWS_BACKUPS", json.dumps(s3.airflow_connection()))

    with pytest.raises(InvalidInput, match=r"names no bucket.*service_config.*bucket_name"):
        _ = BackupStoreHook().bucket
    assert BackupStoreHook().test_connection()[0] is False
