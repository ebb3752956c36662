"""Code sync planning (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime

from baseline_guard.codesync import plan_rollouts, production_versions, reconcile
from baseline_guard.environment_contract import Instance, Release, Service

T0 = datetime(2026, 11, 1, 10, tzinfo=UTC)


def _svc(name: str, *versions: str) -> Service:
    return Service(
        name=name,
        environment="baseline",
        module="m",
        instances=[
            Instance(index=i, version=v, state="running", health="healthy", in_rotation=True)
            for i, v in enumerate(versions)
        ],
    )


def _rel(service: str, version: str, hour: int) -> Release:
    return Release(service=service, version=version, released_at=T0.replace(hour=hour))


def test_production_versions_takes_latest_release_up_to_as_of() -> None:
    releases = [
        _rel("quote", "1.0.0", 8),
        _rel("quote", "1.1.0", 11),
        _rel("order", "2.0.0", 9),
        _rel("quote", "1.2.0", 13),
    ]
    assert production_versions(releases, T0.replace(hour=12)) == {"order": "2.0.0", "quote": "1.1.0"}
    assert production_versions(releases, T0.replace(hour=7)) == {}


def test_plan_includes_half_rolled_services_and_skips_unknown() -> None:
    services = [
        _svc("quote", "1.1.0", "1.0.0"),
        _svc("order", "2.0.0", "2.0.0"),
        _svc("extra", "0.1.0", "0.1.0"),
    ]
    plan = plan_rollouts({"quote": "1.1.0", "order": "2.0.0", "missing": "3.0.0"}, services)
    assert plan == [{"service": "quote", "version": "1.1.0"}]


def test_nothing_to_do_gives_empty_plan() -> None:
    assert plan_rollouts({"quote": "1.0.0"}, [_svc("quote", "1.0.0", "1.0.0")]) == []


def test_reconcile_splits_changed_and_failed() -> None:
    plan = [{"service": "quote", "version": "1.1.0"}, {"service": "order", "version": "2.1.0"}]
    changed, failed = reconcile(plan, [_svc("quote", "1.1.0", "1.1.0"), _svc("order", "2.0.0", "2.0.0")])
    assert [c["service"] for c in changed] == ["quote"]
    assert failed == [{"service": "order", "version": "2.1.0", "running": ["2.0.0"]}]
