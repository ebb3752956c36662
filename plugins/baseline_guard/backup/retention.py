"""Retention: which committed backups to delete, deleting them safely, and cleaning up leftovers.

A backup is deleted whole, manifest first: from that moment it is invisible (not listed, not
restorable), so a deletion interrupted halfway leaves only manifest-less objects, which the
leftover cleanup removes later. Leftovers (dumps of backups that never got a manifest, incomplete
multipart uploads) are removed only once older than a grace period, so a backup being written
right now is never touched.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from baseline_guard.backup.manifest import (
    BACKUP_ID_RE,
    MANIFEST_NAME,
    PREFIX,
    BackupRef,
    backup_prefix,
    check_environment,
    list_backups,
)
from baseline_guard.backup.s3io import list_keys
from baseline_guard.errors import InvalidInput

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectTypeDef

DELETE_BATCH = 1000


@dataclass(frozen=True)
class RetentionPlan:
    keep: list[BackupRef]
    delete: list[BackupRef]


def plan_retention(
    backups: list[BackupRef], *, keep_last_n: int, max_age_days: float | None, now: datetime
) -> RetentionPlan:
    """Per environment and phase: keep the newest ``keep_last_n``, and any younger than ``max_age_days``.

    Everything else is to be deleted. ``max_age_days=None`` keeps only the newest ``keep_last_n``.
    The newest backup of each phase is always kept (``keep_last_n`` must be at least 1).
    """
    if not isinstance(keep_last_n, int) or keep_last_n < 1:
        raise InvalidInput(
            f"keep_last_n {keep_last_n!r}: expected an integer >= 1 (the newest is always kept)"
        )
    if max_age_days is not None and max_age_days < 0:
        raise InvalidInput(f"max_age_days {max_age_days!r}: expected a number >= 0, or None")
    if now.tzinfo is None:
        raise InvalidInput("now has no time zone: expected an aware datetime")
    groups: dict[tuple[str, str], list[BackupRef]] = defaultdict(list)
    for ref in backups:
        groups[(ref.environment, ref.phase)].append(ref)
    keep: list[BackupRef] = []
    delete: list[BackupRef] = []
    for refs in groups.values():
        refs.sort(key=lambda r: (r.created_at, r.backup_id), reverse=True)
        for rank, ref in enumerate(refs):
            young = max_age_days is not None and now - ref.created_at <= timedelta(days=max_age_days)
            (keep if rank < keep_last_n or young else delete).append(ref)

    def oldest_first(ref: BackupRef) -> tuple[str, datetime, str]:
        return ref.environment, ref.created_at, ref.backup_id

    return RetentionPlan(keep=sorted(keep, key=oldest_first), delete=sorted(delete, key=oldest_first))


def delete_backup(client: S3Client, bucket: str, ref: BackupRef) -> int:
    """Delete one backup: the manifest first (it becomes invisible), then its other objects."""
    client.delete_object(Bucket=bucket, Key=ref.manifest_key)
    keys = [o["Key"] for o in list_keys(client, bucket, backup_prefix(ref.environment, ref.backup_id))]
    _delete_keys(client, bucket, keys)
    return len(keys) + 1


def _delete_keys(client: S3Client, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), DELETE_BATCH):
        batch = keys[start : start + DELETE_BATCH]
        answer = client.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
        )
        if answer.get("Errors"):
            failed = ", ".join(f"{e['Key']} ({e.get('Code')})" for e in answer["Errors"][:5])
            raise RuntimeError(f"could not delete {len(answer['Errors'])} object(s): {failed}")


@dataclass
class RetentionReport:
    deleted_backups: list[str] = field(default_factory=list)
    kept_backups: list[str] = field(default_factory=list)
    deleted_leftover_objects: list[str] = field(default_factory=list)
    aborted_uploads: list[str] = field(default_factory=list)


def apply_retention(
    client: S3Client,
    bucket: str,
    environment: str,
    *,
    keep_last_n: int,
    max_age_days: float | None,
    now: datetime,
    leftover_grace: timedelta = timedelta(hours=24),
    dry_run: bool = False,
) -> RetentionReport:
    """Plan and apply retention for one environment, then clean up leftovers older than the grace period."""
    plan = plan_retention(
        list_backups(client, bucket, environment), keep_last_n=keep_last_n, max_age_days=max_age_days, now=now
    )
    report = RetentionReport(kept_backups=[r.backup_id for r in plan.keep])
    for ref in plan.delete:
        if not dry_run:
            delete_backup(client, bucket, ref)
        report.deleted_backups.append(ref.backup_id)
    leftovers = clean_leftovers(client, bucket, environment, grace=leftover_grace, now=now, dry_run=dry_run)
    report.deleted_leftover_objects = leftovers.deleted_leftover_objects
    report.aborted_uploads = leftovers.aborted_uploads
    return report


def clean_leftovers(
    client: S3Client, bucket: str, environment: str, *, grace: timedelta, now: datetime, dry_run: bool = False
) -> RetentionReport:
    """Delete objects of manifest-less backups and abort multipart uploads, all older than ``grace``.

    A manifest-less backup is removed only when even its newest object is older than ``grace``
    (a backup still being written keeps all its parts). An upload into a backup that has its
    manifest is aborted whatever its age: the manifest is written last, so nothing may still write
    there (it is left by a try whose worker died).
    """
    if grace < timedelta(0):
        raise InvalidInput(f"grace {grace}: expected a non-negative duration")
    if now.tzinfo is None:
        raise InvalidInput("now has no time zone: expected an aware datetime")
    prefix = f"{PREFIX}/{check_environment(environment)}/"
    cutoff = now - grace
    by_backup: dict[str, list[ObjectTypeDef]] = defaultdict(list)
    for obj in list_keys(client, bucket, prefix):
        backup_id = obj["Key"][len(prefix) :].partition("/")[0]
        if BACKUP_ID_RE.match(backup_id):
            by_backup[backup_id].append(obj)
    report = RetentionReport()
    for objects in by_backup.values():
        names = {o["Key"].rsplit("/", 1)[1] for o in objects}
        if MANIFEST_NAME in names or max(o["LastModified"] for o in objects) >= cutoff:
            continue
        keys = sorted(o["Key"] for o in objects)
        if not dry_run:
            _delete_keys(client, bucket, keys)
        report.deleted_leftover_objects.extend(keys)
    committed = {
        b for b, objects in by_backup.items() if any(o["Key"].endswith(f"/{MANIFEST_NAME}") for o in objects)
    }
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
            if upload["Initiated"] < cutoff or upload["Key"][len(prefix) :].partition("/")[0] in committed:
                if not dry_run:
                    client.abort_multipart_upload(
                        Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                report.aborted_uploads.append(upload["Key"])
    return report
