"""Retention plan (pure) and its application on the real S3 endpoint, manifest first; leftovers cleaned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from baseline_guard.backup import backup_database, dump_key, list_backups, make_backup_id, manifest_key
from baseline_guard.backup.manifest import BackupRef, parse_backup_id
from baseline_guard.backup.retention import apply_retention, clean_leftovers, delete_backup, plan_retention
from baseline_guard.backup.s3io import MIB
from baseline_guard.errors import InvalidInput
from botocore.exceptions import BotoCoreError, ClientError
from local_stack.postgres import PG_BIN_DIR

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)


def _ref(
    days_ago: float, phase: str = "pre_test", environment: str = "env-a", run: str = "r", now: datetime = NOW
) -> BackupRef:
    backup_id = make_backup_id(now - timedelta(days=days_ago), phase, f"{run}-{days_ago}")
    return BackupRef(
        environment,
        backup_id,
        parse_backup_id(backup_id).phase,
        parse_backup_id(backup_id).created_at,
        manifest_key(environment, backup_id),
    )


def test_plan_keeps_the_newest_n_and_the_young_per_environment_and_phase():
    pre = [_ref(d) for d in (0.5, 2, 5, 9, 20)]
    post = [_ref(d, "post_test") for d in (30, 40)]
    other_env = [_ref(50, environment="env-b")]

    plan = plan_retention(pre + post + other_env, keep_last_n=2, max_age_days=7, now=NOW)

    deleted = {r.backup_id for r in plan.delete}
    assert deleted == {pre[3].backup_id, pre[4].backup_id}  # 9 and 20 days old, beyond the newest 2
    assert {r.backup_id for r in plan.keep} == {r.backup_id for r in pre[:3] + post + other_env}


def test_plan_without_age_limit_keeps_exactly_n_and_never_the_last_one_deleted():
    refs = [_ref(d) for d in (1, 2, 3)]
    assert [r.backup_id for r in plan_retention(refs, keep_last_n=1, max_age_days=None, now=NOW).keep] == [
        refs[0].backup_id
    ]
    assert plan_retention(refs[:1], keep_last_n=1, max_age_days=0, now=NOW).delete == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"keep_last_n": 0, "max_age_days": 7, "now": NOW}, "expected an integer >= 1"),
        ({"keep_last_n": 3, "max_age_days": -1, "now": NOW}, "expected a number >= 0"),
        ({"keep_last_n": 3, "max_age_days": 7, "now": NOW.replace(tzinfo=None)}, "no time zone"),
    ],
)
def test_plan_refuses_bad_settings(kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        plan_retention([_ref(1)], **kwargs)


def _put_backup(s3_client, bucket, ref: BackupRef, committed: bool = True) -> list[str]:
    keys = [dump_key(ref.environment, ref.backup_id, db) for db in ("orders", "users")]
    keys += [k.removesuffix(".dump") + ".dump.json" for k in keys]
    if committed:
        keys.append(ref.manifest_key)
    for key in keys:
        s3_client.put_object(Bucket=bucket, Key=key, Body=b"x")
    return keys


def _keys(s3_client, bucket) -> set[str]:
    return {o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])}


def test_apply_deletes_whole_old_backups_and_manifest_less_leftovers_after_the_grace(s3_client, bucket):
    server_now = datetime.now(UTC)  # objects get the server's clock as LastModified
    refs = [_ref(d, run="apply", now=server_now) for d in (1, 10, 20)]
    kept_keys = _put_backup(s3_client, bucket, refs[0])
    for ref in refs[1:]:
        _put_backup(s3_client, bucket, ref)
    orphan = _ref(15, run="orphan", now=server_now)
    orphan_keys = _put_backup(s3_client, bucket, orphan, committed=False)

    report = apply_retention(
        s3_client,
        bucket,
        "env-a",
        keep_last_n=1,
        max_age_days=5,
        now=server_now + timedelta(hours=2),
        leftover_grace=timedelta(hours=1),
    )

    assert sorted(report.deleted_backups) == sorted(r.backup_id for r in refs[1:])
    assert sorted(report.deleted_leftover_objects) == sorted(orphan_keys)
    assert _keys(s3_client, bucket) == set(kept_keys)
    assert [r.backup_id for r in list_backups(s3_client, bucket, "env-a")] == [refs[0].backup_id]


def test_a_leftover_younger_than_the_grace_is_kept(s3_client, bucket):
    in_progress = _ref(0, run="in-progress")
    keys = _put_backup(s3_client, bucket, in_progress, committed=False)

    report = clean_leftovers(s3_client, bucket, "env-a", grace=timedelta(hours=6), now=datetime.now(UTC))

    assert report.deleted_leftover_objects == []
    assert _keys(s3_client, bucket) == set(keys)


def test_a_deletion_cut_off_after_the_manifest_leaves_an_invisible_backup(s3_client, bucket, faulty_s3):
    ref = _ref(3, run="interrupted")
    keys = _put_backup(s3_client, bucket, ref)
    # the endpoint answers the manifest delete, then goes away before the other objects are listed
    front = faulty_s3(fails=lambda method, path: method == "GET" and "list-type=2" in path, dies=True)

    with pytest.raises((ClientError, BotoCoreError)):
        delete_backup(front.client(), bucket, ref)

    assert list_backups(s3_client, bucket, "env-a") == []
    assert _keys(s3_client, bucket) == set(keys) - {ref.manifest_key}
    later = datetime.now(UTC) + timedelta(days=2)
    cleaned = clean_leftovers(s3_client, bucket, "env-a", grace=timedelta(days=1), now=later)
    assert sorted(cleaned.deleted_leftover_objects) == sorted(set(keys) - {ref.manifest_key})
    assert _keys(s3_client, bucket) == set()


def test_an_upload_cut_off_by_a_dead_endpoint_is_aborted_by_the_leftover_cleanup(
    s3_client, bucket, conn_info, big_db, faulty_s3
):
    front = faulty_s3(2, dies=True)
    key = dump_key("env-a", make_backup_id(NOW, "pre_test", "dead-endpoint"), big_db)

    with pytest.raises((ClientError, BotoCoreError)) as caught:
        backup_database(
            front.client(),
            source=conn_info(big_db),
            bucket=bucket,
            key=key,
            compression="none",
            part_size=5 * MIB,
            pg_bin_dir=PG_BIN_DIR,
        )

    # The endpoint was gone, so the abort could not get through: the error says so, and what the
    # storage holds is an incomplete upload, never an object or a manifest.
    assert any("aborting multipart upload" in note for note in getattr(caught.value, "__notes__", []))
    assert _keys(s3_client, bucket) == set()
    assert [u["Key"] for u in s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])] == [key]

    report = clean_leftovers(
        s3_client, bucket, "env-a", grace=timedelta(hours=1), now=datetime.now(UTC) + timedelta(hours=2)
    )

    assert report.aborted_uploads == [key]
    assert s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_an_upload_left_in_a_committed_backup_is_aborted_at_once_a_young_one_elsewhere_kept(
    s3_client, bucket
):
    """A try whose worker was killed mid-dump leaves an upload; the retry completed the backup (its
    manifest exists), so nothing can still write there: no grace period for that upload."""
    committed, in_progress = _ref(0, run="retried"), _ref(0, run="being-written")
    keys = _put_backup(s3_client, bucket, committed)
    killed_try = s3_client.create_multipart_upload(Bucket=bucket, Key=keys[0])["UploadId"]
    writing = dump_key("env-a", in_progress.backup_id, "orders")
    s3_client.create_multipart_upload(Bucket=bucket, Key=writing)

    # moto reports every upload as initiated in 2010: a grace reaching back before that makes both
    # uploads "young", as they are on a real S3 endpoint
    report = clean_leftovers(
        s3_client, bucket, "env-a", grace=timedelta(days=365 * 30), now=datetime.now(UTC)
    )

    assert report.aborted_uploads == [keys[0]]
    left = s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["Key"] for u in left] == [writing] and killed_try not in {u["UploadId"] for u in left}
    assert _keys(s3_client, bucket) == set(keys)  # the committed backup itself is untouched
