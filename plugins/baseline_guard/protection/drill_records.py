"""Where restore drills are recorded: one JSON object per drill in the backup bucket, beside the backups.

Layout::

    drills/<environment>/<drill_id>.json    DrillResult (passed or failed), one per drill run
    drills/<environment>/stale.json         StaleFlag, present while the environment is flagged

``<drill_id>`` is ``<yyyymmddThhmmssZ>-<8 hex of the run>``: sortable by time and the same on every
try of one run, so a retry replaces its own record and nothing else. The health page reads the
newest passed drill as "last proven restore" (:func:`last_proven_restore`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from baseline_guard.backup.manifest import check_environment
from baseline_guard.backup.s3io import get_bytes_or_none, list_keys
from baseline_guard.environment_contract import NAME_PATTERN
from baseline_guard.errors import InvalidInput

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PREFIX = "drills"
STALE_NAME = "stale.json"
DRILL_ID_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")
PROVEN_MAX_AGE = timedelta(hours=25)
SCAN_LIMIT = 200  # drills looked at when searching the newest passed one (about half a year of daily drills)


class DrilledDatabase(BaseModel):
    """One database of a drill: what was restored into which scratch database, and how it went."""

    database: str
    scratch: str
    key: str
    passed: bool
    sha256: str | None = None
    size: int | None = None
    tables: int | None = None
    rows: int | None = None
    smoke: str | None = None
    scratch_dropped: bool = False
    error: str | None = None


class DrillResult(BaseModel):
    """A restore drill of one environment's backup: passed only when every database passed."""

    format_version: Literal[1] = 1
    environment: str = Field(pattern=NAME_PATTERN)
    drill_id: str = Field(pattern=DRILL_ID_RE.pattern)
    backup_id: str
    backup_finished_at: datetime
    started_at: datetime
    finished_at: datetime
    passed: bool
    databases: list[DrilledDatabase]
    airflow_run_id: str | None = None

    def failures(self) -> list[str]:
        return [f"{d.database}: {d.error}" for d in self.databases if not d.passed]


class StaleFlag(BaseModel):
    """An environment whose last proven restore is too old; its admins were told once, at ``flagged_at``."""

    environment: str
    flagged_at: datetime
    last_proven_at: datetime | None


def make_drill_id(as_of: datetime, run_key: str) -> str:
    if as_of.tzinfo is None:
        raise InvalidInput(f"drill time {as_of.isoformat()} has no time zone: expected an aware datetime")
    if not run_key:
        raise InvalidInput("run key is empty: expected the run the drill belongs to")
    return f"{as_of.astimezone(UTC):%Y%m%dT%H%M%SZ}-{hashlib.sha256(run_key.encode()).hexdigest()[:8]}"


def drill_key(environment: str, drill_id: str) -> str:
    if not DRILL_ID_RE.match(drill_id):
        raise InvalidInput(f"drill id {drill_id!r}: expected <yyyymmddThhmmssZ>-<8 hex>")
    return f"{PREFIX}/{check_environment(environment)}/{drill_id}.json"


def stale_key(environment: str) -> str:
    return f"{PREFIX}/{check_environment(environment)}/{STALE_NAME}"


def record_drill(client: S3Client, bucket: str, result: DrillResult) -> str:
    """Write the drill's result (a retry of the same run replaces its own record); returns the key."""
    key = drill_key(result.environment, result.drill_id)
    client.put_object(
        Bucket=bucket,
        Key=key,
        Body=result.model_dump_json(indent=2).encode(),
        ContentType="application/json",
        ServerSideEncryption="AES256",
    )
    return key


def drill_ids(client: S3Client, bucket: str, environment: str) -> list[str]:
    """Ids of the recorded drills of ``environment``, newest first."""
    prefix = f"{PREFIX}/{check_environment(environment)}/"
    ids = [o["Key"][len(prefix) :].removesuffix(".json") for o in list_keys(client, bucket, prefix)]
    return sorted((i for i in ids if DRILL_ID_RE.match(i)), reverse=True)


def load_drill(client: S3Client, bucket: str, environment: str, drill_id: str) -> DrillResult | None:
    raw = get_bytes_or_none(client, bucket, drill_key(environment, drill_id))
    return None if raw is None else DrillResult.model_validate_json(raw)


@dataclass(frozen=True)
class DrillHistory:
    """The newest drill of an environment and its newest passed one (the last proven restore)."""

    latest: DrillResult | None
    last_proven: DrillResult | None

    @property
    def last_proven_at(self) -> datetime | None:
        return self.last_proven.finished_at if self.last_proven else None

    def is_stale(self, as_of: datetime, max_age: timedelta = PROVEN_MAX_AGE) -> bool:
        """True when no restore was proven within ``max_age`` before ``as_of``."""
        proven = self.last_proven_at
        return proven is None or as_of - proven > max_age


def drill_history(client: S3Client, bucket: str, environment: str) -> DrillHistory:
    latest: DrillResult | None = None
    for drill_id in drill_ids(client, bucket, environment)[:SCAN_LIMIT]:
        result = load_drill(client, bucket, environment, drill_id)
        if result is None:
            continue
        latest = latest or result
        if result.passed:
            return DrillHistory(latest=latest, last_proven=result)
    return DrillHistory(latest=latest, last_proven=None)


def last_proven_restore(client: S3Client, bucket: str, environment: str) -> DrillResult | None:
    return drill_history(client, bucket, environment).last_proven


def load_stale_flag(client: S3Client, bucket: str, environment: str) -> StaleFlag | None:
    raw = get_bytes_or_none(client, bucket, stale_key(environment))
    return None if raw is None else StaleFlag.model_validate_json(raw)


FlagChange = Literal["raised", "cleared", "unchanged"]


def update_stale_flag(
    client: S3Client,
    bucket: str,
    environment: str,
    *,
    stale: bool,
    as_of: datetime,
    last_proven_at: datetime | None,
) -> FlagChange:
    """Raise or clear the environment's stale flag. ``raised`` only on the change, so admins are told once."""
    flag = load_stale_flag(client, bucket, environment)
    if stale and flag is None:
        body = StaleFlag(environment=environment, flagged_at=as_of, last_proven_at=last_proven_at)
        client.put_object(
            Bucket=bucket,
            Key=stale_key(environment),
            Body=body.model_dump_json().encode(),
            ContentType="application/json",
            ServerSideEncryption="AES256",
        )
        return "raised"
    if not stale and flag is not None:
        client.delete_object(Bucket=bucket, Key=stale_key(environment))
        return "cleared"
    return "unchanged"


def summary(result: DrillResult) -> dict[str, Any]:
    """A small JSON-able summary of a drill for XCom and logs."""
    return result.model_dump(
        mode="json",
        include={"environment", "drill_id", "backup_id", "passed", "databases"},
        exclude={"databases": {"__all__": {"sha256", "key", "smoke"}}},
    )
