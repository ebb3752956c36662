"""Fixtures for the business-check engine tests: real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from business_sandbox import BusinessSandbox
from local_stack.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[4]
SCENARIOS_DIR = REPO_ROOT / "include" / "scenarios"


@pytest.fixture(scope="session")
def business_sandbox_server() -> Iterator[BusinessSandbox]:
    server = BusinessSandbox().start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(business_sandbox_server: BusinessSandbox) -> BusinessSandbox:
    """The sandbox slice, healthy and with no recorded requests at the start of each test."""
    business_sandbox_server.state.reset()
    return business_sandbox_server


class FlakyServer:
    """A raw TCP server that drops the first ``drop`` connections without answering, then answers 200.

    Dropping a connection is a transport error for the client (no HTTP answer at all).
    """

    def __init__(self, drop: int) -> None:
        self.drop = drop
        self.connections = 0
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                self.connections += 1
                if self.connections <= self.drop:
                    continue
                conn.recv(65536)
                body = b'{"ok": true}'
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )

    def close(self) -> None:
        self._sock.close()


@pytest.fixture
def flaky_server() -> Iterator[type[FlakyServer]]:
    servers: list[FlakyServer] = []

    def make(drop: int) -> FlakyServer:
        server = FlakyServer(drop)
        servers.append(server)
        return server

    yield make  # type: ignore[misc]
    for server in servers:
        server.close()


@pytest.fixture
def closed_port_url() -> str:
    """A URL on which nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"
