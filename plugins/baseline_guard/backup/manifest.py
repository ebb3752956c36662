"""Backup ids, key layout and the manifest: the commit point of a backup.

Layout in the bucket::

    backups/<environment>/<backup_id>/<database>.dump        pg_dump -Fc archive
    backups/<environment>/<backup_id>/<database>.dump.json   DumpRecord, written right after the dump
    backups/<environment>/<backup_id>/manifest.json          Manifest, written last

A backup exists only once ``manifest.json`` exists. ``<backup_id>`` is
``<yyyymmddThhmmssZ>-<phase>-<8 hex of sha256(run key)>``: sortable by time. The plan task chooses it
once per run (dated by the task's clock, never by a date the caller set) and every later task and
retry uses it, so a retry lands on the same keys and can reuse a complete dump.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from baseline_guard.backup.codec import Codec
from baseline_guard.backup.names import check_database_name
from baseline_guard.backup.properties import DatabaseProperties
from baseline_guard.backup.s3io import (
    ServerSideEncryption,
    get_bytes_or_none,
    head_or_none,
    list_keys,
    put_once,
)
from baseline_guard.environment_contract import NAME_PATTERN
from baseline_guard.errors import (
    BackupError,
    BackupExists,
    BackupNotFound,
    InvalidInput,
    ManifestMismatch,
    ManifestRejected,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PREFIX = "backups"
MANIFEST_NAME = "manifest.json"
DUMP_SUFFIX = ".dump"
RECORD_SUFFIX = ".dump.json"
BACKUP_ID_RE = re.compile(r"^(\d{8}T\d{6}Z)-(pre_test|post_test|manual)-([0-9a-f]{8})$")


class Phase(StrEnum):
    PRE_TEST = "pre_test"
    POST_TEST = "post_test"
    MANUAL = "manual"


def parse_phase(value: str) -> Phase:
    try:
        return Phase(value)
    except ValueError:
        raise InvalidInput(f"phase {value!r} is not known: expected one of {', '.join(Phase)}") from None


def check_environment(environment: str) -> str:
    if not isinstance(environment, str) or not re.match(NAME_PATTERN, environment):
        raise InvalidInput(f"environment {environment!r}: expected a name matching {NAME_PATTERN}")
    return environment


def check_database(database: str) -> str:
    return check_database_name(database)


def make_backup_id(run_at: datetime, phase: str, run_id: str) -> str:
    """Time-sortable id of a backup taken at ``run_at``; ``run_id``: the run's key (with its moment)."""
    if run_at.tzinfo is None:
        raise InvalidInput(f"run time {run_at.isoformat()} has no time zone: expected an aware datetime")
    if not run_id:
        raise InvalidInput("run id is empty: expected the Airflow run id the backup belongs to")
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    return f"{run_at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{parse_phase(phase).value}-{digest}"


@dataclass(frozen=True)
class BackupIdParts:
    created_at: datetime
    phase: Phase


def parse_backup_id(backup_id: str) -> BackupIdParts:
    match = BACKUP_ID_RE.match(backup_id) if isinstance(backup_id, str) else None
    if match is None:
        raise InvalidInput(
            f"backup id {backup_id!r}: expected <yyyymmddThhmmssZ>-<phase>-<8 hex>, "
            "e.g. 20250101T120000Z-pre_test-1a2b3c4d"
        )
    created = datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return BackupIdParts(created_at=created, phase=Phase(match.group(2)))


def backup_prefix(environment: str, backup_id: str) -> str:
    parse_backup_id(backup_id)
    return f"{PREFIX}/{check_environment(environment)}/{backup_id}/"


def dump_key(environment: str, backup_id: str, database: str) -> str:
    return f"{backup_prefix(environment, backup_id)}{check_database(database)}{DUMP_SUFFIX}"


def manifest_key(environment: str, backup_id: str) -> str:
    return f"{backup_prefix(environment, backup_id)}{MANIFEST_NAME}"


def record_key(dump_object_key: str) -> str:
    """Key of the DumpRecord written beside a dump object."""
    return dump_object_key.removesuffix(DUMP_SUFFIX) + RECORD_SUFFIX


class DumpRecord(BaseModel):
    """What one uploaded ``pg_dump`` archive is: where, how big, its checksum, what it holds."""

    key: str
    database: str
    service: str | None = None
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    compression: str
    # "none": the object is pg_dump's archive; "zstd": a zstd frame of it. Records written before
    # the field existed have none, and their objects are restored as they are.
    codec: Codec = "none"
    pg_dump_version: str
    server_version: str
    table_count: int = Field(ge=0)
    row_counts: dict[str, int]
    row_counts_exact: bool
    server_side_encryption: str | None = None
    started_at: datetime
    finished_at: datetime
    database_properties: DatabaseProperties | None = Field(
        default=None, description="ACL, settings, comment, connection limit; None in older backups"
    )

    @model_validator(mode="after")
    def _tables_match(self) -> DumpRecord:
        if self.table_count != len(self.row_counts):
            raise ValueError(f"table_count {self.table_count} != {len(self.row_counts)} tables in row_counts")
        return self

    def same_content(self, other: DumpRecord) -> bool:
        return (self.key, self.size, self.sha256) == (other.key, other.size, other.sha256)


class Manifest(BaseModel):
    """The commit point of one backup: every dump it holds, with checksums. Written last, never replaced."""

    format_version: Literal[1] = 1
    backup_id: str
    environment: str = Field(pattern=NAME_PATTERN)
    phase: Phase
    ci_pipeline_id: str | None = None
    airflow_run_id: str | None = None
    started_at: datetime
    finished_at: datetime
    databases: list[DumpRecord] = Field(min_length=1)

    @field_validator("backup_id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        parse_backup_id(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if parse_backup_id(self.backup_id).phase != self.phase:
            raise ValueError(f"phase {self.phase} differs from the phase in backup id {self.backup_id}")
        prefix = backup_prefix(self.environment, self.backup_id)
        names = [d.database for d in self.databases]
        if len(set(names)) != len(names):
            raise ValueError(f"a database appears twice: {sorted(names)}")
        for record in self.databases:
            if not record.key.startswith(prefix):
                raise ValueError(f"dump key {record.key} is outside the backup prefix {prefix}")
        return self

    def database(self, name: str) -> DumpRecord:
        for record in self.databases:
            if record.database == name:
                return record
        known = ", ".join(d.database for d in self.databases)
        raise InvalidInput(f"backup {self.backup_id} has no database {name!r}: it holds {known}")

    def same_content(self, other: Manifest) -> bool:
        mine = sorted((d.key, d.size, d.sha256) for d in self.databases)
        theirs = sorted((d.key, d.size, d.sha256) for d in other.databases)
        return (self.backup_id, self.environment, mine) == (other.backup_id, other.environment, theirs)


# --- reading and writing -------------------------------------------------------------------------


def load_record(client: S3Client, bucket: str, dump_object_key: str) -> DumpRecord | None:
    raw = get_bytes_or_none(client, bucket, record_key(dump_object_key))
    if raw is None:
        return None
    try:
        return DumpRecord.model_validate_json(raw)
    except ValidationError as err:
        raise BackupError(f"dump record {record_key(dump_object_key)} is malformed: {err}") from None


def write_record(client: S3Client, bucket: str, record: DumpRecord, sse: ServerSideEncryption | None) -> None:
    key = record_key(record.key)
    if not put_once(client, bucket, key, record.model_dump_json(indent=2).encode(), sse):
        existing = load_record(client, bucket, record.key)
        if existing is None or not existing.same_content(record):
            raise BackupExists(f"s3://{bucket}/{key} already exists with other content; it is never replaced")


def load_manifest(client: S3Client, bucket: str, environment: str, backup_id: str) -> Manifest:
    key = manifest_key(environment, backup_id)
    raw = get_bytes_or_none(client, bucket, key)
    if raw is None:
        raise BackupNotFound(
            f"no backup {backup_id} in environment {environment}: s3://{bucket}/{key} is missing"
        )
    try:
        manifest = Manifest.model_validate_json(raw)
    except ValidationError as err:
        raise BackupError(f"manifest s3://{bucket}/{key} is malformed: {err}") from None
    # bound to where it is stored: a manifest copied or moved here (anyone who can write to the
    # bucket can) would point a restore at another environment's or another backup's dumps
    for what, says, expected in (
        ("environment", manifest.environment, environment),
        ("backup", manifest.backup_id, backup_id),
    ):
        if says != expected:
            raise ManifestMismatch(
                f"manifest s3://{bucket}/{key} says {what} {says!r}, expected {expected!r} (where it is "
                "stored): it was copied or moved there, refused"
            )
    return manifest


def write_manifest(
    client: S3Client, bucket: str, manifest: Manifest, sse: ServerSideEncryption | None
) -> Manifest:
    """Write the manifest once (``IfNoneMatch='*'``). A retry finding the same manifest returns it."""
    key = manifest_key(manifest.environment, manifest.backup_id)
    if put_once(client, bucket, key, manifest.model_dump_json(indent=2).encode(), sse):
        return manifest
    existing = load_manifest(client, bucket, manifest.environment, manifest.backup_id)
    if not existing.same_content(manifest):
        raise BackupExists(
            f"s3://{bucket}/{key} already exists with other dumps; a manifest is never replaced"
        )
    return existing


def commit_backup(
    client: S3Client,
    bucket: str,
    *,
    environment: str,
    backup_id: str,
    databases: list[str],
    ci_pipeline_id: str | None = None,
    airflow_run_id: str | None = None,
    sse: ServerSideEncryption | None = None,
    now: datetime | None = None,
    verify_checksums: bool = True,
) -> Manifest:
    """Write the manifest of a backup whose dumps are all uploaded: the backup exists from then on.

    Every expected database must have its dump object and DumpRecord, with the object's size and
    (``verify_checksums``, streamed) SHA-256 matching the record, on the first write as on a
    retry; otherwise nothing is written and the error names what is missing or differs.
    """
    if not databases:
        raise InvalidInput("no databases given: expected the names of the databases the backup must hold")
    phase = parse_backup_id(backup_id).phase
    records: list[DumpRecord] = []
    problems: list[str] = []
    for database in databases:
        key = dump_key(environment, backup_id, database)
        head = head_or_none(client, bucket, key)
        record = load_record(client, bucket, key) if head is not None else None
        if head is None:
            problems.append(f"{database}: dump s3://{bucket}/{key} is missing")
        elif record is None:
            problems.append(f"{database}: dump record s3://{bucket}/{record_key(key)} is missing")
        elif head["ContentLength"] != record.size:
            problems.append(f"{database}: object is {head['ContentLength']} bytes, record says {record.size}")
        elif verify_checksums and (sha := object_sha256(client, bucket, key)) != record.sha256:
            problems.append(f"{database}: object has sha256 {sha}, record says {record.sha256}")
        else:
            records.append(record)
    if problems:
        raise BackupError(f"backup {backup_id} is incomplete, manifest not written: " + "; ".join(problems))
    try:
        manifest = Manifest(
            backup_id=backup_id,
            environment=environment,
            phase=phase,
            ci_pipeline_id=ci_pipeline_id,
            airflow_run_id=airflow_run_id,
            started_at=min(r.started_at for r in records),
            finished_at=now or datetime.now(UTC),
            databases=records,
        )
    except ValidationError as err:
        deleted = discard_uncommitted(client, bucket, environment, backup_id)
        raise ManifestRejected(
            f"backup {backup_id}: the manifest cannot be written ({validation_summary(err)}); "
            f"deleted its {deleted} uploaded objects, so no dumps are left that look like a backup"
        ) from None
    return write_manifest(client, bucket, manifest, sse)


def validation_summary(err: ValidationError) -> str:
    """``field: message (got <type> <value>)`` per error, short: what was wrong and what is expected."""
    parts = []
    for e in err.errors()[:5]:
        where = ".".join(str(p) for p in e["loc"]) or "manifest"
        got = e.get("input")
        parts.append(f"{where}: {e['msg']} (got {type(got).__name__} {str(got)[:60]!r})")
    return "; ".join(parts)


def discard_uncommitted(client: S3Client, bucket: str, environment: str, backup_id: str) -> int:
    """Delete every object of a backup that has no manifest (its dumps and records); how many.

    Refuses when the manifest exists: a committed backup is only ever deleted whole by retention.
    """
    prefix = backup_prefix(environment, backup_id)
    keys = [o["Key"] for o in list_keys(client, bucket, prefix)]
    if prefix + MANIFEST_NAME in keys:
        raise BackupExists(f"backup {backup_id} has its manifest: it is committed and is not discarded")
    for start in range(0, len(keys), 1000):
        answer = client.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]], "Quiet": True}
        )
        if answer.get("Errors"):
            raise BackupError(
                f"could not delete {len(answer['Errors'])} object(s) of uncommitted backup {backup_id}"
            )
    return len(keys)


def object_sha256(client: S3Client, bucket: str, key: str, chunk: int = 8 * 1024 * 1024) -> str:
    """SHA-256 of an object, streamed."""
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    digest = hashlib.sha256()
    try:
        while block := body.read(chunk):
            digest.update(block)
    finally:
        body.close()
    return digest.hexdigest()


@dataclass(frozen=True)
class BackupRef:
    """A committed backup as seen in a listing (its manifest exists)."""

    environment: str
    backup_id: str
    phase: Phase
    created_at: datetime
    manifest_key: str


def list_backups(
    client: S3Client, bucket: str, environment: str, phase: str | None = None
) -> list[BackupRef]:
    """Committed backups of ``environment`` (optionally one phase), newest first."""
    wanted = parse_phase(phase) if phase is not None else None
    prefix = f"{PREFIX}/{check_environment(environment)}/"
    refs: list[BackupRef] = []
    for obj in list_keys(client, bucket, prefix):
        backup_id, _, name = obj["Key"][len(prefix) :].partition("/")
        if name != MANIFEST_NAME or not BACKUP_ID_RE.match(backup_id):
            continue
        parts = parse_backup_id(backup_id)
        if wanted is None or parts.phase == wanted:
            refs.append(BackupRef(environment, backup_id, parts.phase, parts.created_at, obj["Key"]))
    refs.sort(key=lambda r: (r.created_at, r.backup_id), reverse=True)
    return refs


def resolve_backup_id(client: S3Client, bucket: str, environment: str, selector: str) -> str:
    """``latest``, ``latest:<phase>`` or a backup id -> the id of a committed backup, or a clear error."""
    selector = (selector or "").strip()
    if selector == "latest" or selector.startswith("latest:"):
        phase = selector.partition(":")[2] or None
        refs = list_backups(client, bucket, environment, phase)
        if not refs:
            what = f"{phase} backup" if phase else "backup"
            raise BackupNotFound(f"environment {environment} has no committed {what} in s3://{bucket}")
        return refs[0].backup_id
    parse_backup_id(selector)
    if head_or_none(client, bucket, manifest_key(environment, selector)) is None:
        recent = ", ".join(r.backup_id for r in list_backups(client, bucket, environment)[:5]) or "none"
        raise BackupNotFound(f"no committed backup {selector} in environment {environment}; newest: {recent}")
    return selector
