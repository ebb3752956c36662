"""When a business-check outcome is worth a message: one per failure, none while nothing changes.

Each environment's last outcome is kept as a small JSON object in the bucket
(``checks/state/<environment>/<scope>.json``; the scope is ``all`` or the tags a run was limited to,
so a CI smoke run never "recovers" what the full hourly run found broken). A message is due when an environment starts failing, when
what is broken changes (another module or interface), and when it passes again; an hourly run
that finds the same breakage stays silent.

The alert is decided inside the check task, and a retry of that task must decide as its first try did
(the message is sent once, after the last try). So the stored outcome names the task instance that
stored it and the outcome it was compared with: a later try of the same task instance compares with
that one again, not with what its own earlier try stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from baseline_guard.backup.manifest import check_environment
from baseline_guard.backup.s3io import get_bytes_or_none

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PREFIX = "checks/state"

Alert = Literal["failed", "changed", "recovered"]


class CheckOutcome(BaseModel):
    """An environment's last business-check outcome: which module/interface pairs were broken, since when."""

    environment: str
    passed: bool
    broken: list[str]
    since: datetime
    decided_by: str | None = None  # the Airflow task instance that stored it (dag/run/task/map)
    before: CheckOutcome | None = None  # the outcome it was compared with


def scope_of(tags: list[str]) -> str:
    return "+".join(sorted(set(tags))) if tags else "all"


def state_key(environment: str, scope: str = "all") -> str:
    return f"{PREFIX}/{check_environment(environment)}/{scope}.json"


def load_outcome(client: S3Client, bucket: str, environment: str, scope: str = "all") -> CheckOutcome | None:
    raw = get_bytes_or_none(client, bucket, state_key(environment, scope))
    return None if raw is None else CheckOutcome.model_validate_json(raw)


def alert_for(previous: CheckOutcome | None, passed: bool, broken: list[str]) -> Alert | None:
    """The message the new outcome calls for, or None when nothing changed."""
    if passed:
        return "recovered" if previous is not None and not previous.passed else None
    if previous is None or previous.passed:
        return "failed"
    return "changed" if sorted(previous.broken) != sorted(broken) else None


def record_outcome(
    client: S3Client,
    bucket: str,
    environment: str,
    *,
    passed: bool,
    broken: list[str],
    at: datetime,
    tags: list[str] | None = None,
    decided_by: str | None = None,
) -> tuple[Alert | None, CheckOutcome]:
    """Compare with the stored outcome, store the new one (keeping ``since`` while unchanged), return the alert.

    :param decided_by: the task instance deciding; a retry of it compares with what its first try did
    """
    scope = scope_of(tags or [])
    stored = load_outcome(client, bucket, environment, scope)
    previous = (
        stored.before if stored is not None and decided_by and stored.decided_by == decided_by else stored
    )
    alert = alert_for(previous, passed, broken)
    unchanged = previous is not None and alert is None
    outcome = CheckOutcome(
        environment=environment,
        passed=passed,
        broken=sorted(broken),
        since=previous.since if unchanged and previous is not None else at,
        decided_by=decided_by,
        before=previous.model_copy(update={"before": None}) if previous is not None else None,
    )
    client.put_object(
        Bucket=bucket,
        Key=state_key(environment, scope),
        Body=outcome.model_dump_json().encode(),
        ContentType="application/json",
    )
    return alert, outcome
