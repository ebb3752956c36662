"""Test-config sync logic: which test configuration each baseline service should run, which
production configuration changes came without one, and what the on-call person decided. Pure
logic, no Airflow.

Production configuration *values* are never read: only their digests, to see that they changed.

The decision records (one per service, kept in an Airflow Variable by the DAG) look like::

    {"digest": "sha256:…", "seen_at": "<when production changed>",
     "status": "recorded" | "asked" | "decided" | "timed_out",
     "asked_at", "expires_at", "asked_in"       # when asked, until when, by which run
     "decision", "decided_by", "decided_at"}   # when decided

A record stays as it is while production's digest stays the same; only a new digest replaces it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from baseline_guard.code_sync import production_versions
from baseline_guard.environment_contract import ConfigDigest, Release
from baseline_guard.errors import InvalidInput
from baseline_guard.secrets_masking import secret_keys

DECISION_UPDATED_BY_HAND = "Test config updated by hand"
DECISION_NOT_NEEDED = "Not needed for the baseline"
DECISIONS = [DECISION_UPDATED_BY_HAND, DECISION_NOT_NEEDED]

STATUS_RECORDED = "recorded"  # seen; nothing to decide (first sighting, or a test config came with it)
STATUS_ASKED = "asked"
STATUS_DECIDED = "decided"
STATUS_TIMED_OUT = "timed_out"

# A release "came with" a production config change when it was recorded this close to the change.
RELEASE_CHANGE_SKEW = timedelta(minutes=2)
# How long after its response deadline an unanswered question counts as lost (its run died).
PENDING_GRACE = timedelta(minutes=10)

MAX_CONFIG_KEYS = 2000
MAX_CONFIG_BYTES = 256 * 1024
MAX_KEYS_LISTED = 50  # key names in logs, XCom and events; the count says how many there are


def releases_with_test_config(releases: Iterable[Release], as_of: datetime) -> dict[str, Release | None]:
    """Per service, the latest release record of the version production runs at ``as_of`` that carries
    a test configuration; None when no record of that version carries one.

    A version can be recorded more than once (a re-release, a production config change): a later
    record without a test config does not hide the test config an earlier record of it brought.
    """
    releases = [r for r in releases if r.released_at <= as_of]
    versions = production_versions(releases, as_of)
    chosen: dict[str, Release | None] = dict.fromkeys(versions)
    for rel in sorted(releases, key=lambda r: r.released_at):
        if versions.get(rel.service) == rel.version and rel.test_config_ref:
            chosen[rel.service] = rel
    return chosen


def check_config_size(ref: str, values: Mapping[str, str]) -> None:
    """Refuse a test configuration too big to be a configuration (and to be handled safely)."""
    size = len(json.dumps(values, ensure_ascii=False).encode())
    if len(values) > MAX_CONFIG_KEYS or size > MAX_CONFIG_BYTES:
        raise InvalidInput(
            f"test config {ref} has {len(values)} keys ({size:,} bytes); the limit is {MAX_CONFIG_KEYS} keys "
            f"and {MAX_CONFIG_BYTES:,} bytes: split the configuration or apply it by hand"
        )


def changed_keys(new: Mapping[str, str], old: Mapping[str, str]) -> list[str]:
    """Keys added, removed or changed, sorted."""
    return sorted(k for k in new.keys() | old.keys() if new.get(k) != old.get(k))


def _listed(keys: list[str]) -> list[str]:
    return keys[:MAX_KEYS_LISTED] + (
        [f"… {len(keys) - MAX_KEYS_LISTED} more"] if len(keys) > MAX_KEYS_LISTED else []
    )


def config_summary(
    service: str, ref: str, previous_ref: str | None, new: Mapping[str, str], old: Mapping[str, str]
) -> dict[str, Any]:
    """What logs, XCom and asset events say about an applied config: counts and key names, never values."""
    changed = changed_keys(new, old)
    return {
        "service": service,
        "ref": ref,
        "previous_ref": previous_ref,
        "keys": len(new),
        "changed": len(changed),
        "changed_keys": _listed(changed),
        "secret_keys": len(secret_keys(new)),
    }


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
) -> tuple[list[dict[str, str]], dict[str, dict[str, Any]]]:
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
    updates: dict[str, dict[str, Any]] = {}
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
) -> dict[str, Any]:
    return {
        "digest": change["digest"],
        "seen_at": change["changed_at"],
        "status": STATUS_ASKED,
        "asked_at": asked_at.isoformat(),
        "expires_at": (asked_at + response_timeout).isoformat(),
        "asked_in": run_id,
    }


def user_name(user: Any) -> str:
    """The deciding user's name from Airflow's ``responded_by_user`` (``{"id", "name"}``)."""
    if isinstance(user, Mapping):
        return str(user.get("name") or user.get("id") or "unknown")
    return str(user or "unknown")


def decided_record(
    change: Mapping[str, str], decision: str, user: Any, decided_at: datetime
) -> dict[str, Any]:
    return {
        "digest": change["digest"],
        "seen_at": change["changed_at"],
        "status": STATUS_DECIDED,
        "decision": decision,
        "decided_by": user_name(user),
        "decided_at": decided_at.isoformat(),
    }


def timed_out_record(change: Mapping[str, str], asked_at: str | None, at: datetime) -> dict[str, Any]:
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
