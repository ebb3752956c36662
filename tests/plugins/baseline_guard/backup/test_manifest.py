"""Backup ids, the manifest commit point, listing and resolving backups (real S3 endpoint)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from baseline_guard.backup import (
    backup_database,
    commit_backup,
    dump_key,
    list_backups,
    load_manifest,
    make_backup_id,
    manifest_key,
    resolve_backup_id,
)
from baseline_guard.backup.manifest import Manifest, parse_backup_id, write_manifest
from baseline_guard.errors import BackupError, BackupExists, BackupNotFound, InvalidInput
from local_stack.postgres import PG_BIN_DIR

RUN_AT = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_backup_id_is_time_sortable_and_the_same_for_every_try_of_a_run():
    first = make_backup_id(RUN_AT, "pre_test", "manual__2025-03-04T05:06:07+00:00")
    assert first == make_backup_id(
        RUN_AT.astimezone(timezone(timedelta(hours=8))), "pre_test", "manual__2025-03-04T05:06:07+00:00"
    )
    assert first.startswith("20250304T050607Z-pre_test-") and len(first) == 34
    assert make_backup_id(RUN_AT, "pre_test", "another run") != first
    later = make_backup_id(RUN_AT + timedelta(seconds=1), "manual", "x")
    assert sorted([later, first]) == [first, later]
    assert parse_backup_id(first).created_at == RUN_AT


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: make_backup_id(RUN_AT, "during_test", "r"), "expected one of pre_test, post_test, manual"),
        (lambda: make_backup_id(RUN_AT.replace(tzinfo=None), "manual", "r"), "no time zone"),
        (lambda: make_backup_id(RUN_AT, "manual", ""), "run id is empty"),
        (lambda: parse_backup_id("latest-ish"), "expected <yyyymmddThhmmssZ>-<phase>-<8 hex>"),
        (lambda: dump_key("Prod Env", "20250101T000000Z-manual-00000000", "db"), "expected a name matching"),
        (lambda: dump_key("env-a", "20250101T000000Z-manual-00000000", "../x"), "expected 1-63 characters"),
    ],
)
def test_bad_ids_and_names_are_refused_with_what_was_expected(call, message):
    with pytest.raises(InvalidInput, match=message):
        call()


def _dump(s3_client, bucket, conn_info, database, environment, backup_id, name=None):
    key = dump_key(environment, backup_id, name or database)
    return backup_database(
        s3_client,
        source=conn_info(database),
        bucket=bucket,
        key=key,
        compression="none",
        pg_bin_dir=PG_BIN_DIR,
        service="orders",
    ).record


def test_commit_writes_the_manifest_last_and_refuses_an_incomplete_backup(
    s3_client, bucket, conn_info, seeded_db
):
    backup_id = make_backup_id(RUN_AT, "pre_test", "run-1")
    record = _dump(s3_client, bucket, conn_info, seeded_db, "env-a", backup_id)

    with pytest.raises(BackupError, match=r"incomplete, manifest not written: ghost: dump .* is missing"):
        commit_backup(
            s3_client, bucket, environment="env-a", backup_id=backup_id, databases=[seeded_db, "ghost"]
        )
    assert list_backups(s3_client, bucket, "env-a") == []

    manifest = commit_backup(
        s3_client,
        bucket,
        environment="env-a",
        backup_id=backup_id,
        databases=[seeded_db],
        ci_pipeline_id="pipeline-42",
        airflow_run_id="run-1",
    )

    stored = load_manifest(s3_client, bucket, "env-a", backup_id)
    assert stored == manifest
    assert (
        stored.databases == [record] and stored.phase == "pre_test" and stored.ci_pipeline_id == "pipeline-42"
    )
    assert stored.databases[0].service == "orders"
    # a retry of the commit finds the same manifest and returns it; nothing is replaced
    stamp = s3_client.head_object(Bucket=bucket, Key=manifest_key("env-a", backup_id))["LastModified"]
    again = commit_backup(s3_client, bucket, environment="env-a", backup_id=backup_id, databases=[seeded_db])
    assert again == stored
    assert s3_client.head_object(Bucket=bucket, Key=manifest_key("env-a", backup_id))["LastModified"] == stamp


def test_a_dump_changed_after_its_record_is_refused_at_commit_by_sha256_not_size(
    s3_client, bucket, conn_info, seeded_db
):
    backup_id = make_backup_id(RUN_AT, "pre_test", "run-sha")
    record = _dump(s3_client, bucket, conn_info, seeded_db, "env-a", backup_id)
    data = bytearray(s3_client.get_object(Bucket=bucket, Key=record.key)["Body"].read())
    data[len(data) // 2] ^= 0x01  # same size, other bytes
    s3_client.put_object(Bucket=bucket, Key=record.key, Body=bytes(data))

    with pytest.raises(BackupError, match=rf"{seeded_db}: object has sha256 [0-9a-f]{{64}}, record says"):
        commit_backup(s3_client, bucket, environment="env-a", backup_id=backup_id, databases=[seeded_db])
    assert list_backups(s3_client, bucket, "env-a") == []


def test_a_manifest_with_other_content_is_never_replaced(s3_client, bucket, conn_info, seeded_db):
    backup_id = make_backup_id(RUN_AT, "manual", "run-2")
    _dump(s3_client, bucket, conn_info, seeded_db, "env-a", backup_id)
    manifest = commit_backup(
        s3_client, bucket, environment="env-a", backup_id=backup_id, databases=[seeded_db]
    )
    forged_record = manifest.databases[0].model_copy(update={"sha256": "0" * 64})
    forged = Manifest.model_validate({**manifest.model_dump(), "databases": [forged_record.model_dump()]})

    with pytest.raises(BackupExists, match="never replaced"):
        write_manifest(s3_client, bucket, forged, None)

    assert load_manifest(s3_client, bucket, "env-a", backup_id) == manifest


def test_list_and_resolve_see_only_committed_backups_newest_first(s3_client, bucket, conn_info, seeded_db):
    ids = {
        "old_pre": make_backup_id(RUN_AT, "pre_test", "a"),
        "post": make_backup_id(RUN_AT + timedelta(hours=1), "post_test", "a"),
        "new_pre": make_backup_id(RUN_AT + timedelta(hours=2), "pre_test", "b"),
        "uncommitted": make_backup_id(RUN_AT + timedelta(hours=3), "pre_test", "c"),
    }
    for label, backup_id in ids.items():
        _dump(s3_client, bucket, conn_info, seeded_db, "env-a", backup_id)
        if label != "uncommitted":
            commit_backup(s3_client, bucket, environment="env-a", backup_id=backup_id, databases=[seeded_db])
    other_env = make_backup_id(RUN_AT + timedelta(hours=5), "pre_test", "d")
    _dump(s3_client, bucket, conn_info, seeded_db, "env-b", other_env)
    commit_backup(s3_client, bucket, environment="env-b", backup_id=other_env, databases=[seeded_db])

    assert [r.backup_id for r in list_backups(s3_client, bucket, "env-a")] == [
        ids["new_pre"],
        ids["post"],
        ids["old_pre"],
    ]
    assert [r.backup_id for r in list_backups(s3_client, bucket, "env-a", "post_test")] == [ids["post"]]
    assert resolve_backup_id(s3_client, bucket, "env-a", "latest") == ids["new_pre"]
    assert resolve_backup_id(s3_client, bucket, "env-a", "latest:post_test") == ids["post"]
    assert resolve_backup_id(s3_client, bucket, "env-a", ids["old_pre"]) == ids["old_pre"]

    with pytest.raises(
        BackupNotFound, match=f"no committed backup {ids['uncommitted']}.*newest: {ids['new_pre']}"
    ):
        resolve_backup_id(s3_client, bucket, "env-a", ids["uncommitted"])
    with pytest.raises(BackupNotFound, match="has no committed manual backup"):
        resolve_backup_id(s3_client, bucket, "env-a", "latest:manual")
    with pytest.raises(InvalidInput, match="phase 'nightly' is not known"):
        resolve_backup_id(s3_client, bucket, "env-a", "latest:nightly")
    with pytest.raises(InvalidInput, match="expected <yyyymmddThhmmssZ>"):
        resolve_backup_id(s3_client, bucket, "env-a", "yesterday")
