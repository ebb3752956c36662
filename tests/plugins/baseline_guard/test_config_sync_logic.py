"""Test-config sync logic (pure): which release's config applies, which prod changes need a person, masking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from baseline_guard.config_sync import is_secret_key, masked, releases_in_production, unmatched_config_changes
from baseline_guard.environment_contract import ConfigDigest, Release

T0 = datetime(2026, 11, 1, 10, tzinfo=UTC)


def _rel(service: str, version: str, minutes: int, ref: str | None) -> Release:
    return Release(
        service=service, version=version, released_at=T0 + timedelta(minutes=minutes), test_config_ref=ref
    )


def _digest(service: str, digest: str, minutes: int) -> ConfigDigest:
    return ConfigDigest(service=service, digest=digest, changed_at=T0 + timedelta(minutes=minutes))


def test_secret_keys_are_recognised_and_masked() -> None:
    values = {"db_password": "hunter22", "api_key": "k-1", "auth_token": "t", "page_size": "20", "host": "x"}
    assert [k for k in values if is_secret_key(k)] == ["db_password", "api_key", "auth_token"]
    assert masked(values) == {
        "db_password": "***",
        "api_key": "***",
        "auth_token": "***",
        "page_size": "20",
        "host": "x",
    }


def test_release_in_production_is_the_latest_record_up_to_as_of() -> None:
    releases = [_rel("quote", "1.1.0", 0, "quote@1.1.0"), _rel("quote", "1.2.0", 30, "quote@1.2.0")]
    assert (
        releases_in_production(releases, T0 + timedelta(minutes=10))["quote"].test_config_ref == "quote@1.1.0"
    )
    assert releases_in_production(releases, T0 + timedelta(minutes=40))["quote"].version == "1.2.0"


def test_first_sighting_is_recorded_without_asking() -> None:
    needs, records = unmatched_config_changes([_digest("quote", "d1", 0)], {}, [])
    assert needs == [] and records["quote"]["digest"] == "d1"


def test_change_with_a_test_config_release_is_matched() -> None:
    recorded = {"quote": {"digest": "d1", "seen_at": T0.isoformat()}}
    releases = [_rel("quote", "1.3.0", 20, "quote@1.3.0")]
    needs, records = unmatched_config_changes([_digest("quote", "d2", 20)], recorded, releases)
    assert needs == [] and records["quote"]["digest"] == "d2"


def test_change_without_test_config_needs_a_person_and_is_not_recorded() -> None:
    recorded = {
        "quote": {"digest": "d1", "seen_at": T0.isoformat()},
        "order": {"digest": "o1", "seen_at": T0.isoformat()},
    }
    releases = [_rel("quote", "1.3.0", 20, None), _rel("quote", "1.1.0", -60, "quote@1.1.0")]
    needs, records = unmatched_config_changes(
        [_digest("quote", "d2", 20), _digest("order", "o1", 0)], recorded, releases
    )
    assert needs == [
        {"service": "quote", "digest": "d2", "changed_at": (T0 + timedelta(minutes=20)).isoformat()}
    ]
    assert "quote" not in records and records["order"]["digest"] == "o1"
