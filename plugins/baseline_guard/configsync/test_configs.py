"""Which test configuration each service should run (the one prepared with the release production
runs), whether it is small enough to apply, and what may be said about it. Pure logic, no Airflow.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from baseline_guard.codesync.versions import production_versions
from baseline_guard.configsync.secrets import secret_keys
from baseline_guard.environment_contract import Release
from baseline_guard.errors import InvalidInput

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
