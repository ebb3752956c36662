"""Lightweight instances: an instance is a small HTTP server on the sandbox's event loop, not a process.

For topologies of production size (hundreds of services, two instances each) on a small machine:
the benchmarks use them to measure what the environment API and its clients do at that scale.
An instance answers ``GET /health`` like a real one (``503 starting`` during its start delay,
``503 failing`` for a ``fails_health`` version, else ``200 ok``) and nothing else. It stands in for
a ``subprocess.Popen`` (``poll``, ``wait``, ``send_signal``, ``terminate``, ``kill``, ``pid``), so the
sandbox manages both kinds alike; a kill closes its server and its state becomes ``failed``. The
sandbox reads a lightweight instance's health by calling it, not over HTTP (like an environment
manager that keeps its instances' health at hand: a listing of 400 instances takes 0.2 s, not 8 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import threading
import time

from reference_env.processes import ProcessSpec, SpawnError


class LightweightInstance:
    """One instance served by the sandbox's own event loop; create and ``start`` it on that loop."""

    def __init__(self, spec: ProcessSpec) -> None:
        self.spec = spec
        self.pid = os.getpid()
        self.returncode: int | None = None
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready_at = 0.0
        self._closed = threading.Event()
        self._loop_thread: threading.Thread | None = None

    async def start(self) -> int:
        """Listen on a free port; return it. A version that fails to start raises SpawnError."""
        if self.spec.fail_start:
            self.returncode = 1
            self._closed.set()
            raise SpawnError("exited with code 1 before listening (lightweight instance set to fail)")
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.current_thread()
        self._ready_at = time.monotonic() + self.spec.start_delay_s
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer requests on one connection (kept alive, as a probing client expects) until it ends."""
        try:
            while self.returncode is None:
                request = await reader.readuntil(b"\r\n\r\n")
                parts = request.split(b" ", 2)
                status, payload = self._answer(parts[1] if len(parts) > 1 else b"")
                body = json.dumps(payload).encode()
                reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
                writer.write(
                    f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    def _answer(self, path: bytes) -> tuple[int, dict[str, str]]:
        if path.split(b"?")[0] != b"/health":
            return 404, {"error": "a lightweight instance answers /health only"}
        return self.health()

    def health(self) -> tuple[int, dict[str, str]]:
        """The status and body of ``GET /health`` (the sandbox asks it directly, without HTTP)."""
        info = {
            "service": self.spec.service,
            "version": self.spec.version,
            "instance": f"{self.spec.environment}/{self.spec.service}/{self.spec.instance}",
        }
        if self.spec.behaviour == "fails_health":
            return 503, {"status": "failing", **info}
        if time.monotonic() < self._ready_at:
            return 503, {"status": "starting", **info}
        return 200, {"status": "ok", **info}

    # --- the subprocess.Popen surface the sandbox uses -------------------------------------------

    def poll(self) -> int | None:
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is not None:
            return
        self.returncode = -int(sig)
        server, loop = self._server, self._loop
        if server is not None and loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closing: the server goes with it
                loop.call_soon_threadsafe(self._close, server)
                return
        self._closed.set()

    def _close(self, server: asyncio.Server) -> None:
        server.close()
        self._closed.set()

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code once killed; blocks up to ``timeout`` for the server to close (never on its loop)."""
        if self.returncode is not None and threading.current_thread() is not self._loop_thread:
            self._closed.wait(timeout)
        return self.returncode
