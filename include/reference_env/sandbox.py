"""The sandbox: environments, their service instances (real processes), releases, configs and notifications.

All state lives here, in memory, shared by the API and the gateway (same process, same event loop),
and is saved to ``<state_dir>/state.json`` after every change. Every method runs on the event loop;
blocking process work (spawn, stop) runs in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import signal
import subprocess
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from baseline_guard.environment_contract import (
    AppliedTestConfig,
    CatalogVersion,
    ConfigDigest,
    Database,
    Environment,
    EnvironmentKind,
    Health,
    HealthReport,
    Instance,
    InstanceState,
    Operation,
    OperationState,
    ProjectEnvironmentCreate,
    Release,
    ReleaseCreate,
    Service,
    TestConfig,
)

from reference_env import processes
from reference_env.lightweight import LightweightInstance
from reference_env.state import StateError, StateFile
from reference_env.topology import BASELINE, PRODUCTION, Topology

log = logging.getLogger("reference_env.sandbox")

MAX_NOTIFICATIONS = 1000
PROBE_TIMEOUT_S = 2.0


class SandboxError(Exception):
    """A refused request; ``status`` is the HTTP status the API answers with, the message its detail."""

    status = 400


class NotFound(SandboxError):
    status = 404


class Forbidden(SandboxError):
    status = 403


class Conflict(SandboxError):
    status = 409


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def config_digest(values: dict[str, str]) -> str:
    """sha256 of the canonical JSON of the values (sorted keys, no spaces)."""
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


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

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

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
    name: str
    kind: EnvironmentKind
    routing_key: str | None
    services: dict[str, list[InstanceRuntime]]
    owners_notify_url: str | None = None
    applied_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    restart_fails: set[str] = field(default_factory=set)

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
        self.store = StateFile(state_dir)
        self.logs_dir = Path(state_dir) / "logs"
        self.topology = topology
        self.gateway_url = gateway_url.rstrip("/")
        self.spawn_timeout_s = spawn_timeout_s
        self.lightweight = lightweight
        self.catalog: dict[tuple[str, str], CatalogVersion] = {(c.service, c.version): c for c in catalog}
        self.catalog_additions: list[CatalogVersion] = []
        self.environments: dict[str, EnvironmentRuntime] = {}
        self.releases: list[Release] = []
        self.test_configs: dict[str, TestConfig] = {}
        self.prod_config: dict[str, dict[str, str]] = {}
        self.notifications: list[dict[str, Any]] = []
        self.operations: dict[str, Operation] = {}
        self.ready = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._round_robin: dict[tuple[str, str], int] = {}
        self._signing_key = self.store.signing_key()
        self._probe_client: httpx.AsyncClient | None = None

    # --- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the saved state (or seed a fresh one from the topology) and start every instance."""
        saved = self.store.load()
        if saved is None:
            self._seed()
            log.info("seeded a fresh sandbox from the topology in %s", self.store.state_dir)
        else:
            self._load(saved)
            log.info("loaded sandbox state from %s", self.store.path)
        self._save()
        self._probe_client = httpx.AsyncClient(timeout=PROBE_TIMEOUT_S)
        everything = [inst for env in self.environments.values() for inst in env.instances()]
        results = await asyncio.gather(
            *(self._start_instance(inst) for inst in everything), return_exceptions=True
        )
        for result in results:  # a failed instance shows as failed; anything else is a bug
            if isinstance(result, BaseException) and not isinstance(result, processes.SpawnError):
                raise result
        self.ready = True

    async def shutdown(self) -> None:
        """Stop every instance process (the state file keeps what they ran)."""
        self.ready = False
        for task in list(self._tasks):
            task.cancel()
        everything = [inst for env in self.environments.values() for inst in env.instances()]
        await asyncio.gather(*(self._stop_instance(inst) for inst in everything))
        if self._probe_client is not None:
            await self._probe_client.aclose()
        log.info("sandbox stopped: %d instance processes ended", len(everything))

    def _seed(self) -> None:
        now = utcnow()
        count = self.topology.instances[BASELINE]
        self.environments[BASELINE] = EnvironmentRuntime(
            name=BASELINE,
            kind=EnvironmentKind.BASELINE,
            routing_key=None,
            services={
                spec.name: [
                    InstanceRuntime(
                        environment=BASELINE, service=spec.name, index=i, version=spec.baseline_version
                    )
                    for i in range(1, count + 1)
                ]
                for spec in self.topology.services
            },
        )
        for spec in self.topology.services:
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

    def _load(self, saved: dict[str, Any]) -> None:
        self.environments = {
            name: EnvironmentRuntime.from_state(name, data) for name, data in saved["environments"].items()
        }
        self.releases = [Release.model_validate(r) for r in saved["releases"]]
        self.test_configs = {ref: TestConfig.model_validate(t) for ref, t in saved["test_configs"].items()}
        self.prod_config = dict(saved["prod_config"])
        self.catalog_additions = [
            CatalogVersion.model_validate(c) for c in saved.get("catalog_additions", [])
        ]
        for entry in self.catalog_additions:
            self.catalog.setdefault((entry.service, entry.version), entry)
        self.notifications = list(saved.get("notifications", []))
        for env in self.environments.values():
            for inst in env.instances():
                if (inst.service, inst.version) not in self.catalog:
                    raise StateError(
                        f"{self.store.path}: instance {inst.label} runs {inst.version}, which the release "
                        f"catalog no longer declares; declare it again in the catalog file"
                    )

    def _save(self) -> None:
        self.store.save(
            {
                "environments": {name: env.to_state() for name, env in self.environments.items()},
                "releases": [r.model_dump(mode="json") for r in self.releases],
                "test_configs": {ref: t.model_dump(mode="json") for ref, t in self.test_configs.items()},
                "prod_config": self.prod_config,
                "catalog_additions": [c.model_dump(mode="json") for c in self.catalog_additions],
                "notifications": self.notifications,
            }
        )

    # --- processes ---------------------------------------------------------------------------

    def _spec(self, inst: InstanceRuntime, *, fail_start: bool = False) -> processes.ProcessSpec:
        entry = self.catalog[(inst.service, inst.version)]
        return processes.ProcessSpec(
            service=inst.service,
            environment=inst.environment,
            instance=inst.index,
            version=inst.version,
            behaviour=entry.behaviour.value,
            start_delay_s=entry.start_delay_s,
            latency_ms=entry.latency_ms,
            gateway_url=self.gateway_url,
            log_path=self.logs_dir / f"{inst.environment}__{inst.service}__{inst.index}.log",
            fail_start=fail_start,
        )

    async def _start_instance(self, inst: InstanceRuntime, *, fail_start: bool = False) -> str:
        """Spawn the instance's process at its recorded version; return a one-line outcome."""
        inst.state = InstanceState.DEPLOYING
        spec = self._spec(inst, fail_start=fail_start)
        try:
            if self.lightweight:
                process: subprocess.Popen[bytes] | LightweightInstance = LightweightInstance(spec)
                port = await process.start()
            else:
                process = processes.launch(spec, self._signing_key)
                port = await asyncio.to_thread(
                    processes.wait_for_port, process, spec.log_path, self.spawn_timeout_s
                )
        except (processes.SpawnError, OSError) as exc:
            inst.state = InstanceState.FAILED
            log.error("instance %s failed to start version %s: %s", inst.label, inst.version, exc)
            raise processes.SpawnError(
                f"instance {inst.label} did not start version {inst.version}: {exc}"
            ) from exc
        if inst.environment not in self.environments:  # deleted while starting
            await asyncio.to_thread(processes.stop, process)
            inst.state = InstanceState.STOPPED
            return f"instance {inst.label} stopped: its environment was deleted"
        inst.process, inst.port, inst.state = process, port, InstanceState.RUNNING
        log.info("instance %s started version=%s pid=%d port=%d", inst.label, inst.version, process.pid, port)
        return f"instance {inst.label} runs version {inst.version}"

    async def _stop_instance(self, inst: InstanceRuntime) -> None:
        process, inst.process, inst.port = inst.process, None, None
        inst.state = InstanceState.STOPPED
        if process is not None:
            await asyncio.to_thread(processes.stop, process)
            log.info("instance %s stopped (pid %d)", inst.label, process.pid)

    # --- lookups -----------------------------------------------------------------------------

    def _known_environments(self) -> list[str]:
        return [PRODUCTION, *self.environments]

    def _check_environment(self, env: str) -> None:
        if env != PRODUCTION and env not in self.environments:
            raise NotFound(f"environment {env!r} not found; known environments: {self._known_environments()}")

    def _check_service(self, service: str) -> None:
        if self.topology.service(service) is None:
            raise NotFound(f"service {service!r} not found; known services: {self.topology.service_names}")

    def _require_writable(self, env: str) -> EnvironmentRuntime:
        if env == PRODUCTION:
            raise Forbidden("environment 'production' is read-only")
        self._check_environment(env)
        return self.environments[env]

    def _env_services(self, env: str) -> list[str]:
        self._check_environment(env)
        if env == PRODUCTION:
            return self.topology.service_names
        return list(self.environments[env].services)

    def _check_env_service(self, env: str, service: str) -> None:
        self._check_service(service)
        if service not in self._env_services(env):
            raise NotFound(
                f"service {service!r} not found in environment {env!r}; it runs {self._env_services(env)}"
            )

    def _instance(self, env: str, service: str, index: int) -> InstanceRuntime:
        environment = self._require_writable(env)
        self._check_env_service(env, service)
        group = environment.services[service]
        found = next((i for i in group if i.index == index), None)
        if found is None:
            raise NotFound(
                f"instance {index} of {service!r} not found in {env!r}; instances are {[i.index for i in group]}"
            )
        return found

    def _declared(self, service: str, version: str) -> CatalogVersion:
        entry = self.catalog.get((service, version))
        if entry is None:
            declared = sorted(v for s, v in self.catalog if s == service)
            raise Conflict(
                f"version {version!r} of service {service!r} is not declared in the release catalog; "
                f"declared versions: {declared}"
            )
        return entry

    # --- environments ------------------------------------------------------------------------

    def environment(self, env: str) -> Environment:
        self._check_environment(env)
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

    def list_environments(self) -> list[Environment]:
        return [self.environment(name) for name in self._known_environments()]

    async def create_project(self, request: ProjectEnvironmentCreate) -> Environment:
        if request.name == PRODUCTION or request.name in self.environments:
            raise Conflict(f"environment {request.name!r} already exists")
        if not request.services:
            raise SandboxError(
                "'services' must name at least one service with its version, e.g. {'quote': '1.2.0'}"
            )
        for service, version in request.services.items():
            self._check_service(service)
            self._declared(service, version)
        runtime = EnvironmentRuntime(
            name=request.name,
            kind=EnvironmentKind.PROJECT,
            routing_key=request.name,
            owners_notify_url=request.owners_notify_url,
            services={
                svc: [
                    InstanceRuntime(environment=request.name, service=svc, index=i, version=version)
                    for i in range(1, request.instances + 1)
                ]
                for svc, version in request.services.items()
            },
        )
        self.environments[request.name] = runtime
        self._save()
        log.info("project environment %s created with %s", request.name, request.services)
        results = await asyncio.gather(
            *(self._start_instance(inst) for inst in runtime.instances()), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, processes.SpawnError):
                raise result
        return self.environment(request.name)

    async def delete_project(self, env: str) -> None:
        if env == PRODUCTION:
            raise Forbidden("environment 'production' is read-only")
        self._check_environment(env)
        runtime = self.environments[env]
        if runtime.kind is not EnvironmentKind.PROJECT:
            raise Forbidden(
                f"environment {env!r} is of kind {runtime.kind.value}: only project environments can be deleted"
            )
        del self.environments[env]
        self._save()
        await asyncio.gather(*(self._stop_instance(inst) for inst in runtime.instances()))
        log.info("project environment %s deleted", env)

    # --- services and instances --------------------------------------------------------------

    def _production_instances(self, service: str) -> list[Instance]:
        history = self._releases_of(service)
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
            for i in range(1, self.topology.instances[PRODUCTION] + 1)
        ]

    async def probe(self, inst: InstanceRuntime) -> HealthReport:
        """Ask the instance's ``/health`` now."""
        inst.refresh()
        if inst.state is InstanceState.DEPLOYING:
            return HealthReport(
                health=Health.STARTING, version=inst.version, detail="an operation is replacing the process"
            )
        if inst.state is not InstanceState.RUNNING or inst.url is None:
            return HealthReport(
                health=Health.UNHEALTHY, version=inst.version, detail=f"instance is {inst.state.value}"
            )
        if isinstance(inst.process, LightweightInstance):  # in this process: asked without HTTP
            status, body = inst.process.health()
            return self._health_report(inst, status, body)
        assert self._probe_client is not None
        try:
            response = await self._probe_client.get(f"{inst.url}/health")
        except httpx.HTTPError as exc:
            inst.refresh()
            return HealthReport(
                health=Health.UNHEALTHY, version=inst.version, detail=f"no answer: {type(exc).__name__}"
            )
        try:
            body = response.json()
        except ValueError:
            body = {}
        return self._health_report(inst, response.status_code, body)

    @staticmethod
    def _health_report(inst: InstanceRuntime, status_code: int, body: Any) -> HealthReport:
        """What an instance's ``/health`` answer means."""
        status = body.get("status") if isinstance(body, dict) else None
        version = body.get("version", inst.version) if isinstance(body, dict) else inst.version
        if status_code == 200:
            return HealthReport(health=Health.HEALTHY, version=version, detail="ok")
        if status_code == 503 and status == "starting":
            return HealthReport(health=Health.STARTING, version=version, detail="starting")
        return HealthReport(
            health=Health.UNHEALTHY,
            version=version,
            detail=f"/health answered {status_code} {status or ''}".strip(),
        )

    async def _instance_view(self, inst: InstanceRuntime) -> Instance:
        report = await self.probe(inst)
        return Instance(
            index=inst.index,
            version=inst.version,
            previous_version=inst.previous_version,
            state=inst.state,
            health=report.health,
            in_rotation=inst.in_rotation,
            in_flight=inst.in_flight,
            url=inst.url,
        )

    async def service(self, env: str, service: str) -> Service:
        self._check_env_service(env, service)
        module = self.topology.service(service).module  # type: ignore[union-attr]
        if env == PRODUCTION:
            instances = self._production_instances(service)
        else:
            group = self.environments[env].services[service]
            instances = list(await asyncio.gather(*(self._instance_view(i) for i in group)))
        return Service(name=service, environment=env, module=module, instances=instances)

    async def services(self, env: str) -> list[Service]:
        return list(await asyncio.gather(*(self.service(env, svc) for svc in self._env_services(env))))

    async def instance_health(self, env: str, service: str, index: int) -> HealthReport:
        if env == PRODUCTION:
            self._check_env_service(env, service)
            instances = self._production_instances(service)
            if not any(i.index == index for i in instances):
                raise NotFound(f"instance {index} of {service!r} not found in 'production'")
            return HealthReport(
                health=Health.HEALTHY, version=instances[0].version, detail="production (record only)"
            )
        return await self.probe(self._instance(env, service, index))

    # --- operations --------------------------------------------------------------------------

    def deploy(self, env: str, service: str, index: int, version: str) -> Operation:
        inst = self._instance(env, service, index)
        self._declared(service, version)
        return self._begin(inst, "deploy", version, fail_start=False)

    def restart(self, env: str, service: str, index: int) -> Operation:
        inst = self._instance(env, service, index)
        fail = service in self.environments[env].restart_fails
        return self._begin(inst, "restart", inst.version, fail_start=fail)

    def operation(self, op_id: str) -> Operation:
        found = self.operations.get(op_id)
        if found is None:
            raise NotFound(f"operation {op_id!r} not found")
        return found

    def _begin(self, inst: InstanceRuntime, kind: str, version: str, *, fail_start: bool) -> Operation:
        if inst.operation_id is not None:
            raise Conflict(
                f"instance {inst.label} is busy with operation {inst.operation_id}; poll it and retry"
            )
        op = Operation(
            id=uuid.uuid4().hex,
            kind=kind,
            environment=inst.environment,
            service=inst.service,
            instance=inst.index,
            target_version=version,
            state=OperationState.PENDING,
            started_at=utcnow(),
        )
        self.operations[op.id] = op
        inst.operation_id = op.id
        task = asyncio.get_running_loop().create_task(self._replace_process(op, inst, version, fail_start))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        log.info("operation %s: %s %s to %s", op.id, kind, inst.label, version)
        return op

    async def _replace_process(
        self, op: Operation, inst: InstanceRuntime, version: str, fail_start: bool
    ) -> None:
        op.state = OperationState.RUNNING
        try:
            await self._stop_instance(inst)
            if version != inst.version:
                inst.previous_version, inst.version = inst.version, version
            self._save()
            op.message = await self._start_instance(inst, fail_start=fail_start)
            op.state = OperationState.SUCCEEDED
        except processes.SpawnError as exc:
            op.state, op.message = OperationState.FAILED, str(exc)
        except Exception as exc:  # the operation must end either way
            log.exception("operation %s crashed", op.id)
            inst.state = InstanceState.FAILED
            op.state, op.message = (
                OperationState.FAILED,
                f"{op.kind} of {inst.label} failed: {type(exc).__name__}: {exc}",
            )
        finally:
            op.finished_at = utcnow()
            inst.operation_id = None
            self._save()
            log.info("operation %s %s: %s", op.id, op.state.value, op.message)

    async def set_rotation(self, env: str, service: str, index: int, in_rotation: bool) -> Instance:
        inst = self._instance(env, service, index)
        if not in_rotation and inst.in_rotation:
            others = [i for i in self.environments[env].services[service] if i is not inst and i.in_rotation]
            if not others:
                raise Conflict(
                    f"refusing to take {inst.label} out of rotation: it is the last instance of {service!r} "
                    f"in rotation in {env!r} (the link would be cut); put another one back first"
                )
        if inst.in_rotation != in_rotation:
            inst.in_rotation = in_rotation
            self._save()
            log.info("instance %s %s rotation", inst.label, "back in" if in_rotation else "out of")
        return await self._instance_view(inst)

    # --- sandbox-only controls ---------------------------------------------------------------

    async def kill(self, env: str, service: str, index: int) -> dict[str, Any]:
        inst = self._instance(env, service, index)
        process = inst.process
        if process is None or process.poll() is not None:
            raise Conflict(f"instance {inst.label} has no running process to kill (state {inst.state.value})")
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.wait, 5)
        log.warning("instance %s killed on request (pid %d)", inst.label, process.pid)
        return {
            "environment": env,
            "service": service,
            "instance": index,
            "pid": process.pid,
            "signal": "SIGKILL",
        }

    def set_restart_fails(self, env: str, service: str, fails: bool) -> dict[str, Any]:
        runtime = self._require_writable(env)
        self._check_env_service(env, service)
        if fails:
            runtime.restart_fails.add(service)
        else:
            runtime.restart_fails.discard(service)
        self._save()
        log.info("restarts of %s/%s now %s", env, service, "fail" if fails else "work")
        return {"environment": env, "service": service, "fails": fails}

    # --- releases, test configs, production config -------------------------------------------

    def _releases_of(self, service: str) -> list[Release]:
        ordered = sorted(enumerate(self.releases), key=lambda pair: (pair[1].released_at, pair[0]))
        return [r for _, r in ordered if r.service == service]

    def list_releases(self, service: str | None, until: datetime | None) -> list[Release]:
        if service is not None:
            self._check_service(service)
        ordered = sorted(enumerate(self.releases), key=lambda pair: (pair[1].released_at, pair[0]))
        return [
            r
            for _, r in ordered
            if (service is None or r.service == service) and (until is None or r.released_at <= as_utc(until))
        ]

    def record_release(self, request: ReleaseCreate) -> Release:
        self._check_service(request.service)
        self._declared(request.service, request.version)
        released_at = as_utc(request.released_at) if request.released_at else utcnow()
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
        self._save()
        log.info("production release recorded: %s %s (test config %s)", request.service, request.version, ref)
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

    def applied_test_config(self, env: str, service: str) -> AppliedTestConfig:
        self._check_env_service(env, service)
        if env == PRODUCTION:
            return AppliedTestConfig(environment=env, service=service, ref=None, values={})
        applied = self.environments[env].applied_configs.get(service) or {}
        return AppliedTestConfig(
            environment=env,
            service=service,
            ref=applied.get("ref"),
            values=applied.get("values", {}),
            applied_at=applied.get("applied_at"),
        )

    def apply_test_config(
        self, env: str, service: str, ref: str, values: dict[str, str]
    ) -> AppliedTestConfig:
        runtime = self._require_writable(env)
        self._check_env_service(env, service)
        runtime.applied_configs[service] = {"ref": ref, "values": values, "applied_at": utcnow().isoformat()}
        self._save()
        log.info("test config %s applied to %s/%s", ref, env, service)
        return self.applied_test_config(env, service)

    def production_config_digest(self, service: str) -> ConfigDigest:
        self._check_service(service)
        entry = self.prod_config[service]
        return ConfigDigest(
            service=service, digest=entry["digest"], changed_at=datetime.fromisoformat(entry["changed_at"])
        )

    def databases(self, env: str) -> list[Database]:
        self._check_environment(env)
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

    # --- catalog -----------------------------------------------------------------------------

    def list_catalog(self) -> list[CatalogVersion]:
        return list(self.catalog.values())

    def declare(self, entry: CatalogVersion) -> CatalogVersion:
        self._check_service(entry.service)
        existing = self.catalog.get((entry.service, entry.version))
        if existing is not None:
            if existing == entry:
                return existing
            raise Conflict(
                f"version {entry.version!r} of {entry.service!r} is already declared with a different behaviour: "
                f"{existing.model_dump(mode='json')}"
            )
        self.catalog[(entry.service, entry.version)] = entry
        self.catalog_additions.append(entry)
        self._save()
        log.info("catalog: declared %s %s (%s)", entry.service, entry.version, entry.behaviour.value)
        return entry

    # --- notifications -----------------------------------------------------------------------

    def receive_notification(self, channel: str, body: Any) -> dict[str, Any]:
        record = {
            "id": uuid.uuid4().hex,
            "channel": channel,
            "received_at": utcnow().isoformat(),
            "body": body,
        }
        self.notifications.append(record)
        del self.notifications[:-MAX_NOTIFICATIONS]
        self._save()
        log.info("notification received on channel %s", channel)
        return record

    def list_notifications(self, channel: str | None) -> list[dict[str, Any]]:
        return [n for n in self.notifications if channel is None or n["channel"] == channel]

    def clear_notifications(self) -> int:
        count = len(self.notifications)
        self.notifications.clear()
        self._save()
        return count

    # --- gateway routing ---------------------------------------------------------------------

    def pick_instance(self, service: str, route_key: str | None) -> InstanceRuntime | None:
        """The next in-rotation instance for a request: the project environment's if the key names one
        that runs the service, else the baseline's (soft routing); round robin within the chosen group."""
        if route_key:
            project = self.environments.get(route_key)
            if (
                project is not None
                and project.kind is EnvironmentKind.PROJECT
                and service in project.services
            ):
                chosen = self._next_routable(project.name, project.services[service])
                if chosen is not None:
                    return chosen
        baseline = self.environments.get(BASELINE)
        if baseline is None or service not in baseline.services:
            return None
        return self._next_routable(BASELINE, baseline.services[service])

    def _next_routable(self, env: str, group: list[InstanceRuntime]) -> InstanceRuntime | None:
        candidates = [i for i in group if i.routable()]
        if not candidates:
            return None
        key = (env, group[0].service)
        turn = self._round_robin.get(key, 0)
        self._round_robin[key] = turn + 1
        return candidates[turn % len(candidates)]
