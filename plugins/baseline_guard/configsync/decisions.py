"""Which production configuration changes came without a test configuration, and what the on-call
person decided about each. Pure logic, no Airflow.

Production configuration *values* are never read: only their digests, to see that they changed.

The decision records (one per service, a row of the guard's database: :class:`~baseline_guard.health.guard_state.ConfigDecisionStore`) look like::

    {"digest": "sha256:…", "seen_at": "<when production changed>",
     "status": "recorded" | "asked" | "decided" | "timed_out",
     "asked_at", "expires_at", "asked_in"       # when asked, until when, by which run
     "decision", "decided_by", "decided_at"}   # when decided

A record stays as it is while production's digest stays the same; only a new digest replaces it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from baseline_guard.environment_contract import ConfigDigest, Release

STATUS_RECORDED = "recorded"  # seen; nothing to decide (first sighting, or a test config came with it)
STATUS_ASKED = "asked"
STATUS_DECIDED = "decided"
STATUS_TIMED_OUT = "timed_out"

# A record as written (all text; ``asked_at`` may be None). Records read back from the Variable are
# JSON someone could have edited, so readers take ``Mapping[str, Any]``.
DecisionRecord = dict[str, str | None]

# A release "came with" a production config change when it was recorded this close to the change.
RELEASE_CHANGE_SKEW = timedelta(minutes=2)
# How long after its response deadline an unanswered question counts as lost (its run died).
PENDING_GRACE = timedelta(minutes=10)


def came_with_test_config(change: ConfigDigest, releases: Iterable[Release]) -> bool:
    """Whether a release of the service carrying a test config was recorded with this change."""
    return any(
        r.service == change.service
        and r.test_config_ref
        and abs(r.released_at - change.changed_at) <= RELEASE_CHANGE_SKEW
        for r in releases
    )


def _still_pending(record: Mapping[str, Any], now: datetime) -> bool:
    """An asked question whose run may still be waiting for the answer (the run can have crashed)."""
    if record.get("status") != STATUS_ASKED or not record.get("expires_at"):
        return False
    return datetime.fromisoformat(record["expires_at"]) + PENDING_GRACE > now


def unmatched_config_changes(
    digests: Iterable[ConfigDigest],
    recorded: Mapping[str, Mapping[str, Any]],
    releases: Iterable[Release],
    *,
    now: datetime,
) -> tuple[list[dict[str, str]], dict[str, DecisionRecord]]:
    """Production configuration changes that need a person, and the records to update.

    - First sighting of a service: recorded, nobody asked.
    - Same digest as recorded: the record (and any decision in it) is left alone; a question that
      timed out (or whose run died) is asked again, one still waiting for its answer is not.
    - New digest that came with a test-config release: recorded (a new change clears the old decision).
    - New digest without one: needs a person.

    :return: (changes needing a person, {service: new record} for the services whose record changes)
    """
    releases = list(releases)
    needs_person: list[dict[str, str]] = []
    updates: dict[str, DecisionRecord] = {}
    for d in digests:
        change = {"service": d.service, "digest": d.digest, "changed_at": d.changed_at.isoformat()}
        before = recorded.get(d.service)
        if before is None:
            updates[d.service] = {
                "digest": d.digest,
                "seen_at": change["changed_at"],
                "status": STATUS_RECORDED,
            }
        elif before.get("digest") == d.digest:
            if before.get("status") in (STATUS_ASKED, STATUS_TIMED_OUT) and not _still_pending(before, now):
                needs_person.append(change)
        elif came_with_test_config(d, releases):
            updates[d.service] = {
                "digest": d.digest,
                "seen_at": change["changed_at"],
                "status": STATUS_RECORDED,
            }
        else:
            needs_person.append(change)
    return needs_person, updates


def asked_record(
    change: Mapping[str, str], *, asked_at: datetime, response_timeout: timedelta, run_id: str
) -> DecisionRecord:
    return {
        "digest": change["digest"],
        "seen_at": change["changed_at"],
        "status": STATUS_ASKED,
        "asked_at": asked_at.isoformat(),
        "expires_at": (asked_at + response_timeout).isoformat(),
        "asked_in": run_id,
    }


def user_name(user: object) -> str:
    """The deciding user's name from Airflow's ``responded_by_user`` (``{"id", "name"}``)."""
    if isinstance(user, Mapping):
        return str(user.get("name") or user.get("id") or "unknown")
    return str(user or "unknown")


def decided_record(
    change: Mapping[str, str], decision: str, user: object, decided_at: datetime
) -> DecisionRecord:
    return {
        "digest": change["digest"],
        "seen_at": change["changed_at"],
        "status": STATUS_DECIDED,
        "decision": decision,
        "decided_by": user_name(user),
        "decided_at": decided_at.isoformat(),
    }


def timed_out_record(change: Mapping[str, str], asked_at: str | None, at: datetime) -> DecisionRecord:
    return {
        "digest": change["digest"],
        "seen_at": change["changed_at"],
        "status": STATUS_TIMED_OUT,
        "asked_at": asked_at,
        "timed_out_at": at.isoformat(),
    }


def applies_to_current(record: Mapping[str, Any] | None, change: Mapping[str, str]) -> bool:
    """Whether an answer about ``change`` may still be recorded: production has not changed again since."""
    return record is None or record.get("digest") == change["digest"]
