"""Test-config sync logic: which test configuration each baseline service should run, which
production configuration changes came without one, and how secrets are kept out of sight.
Pure logic, no Airflow.

Production configuration *values* are never read: only their digests, to see that they changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime

from baseline_guard.code_sync import production_versions
from baseline_guard.environment_contract import ConfigDigest, Release

MASK = "***"
_SECRET_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|auth|dsn|signing)",
    re.I,
)

DECISION_UPDATED_BY_HAND = "Test config updated by hand"
DECISION_NOT_NEEDED = "Not needed for the baseline"
DECISIONS = [DECISION_UPDATED_BY_HAND, DECISION_NOT_NEEDED]


def is_secret_key(key: str) -> bool:
    """Whether a configuration key names a secret (password, token, key, credential...)."""
    return bool(_SECRET_KEY.search(key))


def secret_values(values: Mapping[str, str]) -> list[str]:
    """The values to register with the log masker before anything is logged."""
    return [v for k, v in values.items() if is_secret_key(k) and v]


def masked(values: Mapping[str, str]) -> dict[str, str]:
    """A copy fit for logs, XCom, notifications and the UI: secret values replaced by ``***``."""
    return {k: (MASK if is_secret_key(k) else v) for k, v in values.items()}


def releases_in_production(releases: Iterable[Release], as_of: datetime) -> dict[str, Release]:
    """The release record of the version each service runs in production at ``as_of``."""
    releases = list(releases)
    versions = production_versions(releases, as_of)
    chosen: dict[str, Release] = {}
    for rel in releases:
        if rel.released_at <= as_of and versions.get(rel.service) == rel.version:
            chosen[rel.service] = rel  # the latest record of that version wins
    return chosen


def unmatched_config_changes(
    digests: Iterable[ConfigDigest],
    recorded: Mapping[str, Mapping[str, str]],
    releases: Iterable[Release],
) -> tuple[list[dict[str, str]], dict[str, dict[str, str]]]:
    """Production configuration changes since the last sync, split by whether a test config came with them.

    ``recorded`` maps service -> {"digest", "seen_at"} from the previous sync. A change is
    *matched* when a release of that service carrying a test configuration was recorded after
    the digest was last seen; matched changes (and first sightings) are simply recorded.

    :return: (changes needing a person, new records for everything else)
    """
    releases = list(releases)
    needs_person: list[dict[str, str]] = []
    new_records: dict[str, dict[str, str]] = {}
    for d in digests:
        entry = {"digest": d.digest, "seen_at": d.changed_at.isoformat()}
        before = recorded.get(d.service)
        if before is None or before.get("digest") == d.digest:
            new_records[d.service] = entry
            continue
        since = datetime.fromisoformat(before["seen_at"])
        came_with_test_config = any(
            r.service == d.service and r.test_config_ref and r.released_at > since for r in releases
        )
        if came_with_test_config:
            new_records[d.service] = entry
        else:
            needs_person.append(
                {"service": d.service, "digest": d.digest, "changed_at": d.changed_at.isoformat()}
            )
    return needs_person, new_records
