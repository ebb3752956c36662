"""A manifest is bound to where it is stored (issue 20): read back, it must name the environment and the
backup it was asked for, or it is refused (real S3 endpoint, real pg_dump)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from baseline_guard.backup import backup_database, commit_backup, dump_key, make_backup_id, manifest_key
from baseline_guard.backup.manifest import load_manifest, resolve_backup_id
from baseline_guard.errors import BackupError, RetryCannotHelp
from local_stack.postgres import PG_BIN_DIR

RUN_AT = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _committed(s3_client, bucket, conn_info, database, environment, backup_id):
    backup_database(
        s3_client,
        source=conn_info(database),
        bucket=bucket,
        key=dump_key(environment, backup_id, database),
        compression="none",
        pg_bin_dir=PG_BIN_DIR,
    )
    return commit_backup(
        s3_client, bucket, environment=environment, backup_id=backup_id, databases=[database]
    )


def _copy(s3_client, bucket, source_key: str, target_key: str) -> None:
    body = s3_client.get_object(Bucket=bucket, Key=source_key)["Body"].read()
    s3_client.put_object(Bucket=bucket, Key=target_key, Body=body)


def test_a_production_manifest_stored_under_another_environment_is_refused(
    s3_client, bucket, conn_info, seeded_db
) -> None:
    backup_id = make_backup_id(RUN_AT, "pre_test", "prod-run")
    _committed(s3_client, bucket, conn_info, seeded_db, "production", backup_id)
    # anyone who can write to the bucket puts production's manifest under proj-a's prefix
    _copy(s3_client, bucket, manifest_key("production", backup_id), manifest_key("proj-a", backup_id))
    assert resolve_backup_id(s3_client, bucket, "proj-a", "latest") == backup_id  # it is listed...

    with pytest.raises(BackupError) as refused:  # ...but never loads for proj-a
        load_manifest(s3_client, bucket, "proj-a", backup_id)

    message = str(refused.value)
    assert isinstance(refused.value, RetryCannotHelp)
    assert f"s3://{bucket}/{manifest_key('proj-a', backup_id)}" in message
    assert "says environment 'production'" in message and "expected 'proj-a'" in message


def test_a_manifest_moved_to_another_backup_id_is_refused(s3_client, bucket, conn_info, seeded_db) -> None:
    old = make_backup_id(RUN_AT, "pre_test", "old-run")
    newer = make_backup_id(datetime(2026, 12, 2, tzinfo=UTC), "pre_test", "new-run")
    _committed(s3_client, bucket, conn_info, seeded_db, "proj-a", old)
    _copy(s3_client, bucket, manifest_key("proj-a", old), manifest_key("proj-a", newer))  # "latest" now

    with pytest.raises(BackupError, match=f"says backup '{old}', expected '{newer}'"):
        load_manifest(s3_client, bucket, "proj-a", newer)
    assert load_manifest(s3_client, bucket, "proj-a", old).backup_id == old  # where it belongs: fine
