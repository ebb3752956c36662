"""Helpers for the local stack tests: run ``python -m local_stack up`` and watch its processes."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
from local_stack.config import PORT_SETTINGS
from local_stack.ports import free_port
from local_stack.stack import READY_BANNER, postmaster_pid


def free_port_env() -> dict[str, str]:
    """``BG_*_PORT`` variables set to free ports (never the defaults another stack may use)."""
    ports: set[int] = set()
    while len(ports) < len(PORT_SETTINGS):
        ports.add(free_port())
    return {var: str(port) for (_, var, _, _), port in zip(PORT_SETTINGS, sorted(ports), strict=True)}


@dataclass
class StackRun:
    """One ``python -m local_stack up`` subprocess, its output collected line by line."""

    state_dir: Path
    env: dict[str, str]
    args: list[str]
    process: subprocess.Popen[str] | None = None
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def start(self) -> StackRun:
        self.lines.clear()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local_stack", "--state-dir", str(self.state_dir), "up", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
        )
        threading.Thread(target=self._pump, args=(self.process,), daemon=True).start()
        return self

    def _pump(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self, timeout: float) -> None:
        """Wait for the banner; fail with the output when the process ends or time runs out first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail(f"`up` exited ({self.process.wait()}) before it was ready:\n{self.output}")
            self.lines.append(line)
            if READY_BANNER in line:
                self._drain_banner()
                return
        pytest.fail(f"`up` not ready within {timeout:.0f}s:\n{self.output}")

    def _drain_banner(self) -> None:
        while not self.lines[-1].startswith("└"):
            line = self._queue.get(timeout=30)
            assert line is not None, self.output
            self.lines.append(line)

    def drain(self, wait: float = 2.0) -> str:
        """Collect what the stack printed after the banner so far; return the whole output."""
        while True:
            try:
                line = self._queue.get(timeout=wait)
            except queue.Empty:
                return self.output
            if line is None:
                self._queue.put(None)  # for wait_exit
                return self.output
            self.lines.append(line)

    def wait_exit(self, timeout: float = 90) -> int:
        assert self.process is not None
        code = self.process.wait(timeout=timeout)
        while (line := self._queue.get(timeout=10)) is not None:
            self.lines.append(line)
        return code

    def processes(self) -> list[psutil.Process]:
        """The ``up`` process, everything under it, and the PostgreSQL server tree."""
        assert self.process is not None
        roots = [psutil.Process(self.process.pid)]
        if (pm := postmaster_pid(self.state_dir / "pg")) is not None:
            roots.append(psutil.Process(pm))
        return [p for root in roots for p in [root, *root.children(recursive=True)]]

    def signal(self, sig: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, sig)

    def stop(self) -> None:
        """Best-effort teardown for a failed test: SIGTERM, then `down` (cleans what a kill left)."""
        if self.process is not None and self.process.poll() is None:
            self.signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=60)
        subprocess.run(
            [sys.executable, "-m", "local_stack", "--state-dir", str(self.state_dir), "down"],
            env=self.env,
            capture_output=True,
            timeout=120,
            check=False,
        )


def stack_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BG_", "AIRFLOW"))}
    env.update(free_port_env())
    env.update(extra)
    return env


def secrets_of(state_dir: Path) -> dict[str, str]:
    return json.loads((state_dir / "secrets.json").read_text())


def all_gone(procs: list[psutil.Process], timeout: float = 15) -> list[psutil.Process]:
    """The processes of ``procs`` still alive after ``timeout`` seconds."""
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return alive
