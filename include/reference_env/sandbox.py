"""The sandbox: environments, their service instances (real processes), releases, configs and notifications.

:class:`Sandbox` is the facade the API and the gateway share (same process, same event loop). Behind it:
the :class:`Store` (the records, saved to ``<state_dir>/state.json`` after every change), the
:class:`Supervisor` (instance processes), :class:`Operations` (deploys and restarts), the
:class:`NotificationSink` and the :class:`Router` (the gateway's soft routing). Every method runs on
the event loop; blocking process work (spawn, stop) runs in worker threads.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from baseline_guard.environment_contract import (
    AppliedTestConfig,
    CatalogVersion,
    ConfigDigest,
    Database,
    Environment,
    Health,
    HealthReport,
    Instance,
    Operation,
    ProjectEnvironmentCreate,
    Release,
    ReleaseCreate,
    Service,
    TestConfig,
)

from reference_env.errors import NotFound
from reference_env.operations import Operations
from reference_env.router import Router
from reference_env.runtime import InstanceRuntime, as_utc, utcnow
from reference_env.sink import NotificationSink
from reference_env.state import StateFile
from reference_env.store import Store
from reference_env.supervisor import Supervisor
from reference_env.topology import PRODUCTION, Topology

log = logging.getLogger(__name__)


class Sandbox:
    """The environment manager behind the reference API and the gateway.

    :param state_dir: where ``state.json``, the signing key and the instance logs live
    :param topology: services, databases and initial versions
    :param catalog: the declared versions from ``catalog.yaml`` (run-time additions are persisted)
    :param gateway_url: the gateway the service processes call downstream services through
    :param spawn_timeout_s: how long a new process may take to announce its port
    :param lightweight: serve instances from this process (``reference_env.lightweight``), not as
        processes: for production-size topologies in the benchmarks
    """

    def __init__(
        self,
        state_dir: Path,
        topology: Topology,
        catalog: list[CatalogVersion],
        gateway_url: str,
        *,
        spawn_timeout_s: float = 10.0,
        lightweight: bool = False,
    ) -> None:
        state_file = StateFile(state_dir)
        self.topology = topology
        self.store = Store(state_file, topology, catalog)
        self.supervisor = Supervisor(
            self.store,
            Path(state_dir) / "logs",
            gateway_url.rstrip("/"),
            state_file.signing_key(),
            spawn_timeout_s=spawn_timeout_s,
            lightweight=lightweight,
        )
        self.operations = Operations(self.store, self.supervisor)
        self.sink = NotificationSink(self.store)
        self.router = Router(self.store)
        self.ready = False

    # --- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the saved state (or seed a fresh one from the topology) and start every instance."""
        self.store.open()
        self.supervisor.open()
        await self.supervisor.start_all(self.store.all_instances())
        self.ready = True

    async def shutdown(self) -> None:
        """Stop every instance process (the state file keeps what they ran)."""
        self.ready = False
        self.operations.cancel_all()
        everything = self.store.all_instances()
        await self.supervisor.stop_all(everything)
        await self.supervisor.close()
        log.info("sandbox stopped: %d instance processes ended", len(everything))

    # --- environments ------------------------------------------------------------------------

    def environment(self, env: str) -> Environment:
        return self.store.environment(env)

    def list_environments(self) -> list[Environment]:
        return [self.store.environment(name) for name in self.store.known_environments()]

    async def create_project(self, request: ProjectEnvironmentCreate) -> Environment:
        runtime = self.store.add_project(request)
        await self.supervisor.start_all(runtime.instances())
        return self.store.environment(request.name)

    async def delete_project(self, env: str) -> None:
        runtime = self.store.remove_project(env)
        await self.supervisor.stop_all(runtime.instances())
        log.info("project environment %s deleted", env)

    def databases(self, env: str) -> list[Database]:
        return self.store.databases(env)

    # --- services and instances --------------------------------------------------------------

    def _production_instances(self, service: str) -> list[Instance]:
        return self.store.releases.production_instances(service, self.topology.instances[PRODUCTION])

    async def service(self, env: str, service: str) -> Service:
        self.store.check_env_service(env, service)
        spec = self.topology.service(service)
        assert spec is not None  # check_env_service found it
        module = spec.module
        if env == PRODUCTION:
            instances = self._production_instances(service)
        else:
            group = self.store.environments[env].services[service]
            instances = list(await asyncio.gather(*(self.supervisor.view(i) for i in group)))
        return Service(name=service, environment=env, module=module, instances=instances)

    async def services(self, env: str) -> list[Service]:
        return list(await asyncio.gather(*(self.service(env, svc) for svc in self.store.env_services(env))))

    async def instance_health(self, env: str, service: str, index: int) -> HealthReport:
        if env == PRODUCTION:
            self.store.check_env_service(env, service)
            instances = self._production_instances(service)
            if not any(i.index == index for i in instances):
                raise NotFound(f"instance {index} of {service!r} not found in 'production'")
            return HealthReport(
                health=Health.HEALTHY, version=instances[0].version, detail="production (record only)"
            )
        return await self.supervisor.probe(self.store.instance(env, service, index))

    async def set_rotation(self, env: str, service: str, index: int, in_rotation: bool) -> Instance:
        inst = self.store.instance(env, service, index)
        self.store.set_rotation(inst, in_rotation)
        return await self.supervisor.view(inst)

    # --- operations --------------------------------------------------------------------------

    def deploy(self, env: str, service: str, index: int, version: str) -> Operation:
        inst = self.store.instance(env, service, index)
        self.store.catalog.declared(service, version)
        return self.operations.begin(inst, "deploy", version, fail_start=False)

    def restart(self, env: str, service: str, index: int) -> Operation:
        inst = self.store.instance(env, service, index)
        fail = service in self.store.environments[env].restart_fails
        return self.operations.begin(inst, "restart", inst.version, fail_start=fail)

    def operation(self, op_id: str) -> Operation:
        return self.operations.get(op_id)

    def list_operations(self, kind: str | None) -> list[Operation]:
        return self.operations.of_kind(kind)

    # --- sandbox-only controls ---------------------------------------------------------------

    async def kill(self, env: str, service: str, index: int) -> dict[str, Any]:
        pid = await self.supervisor.kill(self.store.instance(env, service, index))
        return {"environment": env, "service": service, "instance": index, "pid": pid, "signal": "SIGKILL"}

    def set_restart_fails(self, env: str, service: str, fails: bool) -> dict[str, Any]:
        self.store.set_restart_fails(env, service, fails)
        return {"environment": env, "service": service, "fails": fails}

    # --- releases, test configs, production config -------------------------------------------

    def list_releases(self, service: str | None, until: datetime | None) -> list[Release]:
        if service is not None:
            self.store.check_service(service)
        return self.store.releases.history(service, until)

    def record_release(self, request: ReleaseCreate) -> Release:
        self.store.check_service(request.service)
        self.store.catalog.declared(request.service, request.version)
        released_at = as_utc(request.released_at) if request.released_at else utcnow()
        release = self.store.releases.record(request, released_at)
        self.store.save()
        log.info(
            "production release recorded: %s %s (test config %s)",
            request.service,
            request.version,
            release.test_config_ref,
        )
        return release

    def test_config(self, ref: str) -> TestConfig:
        return self.store.releases.test_config(ref)

    def applied_test_config(self, env: str, service: str) -> AppliedTestConfig:
        return self.store.applied_test_config(env, service)

    def apply_test_config(
        self, env: str, service: str, ref: str, values: dict[str, str]
    ) -> AppliedTestConfig:
        return self.store.apply_test_config(env, service, ref, values)

    def production_config_digest(self, service: str) -> ConfigDigest:
        self.store.check_service(service)
        return self.store.releases.production_config_digest(service)

    # --- catalog -----------------------------------------------------------------------------

    def list_catalog(self) -> list[CatalogVersion]:
        return list(self.store.catalog.entries.values())

    def declare(self, entry: CatalogVersion) -> CatalogVersion:
        return self.store.declare(entry)

    # --- notifications -----------------------------------------------------------------------

    def receive_notification(self, channel: str, body: Any) -> dict[str, Any]:
        return self.sink.receive(channel, body)

    def list_notifications(self, channel: str | None) -> list[dict[str, Any]]:
        return self.sink.received(channel)

    def clear_notifications(self) -> int:
        return self.sink.clear()

    # --- gateway routing ---------------------------------------------------------------------

    def pick_instance(self, service: str, route_key: str | None) -> InstanceRuntime | None:
        return self.router.pick_instance(service, route_key)
