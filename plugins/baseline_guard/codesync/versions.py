"""Code sync planning: what production runs vs what the baseline runs. Pure logic, no Airflow."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from baseline_guard.environment_contract import Release, Service


def production_versions(releases: Iterable[Release], as_of: datetime) -> dict[str, str]:
    """The version each service runs in production at ``as_of``: its latest release up to then."""
    latest: dict[str, Release] = {}
    for rel in releases:
        if rel.released_at <= as_of and (
            rel.service not in latest or rel.released_at >= latest[rel.service].released_at
        ):
            latest[rel.service] = rel
    return {svc: rel.version for svc, rel in sorted(latest.items())}


def plan_rollouts(desired: dict[str, str], services: Iterable[Service]) -> list[dict[str, str]]:
    """One rollout per service any of whose instances runs another version than production.

    Services production does not run (or the environment does not have) are left alone.
    """
    plan = []
    for svc in sorted(services, key=lambda s: s.name):
        target = desired.get(svc.name)
        if target and any(i.version != target for i in svc.instances):
            plan.append({"service": svc.name, "version": target})
    return plan


def reconcile(
    plan: Iterable[dict[str, str]], services: Iterable[Service]
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Split a plan into (changed, failed) by what the environment runs now."""
    now = {s.name: s for s in services}
    changed: list[dict[str, object]] = []
    failed: list[dict[str, object]] = []
    for item in plan:
        svc = now.get(item["service"])
        versions = sorted({i.version for i in svc.instances}) if svc else []
        entry: dict[str, object] = {**item, "running": versions}
        (changed if versions == [item["version"]] else failed).append(entry)
    return changed, failed
