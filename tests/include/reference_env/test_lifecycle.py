"""Server life cycle: state survives a restart, no instance process outlives the server (own server)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from local_stack.ports import free_port
from refenv_helpers import child_pids, deploy, instance, pid_alive, run_chain, set_rotation
from reference_env.launcher import ReferenceEnvironment, ReferenceEnvironmentError

EXPECTED_INSTANCES = 8  # 4 services x 2 baseline instances


def _client(env: ReferenceEnvironment) -> httpx.Client:
    return httpx.Client(base_url=env.api_url, headers={"Authorization": f"Bearer {env.token}"}, timeout=20)


def _wait_gone(pids: set[int], timeout: float = 10.0) -> set[int]:
    deadline = time.monotonic() + timeout
    alive = {p for p in pids if pid_alive(p)}
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = {p for p in alive if pid_alive(p)}
    return alive


def test_state_survives_a_restart_and_no_process_is_left_behind(tmp_path: Path) -> None:
    env = ReferenceEnvironment(tmp_path / "state", free_port(), free_port(), secrets.token_urlsafe(16))
    env.start()
    try:
        with _client(env) as api:
            set_rotation(api, "baseline", "quote", 2, False).raise_for_status()
            assert deploy(api, "baseline", "quote", 2, "1.3.0")["state"] == "succeeded"
            api.post(
                "/v1/releases", json={"service": "quote", "version": "1.3.0", "test_config": {"k": "v"}}
            ).raise_for_status()
            api.post("/v1/catalog", json={"service": "order", "version": "3.0.0"}).raise_for_status()
            api.put(
                "/v1/environments/baseline/services/order/test-config",
                json={"ref": "r1", "values": {"a": "b"}},
            )
            api.post(
                "/v1/environments", json={"name": "proj-keep", "services": {"order": "1.1.0"}}
            ).raise_for_status()
            httpx.post(f"{env.api_url}/v1/notifications/oncall", json={"title": "t"}).raise_for_status()
            digest = api.get("/v1/environments/production/services/quote/config-digest").json()
        children = child_pids(env.pid)  # type: ignore[arg-type]
        assert len(children) == EXPECTED_INSTANCES + 1
        state = json.loads((tmp_path / "state" / "state.json").read_text())
        assert state["environments"]["baseline"]["services"]["quote"][1]["version"] == "1.3.0"
        assert env.token not in (tmp_path / "state" / "state.json").read_text()
    finally:
        assert env.stop() == 0
    assert _wait_gone(children) == set(), "instance processes outlived the server"

    env.start()
    try:
        with httpx.Client(base_url=env.gateway_url, timeout=20) as gateway, _client(env) as api:
            quote2 = instance(api, "baseline", "quote", 2)
            assert quote2["version"] == "1.3.0" and quote2["previous_version"] == "1.1.0"
            assert quote2["in_rotation"] is False
            assert quote2["state"] == "running" and quote2["health"] == "healthy"
            production = api.get("/v1/environments/production/services/quote").json()
            assert production["instances"][0]["version"] == "1.3.0"
            assert api.get("/v1/test-configs/quote@1.3.0").json()["values"] == {"k": "v"}
            assert any(c["version"] == "3.0.0" for c in api.get("/v1/catalog").json())
            assert api.get("/v1/environments/baseline/services/order/test-config").json()["ref"] == "r1"
            assert api.get("/v1/environments/production/services/quote/config-digest").json() == digest
            assert len(api.get("/v1/notifications").json()) == 1
            assert instance(api, "proj-keep", "order", 1)["health"] == "healthy"
            steps = run_chain(gateway, headers={"X-Route-Key": "proj-keep"})
            # instance 2 is still out of rotation; the project's order instance is back
            assert steps["quote"].headers["X-Instance"] == "baseline/quote/1"
            assert steps["order"].headers["X-Instance"] == "proj-keep/order/1"
        assert len(child_pids(env.pid)) == EXPECTED_INSTANCES + 1  # type: ignore[arg-type]
    finally:
        env.stop()


def test_a_sigkilled_server_leaves_no_orphans(tmp_path: Path) -> None:
    env = ReferenceEnvironment(tmp_path / "state", free_port(), free_port(), secrets.token_urlsafe(16))
    env.start()
    server_pid = env.pid
    assert server_pid is not None
    children = child_pids(server_pid)
    assert len(children) == EXPECTED_INSTANCES
    os.kill(server_pid, signal.SIGKILL)
    env.stop()  # reaps the killed server
    assert _wait_gone(children) == set(), "instance processes outlived a SIGKILLed server"


def test_start_fails_clearly_without_a_token_or_on_a_bad_topology(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "REFENV_TOKEN"}
    no_token = subprocess.run(
        [
            sys.executable,
            "-m",
            "reference_env",
            "--state-dir",
            str(tmp_path / "s"),
            "--api-port",
            "1",
            "--gateway-port",
            "2",
        ],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert no_token.returncode == 2 and "REFENV_TOKEN" in no_token.stderr

    bad = tmp_path / "topology.yaml"
    bad.write_text("environments: {}\nservices: []\n")
    env = ReferenceEnvironment(tmp_path / "state", free_port(), free_port(), "tok", topology=bad)
    with pytest.raises(ReferenceEnvironmentError, match="exited with code 2") as raised:
        env.start()
    assert "environments.production must be a mapping with a db_prefix" in str(raised.value)
