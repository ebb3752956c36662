"""The sandbox's live records: environments and their instances, with what of them is persisted."""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from baseline_guard.environment_contract import AppliedTestConfig, EnvironmentKind, InstanceState

from reference_env.lightweight import LightweightInstance

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(eq=False)
class InstanceRuntime:
    """One instance of a service in a non-production environment, with its process when it runs."""

    environment: str
    service: str
    index: int
    version: str
    previous_version: str | None = None
    in_rotation: bool = True
    state: InstanceState = InstanceState.STOPPED
    process: subprocess.Popen[bytes] | LightweightInstance | None = field(default=None, repr=False)
    port: int | None = None
    in_flight: int = 0
    operation_id: str | None = None

    @property
    def label(self) -> str:
        return f"{self.environment}/{self.service}/{self.index}"

    @property
    def url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}" if self.port is not None else None

    def refresh(self) -> None:
        """Notice a process that exited on its own (killed, crashed): state failed, no address."""
        if self.process is not None and self.process.poll() is not None:
            log.warning("instance %s exited on its own (code %s)", self.label, self.process.returncode)
            self.process, self.port, self.state = None, None, InstanceState.FAILED

    def routable(self) -> bool:
        self.refresh()
        return self.in_rotation and self.state is InstanceState.RUNNING and self.port is not None

    def to_state(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "version": self.version,
            "previous_version": self.previous_version,
            "in_rotation": self.in_rotation,
        }


@dataclass(eq=False)
class EnvironmentRuntime:
    """A baseline or project environment: its instances per service and its sandbox settings."""

    name: str
    kind: EnvironmentKind
    routing_key: str | None
    services: dict[str, list[InstanceRuntime]]
    owners_notify_url: str | None = None
    applied_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    restart_fails: set[str] = field(default_factory=set)

    @classmethod
    def create(
        cls,
        name: str,
        kind: EnvironmentKind,
        versions: dict[str, str],
        instances: int,
        *,
        owners_notify_url: str | None = None,
    ) -> EnvironmentRuntime:
        """A new environment running ``instances`` instances of each service at its version in ``versions``."""
        return cls(
            name=name,
            kind=kind,
            routing_key=name if kind is EnvironmentKind.PROJECT else None,
            owners_notify_url=owners_notify_url,
            services={
                svc: [
                    InstanceRuntime(environment=name, service=svc, index=i, version=version)
                    for i in range(1, instances + 1)
                ]
                for svc, version in versions.items()
            },
        )

    def applied_test_config(self, service: str) -> AppliedTestConfig:
        applied = self.applied_configs.get(service) or {}
        return AppliedTestConfig(
            environment=self.name,
            service=service,
            ref=applied.get("ref"),
            values=applied.get("values", {}),
            applied_at=applied.get("applied_at"),
        )

    def instances(self) -> list[InstanceRuntime]:
        return [inst for group in self.services.values() for inst in group]

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "routing_key": self.routing_key,
            "owners_notify_url": self.owners_notify_url,
            "services": {svc: [i.to_state() for i in group] for svc, group in self.services.items()},
            "applied_configs": self.applied_configs,
            "restart_fails": sorted(self.restart_fails),
        }

    @classmethod
    def from_state(cls, name: str, data: dict[str, Any]) -> EnvironmentRuntime:
        services = {
            svc: [
                InstanceRuntime(
                    environment=name,
                    service=svc,
                    index=int(raw["index"]),
                    version=str(raw["version"]),
                    previous_version=raw.get("previous_version"),
                    in_rotation=bool(raw.get("in_rotation", True)),
                )
                for raw in group
            ]
            for svc, group in data["services"].items()
        }
        return cls(
            name=name,
            kind=EnvironmentKind(data["kind"]),
            routing_key=data.get("routing_key"),
            owners_notify_url=data.get("owners_notify_url"),
            services=services,
            applied_configs=dict(data.get("applied_configs") or {}),
            restart_fails=set(data.get("restart_fails") or []),
        )
