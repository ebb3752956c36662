"""Debian's ``prometheus`` package for the tests: ``promtool`` (rule tests) and the ``prometheus`` server
(the real scrape). scripts/test.sh installs it as it installs chromium; a test run elsewhere finds it on
PATH, and fails saying how to install it when it is missing."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

INSTALL = "apt-get update && apt-get install -y prometheus  (as root; scripts/test.sh does it)"


def binary(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if found is None:
        pytest.fail(f"{name} not found: install Debian's prometheus package: {INSTALL}")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_prometheus(config: Path, storage: Path) -> Iterator[str]:
    """Debian's prometheus on 127.0.0.1 (a free port, ``storage`` for its TSDB), stopped at the end;
    yields its base URL once it answers ``/-/ready``."""
    port = free_port()
    log = storage / "prometheus.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                binary("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={storage / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
