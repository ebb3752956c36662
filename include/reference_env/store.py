"""The sandbox's records: environments, the release catalog, production's releases and the notifications.

Everything here is persisted in ``<state_dir>/state.json`` (:class:`StateFile`): ``save`` after every
change; ``open`` loads it, or seeds a fresh sandbox from the topology. The lookups refuse unknown names
with the errors the API answers with.
"""

from __future__ import annotations

import logging
from typing import Any

from baseline_guard.environment_contract import (
    AppliedTestConfig,
    CatalogVersion,
    Database,
    Environment,
    EnvironmentKind,
    ProjectEnvironmentCreate,
)

from reference_env.catalog import Catalog
from reference_env.errors import Conflict, Forbidden, NotFound, SandboxError
from reference_env.releases import ReleaseRecords
from reference_env.runtime import EnvironmentRuntime, InstanceRuntime, utcnow
from reference_env.state import StateError, StateFile
from reference_env.topology import BASELINE, PRODUCTION, Topology

log = logging.getLogger(__name__)


class Store:
    """The records behind the API; every method runs on the event loop.

    :param state_file: where the records are persisted
    :param topology: services, databases and initial versions
    :param catalog: the declared versions from ``catalog.yaml`` (run-time additions are persisted)
    """

    def __init__(self, state_file: StateFile, topology: Topology, catalog: list[CatalogVersion]) -> None:
        self.state_file = state_file
        self.topology = topology
        self.catalog = Catalog(catalog)
        self.environments: dict[str, EnvironmentRuntime] = {}
        self.releases = ReleaseRecords()
        self.notifications: list[dict[str, Any]] = []

    # --- persistence -------------------------------------------------------------------------

    def open(self) -> None:
        """Load the saved records, or seed fresh ones from the topology; then save them."""
        saved = self.state_file.load()
        if saved is None:
            self._seed()
            log.info("seeded a fresh sandbox from the topology in %s", self.state_file.state_dir)
        else:
            self._load(saved)
            log.info("loaded sandbox state from %s", self.state_file.path)
        self.save()

    def _seed(self) -> None:
        now = utcnow()
        baseline = EnvironmentRuntime.create(
            BASELINE,
            EnvironmentKind.BASELINE,
            {spec.name: spec.baseline_version for spec in self.topology.services},
            self.topology.instances[BASELINE],
        )
        for spec in self.topology.services:
            if spec.baseline_test_config is not None:  # the test config it runs; "-local" when edited by hand
                edited = (
                    spec.baseline_version == spec.production_version
                    and spec.baseline_test_config != spec.test_config
                )
                ref = f"{spec.name}@{spec.baseline_version}{'-local' if edited else ''}"
                baseline.applied_configs[spec.name] = {
                    "ref": ref,
                    "values": dict(spec.baseline_test_config),
                    "applied_at": now.isoformat(),
                }
        self.environments[BASELINE] = baseline
        self.releases.seed(self.topology, now)
        for project in self.topology.projects:
            for service, version in project.services.items():
                self.catalog.declared(service, version)  # a version the catalog does not declare: refused
            self.environments[project.name] = EnvironmentRuntime.create(
                project.name,
                EnvironmentKind.PROJECT,
                project.services,
                self.topology.instances[BASELINE],
                owners_notify_url=project.owners_notify_url,
            )

    def _load(self, saved: dict[str, Any]) -> None:
        self.environments = {
            name: EnvironmentRuntime.from_state(name, data) for name, data in saved["environments"].items()
        }
        self.releases.load(saved)
        self.catalog.load(saved)
        self.notifications = list(saved.get("notifications", []))
        for inst in self.all_instances():
            if not self.catalog.declares(inst.service, inst.version):
                raise StateError(
                    f"{self.state_file.path}: instance {inst.label} runs {inst.version}, which the release "
                    f"catalog no longer declares; declare it again in the catalog file"
                )

    def save(self) -> None:
        self.state_file.save(
            {
                "environments": {name: env.to_state() for name, env in self.environments.items()},
                **self.releases.to_state(),
                **self.catalog.to_state(),
                "notifications": self.notifications,
            }
        )

    # --- lookups -----------------------------------------------------------------------------

    def all_instances(self) -> list[InstanceRuntime]:
        return [inst for env in self.environments.values() for inst in env.instances()]

    def known_environments(self) -> list[str]:
        return [PRODUCTION, *self.environments]

    def check_environment(self, env: str) -> None:
        if env != PRODUCTION and env not in self.environments:
            raise NotFound(f"environment {env!r} not found; known environments: {self.known_environments()}")

    def check_service(self, service: str) -> None:
        if self.topology.service(service) is None:
            raise NotFound(f"service {service!r} not found; known services: {self.topology.service_names}")

    def writable(self, env: str) -> EnvironmentRuntime:
        """The environment's record; production is refused (403)."""
        if env == PRODUCTION:
            raise Forbidden("environment 'production' is read-only")
        self.check_environment(env)
        return self.environments[env]

    def env_services(self, env: str) -> list[str]:
        self.check_environment(env)
        if env == PRODUCTION:
            return self.topology.service_names
        return list(self.environments[env].services)

    def check_env_service(self, env: str, service: str) -> None:
        self.check_service(service)
        if service not in self.env_services(env):
            raise NotFound(
                f"service {service!r} not found in environment {env!r}; it runs {self.env_services(env)}"
            )

    def instance(self, env: str, service: str, index: int) -> InstanceRuntime:
        environment = self.writable(env)
        self.check_env_service(env, service)
        group = environment.services[service]
        found = next((i for i in group if i.index == index), None)
        if found is None:
            raise NotFound(
                f"instance {index} of {service!r} not found in {env!r}; instances are {[i.index for i in group]}"
            )
        return found

    # --- environments ------------------------------------------------------------------------

    def environment(self, env: str) -> Environment:
        self.check_environment(env)
        if env == PRODUCTION:
            return Environment(
                name=PRODUCTION, kind=EnvironmentKind.PRODUCTION, services=self.topology.service_names
            )
        runtime = self.environments[env]
        return Environment(
            name=runtime.name,
            kind=runtime.kind,
            routing_key=runtime.routing_key,
            services=list(runtime.services),
            owners_notify_url=runtime.owners_notify_url,
        )

    def add_project(self, request: ProjectEnvironmentCreate) -> EnvironmentRuntime:
        """Record a new project environment (its instances not started yet)."""
        if request.name == PRODUCTION or request.name in self.environments:
            raise Conflict(f"environment {request.name!r} already exists")
        if not request.services:
            raise SandboxError(
                "'services' must name at least one service with its version, e.g. {'quote': '1.2.0'}"
            )
        for service, version in request.services.items():
            self.check_service(service)
            self.catalog.declared(service, version)
        runtime = EnvironmentRuntime.create(
            request.name,
            EnvironmentKind.PROJECT,
            request.services,
            request.instances,
            owners_notify_url=request.owners_notify_url,
        )
        self.environments[request.name] = runtime
        self.save()
        log.info("project environment %s created with %s", request.name, request.services)
        return runtime

    def remove_project(self, env: str) -> EnvironmentRuntime:
        """Forget a project environment; the caller stops its instances."""
        runtime = self.writable(env)
        if runtime.kind is not EnvironmentKind.PROJECT:
            raise Forbidden(
                f"environment {env!r} is of kind {runtime.kind.value}: only project environments can be deleted"
            )
        del self.environments[env]
        self.save()
        return runtime

    def set_rotation(self, inst: InstanceRuntime, in_rotation: bool) -> None:
        """Take the instance out of rotation or put it back; never the last one in rotation out."""
        if not in_rotation and inst.in_rotation:
            group = self.environments[inst.environment].services[inst.service]
            if not any(i is not inst and i.in_rotation for i in group):
                raise Conflict(
                    f"refusing to take {inst.label} out of rotation: it is the last instance of "
                    f"{inst.service!r} in rotation in {inst.environment!r} (the link would be cut); "
                    f"put another one back first"
                )
        if inst.in_rotation != in_rotation:
            inst.in_rotation = in_rotation
            self.save()
            log.info("instance %s %s rotation", inst.label, "back in" if in_rotation else "out of")

    def databases(self, env: str) -> list[Database]:
        kind = self.environment(env).kind
        if kind is EnvironmentKind.PROJECT:
            return []
        prefix = self.topology.db_prefixes[kind.value]
        return [
            Database(
                environment=env,
                service=s.name,
                name=f"{prefix}_{s.database}",
                conn_id=f"pg_{prefix}_{s.database}",
            )
            for s in self.topology.services
        ]

    def applied_test_config(self, env: str, service: str) -> AppliedTestConfig:
        self.check_env_service(env, service)
        if env == PRODUCTION:
            return AppliedTestConfig(environment=env, service=service, ref=None, values={})
        return self.environments[env].applied_test_config(service)

    def apply_test_config(
        self, env: str, service: str, ref: str, values: dict[str, str]
    ) -> AppliedTestConfig:
        runtime = self.writable(env)
        self.check_env_service(env, service)
        runtime.applied_configs[service] = {"ref": ref, "values": values, "applied_at": utcnow().isoformat()}
        self.save()
        log.info("test config %s applied to %s/%s", ref, env, service)
        return self.applied_test_config(env, service)

    def set_restart_fails(self, env: str, service: str, fails: bool) -> None:
        """Make every restart of the service's instances in ``env`` fail (or work again)."""
        runtime = self.writable(env)
        self.check_env_service(env, service)
        if fails:
            runtime.restart_fails.add(service)
        else:
            runtime.restart_fails.discard(service)
        self.save()
        log.info("restarts of %s/%s now %s", env, service, "fail" if fails else "work")

    def declare(self, entry: CatalogVersion) -> CatalogVersion:
        """Add a version to the catalog; declaring the same entry again is a no-op."""
        self.check_service(entry.service)
        if self.catalog.declare(entry):
            self.save()
        return self.catalog.declared(entry.service, entry.version)
