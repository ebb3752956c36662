"""Start and stop one service instance process (blocking helpers; the supervisor runs them in worker threads)."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from reference_env.procutil import die_with_parent
from reference_env.service import KEY_ENV

# Never handed to a service process: the API's bearer token.
_WITHHELD_ENV = ("REFENV_TOKEN",)


class SpawnError(RuntimeError):
    """A service process exited or did not announce its port in time; the message has its log tail."""


@dataclass(frozen=True)
class ProcessSpec:
    service: str
    environment: str
    instance: int
    version: str
    behaviour: str
    start_delay_s: float
    latency_ms: int
    gateway_url: str
    log_path: Path
    fail_start: bool = False

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "reference_env.service",
            "--service",
            self.service,
            "--environment",
            self.environment,
            "--instance",
            str(self.instance),
            "--version",
            self.version,
            "--behaviour",
            self.behaviour,
            "--start-delay-s",
            str(self.start_delay_s),
            "--latency-ms",
            str(self.latency_ms),
            "--gateway-url",
            self.gateway_url,
        ]
        if self.fail_start:
            cmd.append("--fail-start")
        return cmd


def _child_env(signing_key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _WITHHELD_ENV}
    env[KEY_ENV] = signing_key
    return env


def _die_with_supervisor() -> None:
    die_with_parent(signal.SIGKILL)


def log_tail(path: Path, lines: int = 8) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:]) or "(empty log)"
    except FileNotFoundError:
        return "(no log)"


def launch(spec: ProcessSpec, signing_key: str) -> subprocess.Popen[bytes]:
    """Start one instance process; call from the thread that lives as long as the supervisor.

    ``PR_SET_PDEATHSIG`` fires when the *thread* that forked the child ends, so never launch from a
    short-lived worker thread.
    """
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    with spec.log_path.open("ab") as log:
        return subprocess.Popen(
            spec.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            env=_child_env(signing_key),
            preexec_fn=_die_with_supervisor,
            close_fds=True,
        )


def wait_for_port(process: subprocess.Popen[bytes], log_path: Path, timeout_s: float) -> int:
    """Read the ``LISTENING <port>`` line (blocking); stop the process and raise SpawnError if it never comes."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout_s
    line = b""
    try:
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                stop(process)
                raise SpawnError(
                    f"did not announce a port within {timeout_s:.0f}s; log: {log_tail(log_path)}"
                )
            ready, _, _ = select.select([fd], [], [], min(remaining, 0.5))
            if ready:
                chunk = os.read(fd, 256)
                if not chunk:  # EOF: the process is gone
                    code = process.wait(timeout=5)
                    raise SpawnError(f"exited with code {code} before listening; log: {log_tail(log_path)}")
                line += chunk
    finally:
        process.stdout.close()
    words = line.split()
    if len(words) != 2 or words[0] != b"LISTENING" or not words[1].isdigit():
        stop(process)
        raise SpawnError(f"announced {line!r} instead of 'LISTENING <port>'")
    return int(words[1])


class Stoppable(Protocol):
    """What :func:`stop` uses of a process: a ``subprocess.Popen`` or a lightweight instance."""

    def poll(self) -> int | None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int | None: ...


def stop(process: Stoppable | None, grace_s: float = 3.0) -> None:
    """SIGTERM, wait up to ``grace_s``, then SIGKILL; always reaps the process."""
    if process is None:
        return
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(timeout=5)
