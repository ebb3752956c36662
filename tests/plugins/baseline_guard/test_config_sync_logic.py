"""Test-config sync logic (pure): which release's config applies, which prod changes need a person, records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from baseline_guard.configsync import (
    MAX_CONFIG_KEYS,
    STATUS_ASKED,
    STATUS_DECIDED,
    asked_record,
    check_config_size,
    config_summary,
    decided_record,
    releases_with_test_config,
    timed_out_record,
    unmatched_config_changes,
    user_name,
)
from baseline_guard.environment_contract import ConfigDigest, Release
from baseline_guard.errors import InvalidInput

T0 = datetime(2026, 11, 1, 10, tzinfo=UTC)


def _rel(service: str, version: str, minutes: int, ref: str | None) -> Release:
    return Release(
        service=service, version=version, released_at=T0 + timedelta(minutes=minutes), test_config_ref=ref
    )


def _digest(service: str, digest: str, minutes: int) -> ConfigDigest:
    return ConfigDigest(service=service, digest=digest, changed_at=T0 + timedelta(minutes=minutes))


def _unmatched(digests, recorded, releases, now_minutes: int = 30):  # type: ignore[no-untyped-def]
    return unmatched_config_changes(digests, recorded, releases, now=T0 + timedelta(minutes=now_minutes))


def test_test_config_release_is_the_latest_record_of_productions_version_that_carries_one() -> None:
    releases = [_rel("quote", "1.1.0", 0, "quote@1.1.0"), _rel("quote", "1.2.0", 30, "quote@1.2.0")]
    assert (
        releases_with_test_config(releases, T0 + timedelta(minutes=10))["quote"].test_config_ref
        == "quote@1.1.0"
    )
    assert releases_with_test_config(releases, T0 + timedelta(minutes=40))["quote"].version == "1.2.0"
    # a later record of the same version without a test config (a config-only re-release) hides nothing
    releases.append(_rel("quote", "1.2.0", 50, None))
    assert (
        releases_with_test_config(releases, T0 + timedelta(minutes=60))["quote"].test_config_ref
        == "quote@1.2.0"
    )
    # a version no record of which carries a test config: None (reported, nothing invented)
    releases.append(_rel("quote", "1.3.0", 70, None))
    assert releases_with_test_config(releases, T0 + timedelta(minutes=80)) == {"quote": None}


def test_oversized_config_is_refused_with_a_clear_error_and_summaries_stay_small() -> None:
    huge = {f"key_{i}": "x" * 90 for i in range(MAX_CONFIG_KEYS * 5)}
    with pytest.raises(InvalidInput, match=r"has 10000 keys .* the limit is 2000 keys"):
        check_config_size("quote@9", huge)
    check_config_size("quote@1", {"a": "b"})
    summary = config_summary("quote", "quote@9", "quote@8", huge, {})
    assert summary["keys"] == 10000 and summary["changed"] == 10000
    assert len(summary["changed_keys"]) == 51 and summary["changed_keys"][-1] == "… 9950 more"
    assert "x" * 90 not in str(summary) and len(str(summary)) < 2000


def test_first_sighting_is_recorded_without_asking() -> None:
    needs, updates = _unmatched([_digest("quote", "d1", 0)], {}, [])
    assert needs == [] and updates["quote"]["digest"] == "d1"


def test_change_is_covered_only_by_a_test_config_released_with_it() -> None:
    recorded = {"quote": {"digest": "d1", "seen_at": T0.isoformat(), "status": "recorded"}}
    with_it = [_rel("quote", "1.3.0", 20, "quote@1.3.0")]
    needs, updates = _unmatched([_digest("quote", "d2", 20)], recorded, with_it)
    assert needs == [] and updates["quote"]["digest"] == "d2"
    # a test-config release at another time (no production change with it) does not cover the change
    unrelated = [_rel("quote", "1.3.0", 5, "quote@1.3.0"), _rel("quote", "1.3.1", 28, "quote@1.3.1")]
    needs, updates = _unmatched([_digest("quote", "d2", 20)], recorded, unrelated)
    assert [n["service"] for n in needs] == ["quote"] and updates == {}


def test_a_decision_survives_later_runs_until_production_changes_again() -> None:
    change = {"service": "order", "digest": "o2", "changed_at": T0.isoformat()}
    decided = decided_record(change, "Not needed for the baseline", {"id": "ann", "name": "Ann On-Call"}, T0)
    assert decided["decided_by"] == "Ann On-Call" and decided["status"] == STATUS_DECIDED
    recorded = {"order": decided}
    for minutes in (60, 120, 600):
        needs, updates = _unmatched([_digest("order", "o2", 0)], recorded, [], now_minutes=minutes)
        assert needs == [] and updates == {}  # nothing overwrites the decision
    needs, _ = _unmatched([_digest("order", "o3", 700)], recorded, [], now_minutes=701)
    assert [n["digest"] for n in needs] == ["o3"]


def test_a_pending_question_is_not_asked_twice_but_a_timed_out_or_lost_one_is() -> None:
    change = {"service": "order", "digest": "o2", "changed_at": T0.isoformat()}
    asked = asked_record(change, asked_at=T0, response_timeout=timedelta(minutes=50), run_id="r1")
    assert asked["status"] == STATUS_ASKED
    digests = [_digest("order", "o2", 0)]
    assert _unmatched(digests, {"order": asked}, [], now_minutes=30) == ([], {})
    needs, _ = _unmatched(digests, {"order": asked}, [], now_minutes=120)  # its run died
    assert [n["service"] for n in needs] == ["order"]
    timed_out = timed_out_record(change, asked["asked_at"], T0 + timedelta(minutes=50))
    needs, _ = _unmatched(digests, {"order": timed_out}, [], now_minutes=60)
    assert [n["service"] for n in needs] == ["order"]


def test_user_name_is_a_name_not_a_dict() -> None:
    assert user_name({"id": "ci", "name": "ci"}) == "ci"
    assert user_name({"id": "u7", "name": ""}) == "u7"
    assert user_name(None) == "unknown"
