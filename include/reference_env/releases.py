"""Production's release records: the releases, the test configs that came with them, production config digests."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from typing import Any

from baseline_guard.environment_contract import (
    ConfigDigest,
    Health,
    Instance,
    InstanceState,
    Release,
    ReleaseCreate,
    TestConfig,
)

from reference_env.errors import NotFound
from reference_env.runtime import as_utc
from reference_env.topology import Topology

log = logging.getLogger(__name__)


def config_digest(values: dict[str, str]) -> str:
    """sha256 of the canonical JSON of the values (sorted keys, no spaces)."""
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


class ReleaseRecords:
    """What production released, in memory; the store persists it (``to_state``/``load``)."""

    def __init__(self) -> None:
        self.releases: list[Release] = []
        self.test_configs: dict[str, TestConfig] = {}
        self.prod_config: dict[str, dict[str, str]] = {}

    def seed(self, topology: Topology, now: datetime) -> None:
        """One release per service at its production version, with its test config."""
        for spec in topology.services:
            ref = f"{spec.name}@{spec.production_version}"
            self.test_configs[ref] = TestConfig(ref=ref, service=spec.name, values=spec.test_config)
            self.releases.append(
                Release(
                    service=spec.name, version=spec.production_version, released_at=now, test_config_ref=ref
                )
            )
            self.prod_config[spec.name] = {
                "digest": config_digest(spec.production_config),
                "changed_at": now.isoformat(),
            }

    def load(self, saved: dict[str, Any]) -> None:
        self.releases = [Release.model_validate(r) for r in saved["releases"]]
        self.test_configs = {ref: TestConfig.model_validate(t) for ref, t in saved["test_configs"].items()}
        self.prod_config = dict(saved["prod_config"])

    def to_state(self) -> dict[str, Any]:
        return {
            "releases": [r.model_dump(mode="json") for r in self.releases],
            "test_configs": {ref: t.model_dump(mode="json") for ref, t in self.test_configs.items()},
            "prod_config": self.prod_config,
        }

    def history(self, service: str | None = None, until: datetime | None = None) -> list[Release]:
        """Releases by release time (then by recording order), of one service or all, up to ``until``."""
        ordered = sorted(enumerate(self.releases), key=lambda pair: (pair[1].released_at, pair[0]))
        return [
            r
            for _, r in ordered
            if (service is None or r.service == service) and (until is None or r.released_at <= as_utc(until))
        ]

    def production_instances(self, service: str, count: int) -> list[Instance]:
        """Production's instances (a record, no processes): at the latest release's version, healthy."""
        history = self.history(service)
        version = history[-1].version if history else "0.0.0"
        previous = next((r.version for r in reversed(history) if r.version != version), None)
        return [
            Instance(
                index=i,
                version=version,
                previous_version=previous,
                state=InstanceState.RUNNING,
                health=Health.HEALTHY,
                in_rotation=True,
            )
            for i in range(1, count + 1)
        ]

    def record(self, request: ReleaseCreate, released_at: datetime) -> Release:
        """Record a checked release: its test config under a fresh ref, production's new config digest."""
        ref = None
        if request.test_config is not None:
            ref = self._store_test_config(request.service, request.version, request.test_config)
        if request.production_config is not None:
            digest = config_digest(request.production_config)
            if self.prod_config.get(request.service, {}).get("digest") != digest:
                self.prod_config[request.service] = {"digest": digest, "changed_at": released_at.isoformat()}
                log.info("production configuration of %s changed (new digest)", request.service)
        release = Release(
            service=request.service, version=request.version, released_at=released_at, test_config_ref=ref
        )
        self.releases.append(release)
        return release

    def _store_test_config(self, service: str, version: str, values: dict[str, str]) -> str:
        base = f"{service}@{version}"
        ref, n = base, 1
        while ref in self.test_configs and self.test_configs[ref].values != values:
            n += 1
            ref = f"{base}-r{n}"
        self.test_configs[ref] = TestConfig(ref=ref, service=service, values=values)
        return ref

    def test_config(self, ref: str) -> TestConfig:
        found = self.test_configs.get(ref)
        if found is None:
            raise NotFound(f"test config {ref!r} not found")
        return found

    def production_config_digest(self, service: str) -> ConfigDigest:
        entry = self.prod_config[service]
        return ConfigDigest(
            service=service, digest=entry["digest"], changed_at=datetime.fromisoformat(entry["changed_at"])
        )
