"""Start and stop the reference environment API (plus its gateway and sandbox) as a subprocess.

Used by the tests, the benchmarks and the local stack::

    env = ReferenceEnvironment(state_dir, api_port=free_port(), gateway_port=free_port(), token=tok)
    env.start()
    ...  # env.api_url, env.gateway_url, env.token
    env.stop()

The token reaches the server through its environment (``REFENV_TOKEN``), never its command line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from reference_env.procutil import die_with_parent


class ReferenceEnvironmentError(RuntimeError):
    """The reference environment did not start or stop as expected."""


class ReferenceEnvironment:
    """One reference environment server process (API + gateway + sandbox instances).

    :param state_dir: directory holding the persisted state, instance logs and the server log
    :param api_port: port of the environment API on ``host``
    :param gateway_port: port of the sandbox gateway on ``host``
    :param token: bearer token the API requires on ``/v1/*``
    :param host: interface both servers bind
    :param topology: topology YAML (default: the one shipped with the package)
    :param catalog: release catalog YAML (default: the one shipped with the package)
    :param startup_timeout: seconds to wait for ``GET /health`` to answer 200; default
        ``$REFENV_STARTUP_TIMEOUT_S``, else 30 (raise it on a crowded machine)
    :param lightweight_instances: instances served by the server process itself (``reference_env.lightweight``)
    """

    def __init__(
        self,
        state_dir: Path,
        api_port: int,
        gateway_port: int,
        token: str,
        *,
        host: str = "127.0.0.1",
        topology: Path | None = None,
        catalog: Path | None = None,
        startup_timeout: float | None = None,
        lightweight_instances: bool = False,
    ) -> None:
        if not token:
            raise ValueError("token must be a non-empty string")
        self.state_dir = Path(state_dir)
        self.api_port = api_port
        self.gateway_port = gateway_port
        self.host = host
        self.topology = topology
        self.catalog = catalog
        self.startup_timeout = (
            startup_timeout
            if startup_timeout is not None
            else float(os.environ.get("REFENV_STARTUP_TIMEOUT_S") or 30.0)
        )
        self.lightweight_instances = lightweight_instances
        self._token = token
        self._process: subprocess.Popen[bytes] | None = None
        self._spawned_at = 0.0

    @property
    def token(self) -> str:
        return self._token

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.gateway_port}"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "reference_env.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "reference_env",
            "--state-dir",
            str(self.state_dir),
            "--api-port",
            str(self.api_port),
            "--gateway-port",
            str(self.gateway_port),
            "--host",
            self.host,
        ]
        if self.topology is not None:
            cmd += ["--topology", str(self.topology)]
        if self.catalog is not None:
            cmd += ["--catalog", str(self.catalog)]
        if self.lightweight_instances:
            cmd.append("--lightweight-instances")
        return cmd

    def start(self) -> ReferenceEnvironment:
        """Spawn the server and wait until ``/health`` answers 200; raise with the log tail if not."""
        return self.spawn().wait_until_ready()

    def spawn(self) -> ReferenceEnvironment:
        """Start the server process and return at once (``wait_until_ready`` waits for it).

        Call it from a thread that lives as long as the server should: the server is told to stop
        when the thread that spawned it ends (``PR_SET_PDEATHSIG``), so a killed parent leaves no orphan.
        """
        if self.is_running():
            return self
        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "REFENV_TOKEN": self._token}
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=die_with_parent,
            )
        self._spawned_at = time.monotonic()
        return self

    def wait_until_ready(self) -> ReferenceEnvironment:
        """Wait until the spawned server answers ``/health`` (then warm it up); stop it and raise if not."""
        if self._process is None:
            raise ReferenceEnvironmentError("the reference environment was not spawned")
        deadline = self._spawned_at + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise ReferenceEnvironmentError(
                    f"reference environment exited with code {code} before answering /health; "
                    f"log tail:\n{self.log_tail()}"
                )
            if self._health_ok():
                self._warm_up()
                return self
            time.sleep(0.05)
        self.stop()
        raise ReferenceEnvironmentError(
            f"reference environment did not answer 200 on {self.api_url}/health within "
            f"{self.startup_timeout:.0f}s; log tail:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM the server (it stops every instance process), wait, SIGKILL if needed; return its exit code."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        return process.returncode

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _warm_up(self, rounds: int = 3) -> None:
        """Send a few requests to every baseline service through the gateway.

        Fresh processes answer their first requests slowly (lazy imports, new connections);
        "started" should mean "serving at normal speed", or the first business checks of a run
        would trip their response-time limits.
        """
        request = urllib.request.Request(
            f"{self.api_url}/v1/environments/baseline", headers={"Authorization": f"Bearer {self._token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                services = json.loads(response.read())["services"]
            for _ in range(rounds):
                for service in services:
                    with urllib.request.urlopen(f"{self.gateway_url}/{service}/health", timeout=5):
                        pass
        except (urllib.error.URLError, OSError, KeyError, ValueError):
            pass  # warming up is best effort; a broken service shows in the checks themselves

    def _health_ok(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def __enter__(self) -> ReferenceEnvironment:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
