"""The instance supervisor: starts, stops and kills instance processes and asks them for their health.

Processes come from :mod:`reference_env.processes` (blocking, run in worker threads) or, in lightweight
mode, are :class:`LightweightInstance` servers on this event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
from baseline_guard.environment_contract import Health, HealthReport, Instance, InstanceState

from reference_env import processes
from reference_env.errors import Conflict
from reference_env.lightweight import LightweightInstance
from reference_env.runtime import InstanceRuntime
from reference_env.store import Store

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 2.0


class Supervisor:
    """Runs each instance of the store's environments as a process at its recorded version.

    :param store: the records (catalog entries give each version's behaviour)
    :param logs_dir: where each instance's log file goes
    :param gateway_url: the gateway the service processes call downstream services through
    :param signing_key: handed to every service process (it signs quote and order ids)
    :param spawn_timeout_s: how long a new process may take to announce its port
    :param lightweight: serve instances from this process, not as processes
    """

    def __init__(
        self,
        store: Store,
        logs_dir: Path,
        gateway_url: str,
        signing_key: str,
        *,
        spawn_timeout_s: float,
        lightweight: bool,
    ) -> None:
        self.store = store
        self.logs_dir = logs_dir
        self.gateway_url = gateway_url
        self.spawn_timeout_s = spawn_timeout_s
        self.lightweight = lightweight
        self._signing_key = signing_key
        self._probe_client: httpx.AsyncClient | None = None

    def open(self) -> None:
        self._probe_client = httpx.AsyncClient(timeout=PROBE_TIMEOUT_S)

    async def close(self) -> None:
        if self._probe_client is not None:
            await self._probe_client.aclose()

    def spec(self, inst: InstanceRuntime, *, fail_start: bool = False) -> processes.ProcessSpec:
        entry = self.store.catalog.entries[(inst.service, inst.version)]
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

    async def start(self, inst: InstanceRuntime, *, fail_start: bool = False) -> str:
        """Spawn the instance's process at its recorded version; return a one-line outcome."""
        inst.state = InstanceState.DEPLOYING
        spec = self.spec(inst, fail_start=fail_start)
        try:
            process: subprocess.Popen[bytes] | LightweightInstance
            if self.lightweight:
                process = instance = LightweightInstance(spec)
                port = await instance.start()
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
        if inst.environment not in self.store.environments:  # deleted while starting
            await asyncio.to_thread(processes.stop, process)
            inst.state = InstanceState.STOPPED
            return f"instance {inst.label} stopped: its environment was deleted"
        inst.process, inst.port, inst.state = process, port, InstanceState.RUNNING
        log.info("instance %s started version=%s pid=%d port=%d", inst.label, inst.version, process.pid, port)
        return f"instance {inst.label} runs version {inst.version}"

    async def start_all(self, instances: list[InstanceRuntime]) -> None:
        """Start the instances side by side; one that fails to start shows as failed, anything else is a bug."""
        results = await asyncio.gather(*(self.start(inst) for inst in instances), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, processes.SpawnError):
                raise result

    async def stop(self, inst: InstanceRuntime) -> None:
        process, inst.process, inst.port = inst.process, None, None
        inst.state = InstanceState.STOPPED
        if process is not None:
            await asyncio.to_thread(processes.stop, process)
            log.info("instance %s stopped (pid %d)", inst.label, process.pid)

    async def stop_all(self, instances: list[InstanceRuntime]) -> None:
        await asyncio.gather(*(self.stop(inst) for inst in instances))

    async def kill(self, inst: InstanceRuntime) -> int:
        """SIGKILL the instance's process (a crash, for patrol tests); return its pid."""
        process = inst.process
        if process is None or process.poll() is not None:
            raise Conflict(f"instance {inst.label} has no running process to kill (state {inst.state.value})")
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.wait, 5)
        log.warning("instance %s killed on request (pid %d)", inst.label, process.pid)
        return process.pid

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
            return _health_report(inst, status, body)
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
        return _health_report(inst, response.status_code, body)

    async def view(self, inst: InstanceRuntime) -> Instance:
        """The instance as the contract shows it, with its health asked now."""
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
