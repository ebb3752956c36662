"""The whole stack with Airflow standalone: every component healthy, CI can log in and list DAGs."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
from local_stack.stack import AIRFLOW_COMPONENTS
from local_stack_helpers import StackRun, all_gone, secrets_of, stack_env

pytestmark = pytest.mark.airflow


def test_airflow_standalone_becomes_healthy_and_answers_ci(state_dir: Path) -> None:
    run = StackRun(state_dir=state_dir, env=stack_env(), args=["--airflow-timeout", "200"]).start()
    try:
        run.wait_ready(260)
        base = f"http://127.0.0.1:{run.env['BG_AIRFLOW_PORT']}"
        assert f"Airflow UI + REST API  {base}   users: admin/admin (admin), ci/ci (user)" in run.output
        for secret in secrets_of(state_dir).values():
            assert secret not in run.output
        procs = run.processes()

        health = httpx.get(f"{base}/api/v2/monitor/health", timeout=10).json()
        assert {c: health[c]["status"] for c in AIRFLOW_COMPONENTS} == dict.fromkeys(
            AIRFLOW_COMPONENTS, "healthy"
        )

        token = httpx.post(f"{base}/auth/token", json={"username": "ci", "password": "ci"}, timeout=30)
        assert token.status_code == 201, token.text
        access = token.json()["access_token"]
        wrong = httpx.post(f"{base}/auth/token", json={"username": "ci", "password": "nope"}, timeout=30)
        assert wrong.status_code == 401
        dags = httpx.get(f"{base}/api/v2/dags", headers={"Authorization": f"Bearer {access}"}, timeout=30)
        assert dags.status_code == 200, dags.text
        assert "dags" in dags.json()
        assert httpx.get(f"{base}/api/v2/dags", timeout=30).status_code == 401

        run.signal(signal.SIGTERM)
        assert run.wait_exit(timeout=120) == 0
        assert all_gone(procs, timeout=30) == []
    finally:
        run.stop()
