"""Who hears about a failed business check: a project environment's owners, the admins for the baseline.

Against a real sandbox (its notification sink counts the messages) and a real S3 endpoint (where
each environment's last outcome is kept, so an unchanged failure is not sent twice).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable

import httpx
import pytest
from baseline_guard.hooks.environment import EnvironmentHook
from baseline_guard.operators.business_check import BusinessCheckOperator, BusinessChecksFailed
from local_stack.connections import env_api_connections
from local_stack.s3 import LocalS3
from reference_env.launcher import ReferenceEnvironment

CONN = "owners_env_api"


@pytest.fixture
def sandbox(
    make_env_api: Callable[[], ReferenceEnvironment], s3: LocalS3, monkeypatch: pytest.MonkeyPatch
) -> ReferenceEnvironment:
    env = make_env_api()
    for key, value in env_api_connections(
        env.api_port, env.token, gateway_port=env.gateway_port, conn_id=CONN
    ).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AIRFLOW_CONN_OWNERS_S3", json.dumps(s3.airflow_connection()))
    return env


@pytest.fixture
def bucket(s3: LocalS3) -> str:
    name = f"bg-owners-{secrets.token_hex(4)}"
    s3.client().create_bucket(Bucket=name)
    return name


def _api(env: ReferenceEnvironment) -> httpx.Client:
    return httpx.Client(
        base_url=f"{env.api_url}/v1", headers={"Authorization": f"Bearer {env.token}"}, timeout=60
    )


def _sent(env: ReferenceEnvironment, channel: str) -> list[dict]:
    answer = _api(env).get("/notifications", params={"channel": channel})
    answer.raise_for_status()
    return answer.json()


def _check(bucket: str, environment: str, prefix: str) -> dict:
    return BusinessCheckOperator(
        task_id="checks", env_api_conn_id=CONN, aws_conn_id="owners_s3", bucket=bucket,
        environment=environment, report_prefix=prefix, tags=["catalog"],
    ).execute(context={})  # fmt: skip


def _deploy_everywhere(env: str, service: str, version: str) -> None:
    hook = EnvironmentHook(CONN)
    for inst in hook.get_service(env, service).instances:
        op = hook.deploy(env, service, inst.index, version)
        while not op.state.finished:
            time.sleep(0.1)
            op = hook.get_operation(op.id)
        assert op.state == "succeeded", op.message


def test_a_project_failure_goes_to_its_owners_once_and_the_baseline_s_to_the_admins(
    sandbox: ReferenceEnvironment, bucket: str
) -> None:
    owners_url = f"json://127.0.0.1:{sandbox.api_port}/v1/notifications/owners-proj-x"
    created = _api(sandbox).post(
        "/environments",
        json={"name": "proj-x", "services": {"hotel-detail": "1.9.2-wrong"}, "owners_notify_url": owners_url},
    )
    created.raise_for_status()
    assert EnvironmentHook(CONN).get_environment("proj-x").owners_notify_url == owners_url

    for attempt in range(2):  # the hourly run twice: the same breakage is told once
        with pytest.raises(BusinessChecksFailed, match="catalog · GET /hotels"):
            _check(bucket, "proj-x", f"reports/proj-x/{attempt}")
    owners = _sent(sandbox, "owners-proj-x")
    assert len(owners) == 1
    assert "proj-x" in str(owners[0]) and "catalog · GET /hotels/{id}" in str(owners[0])
    assert _sent(sandbox, "admins") == []  # a project environment's failure is not the admins' business

    _deploy_everywhere("baseline", "hotel-detail", "1.9.2-wrong")
    with pytest.raises(BusinessChecksFailed):
        _check(bucket, "baseline", "reports/baseline/0")
    admins = _sent(sandbox, "admins")
    assert (
        len(admins) == 1 and "baseline" in str(admins[0]) and "catalog · GET /hotels/{id}" in str(admins[0])
    )
    assert len(_sent(sandbox, "owners-proj-x")) == 1

    _deploy_everywhere(
        "baseline", "hotel-detail", EnvironmentHook(CONN).list_releases("hotel-detail")[-1].version
    )
    assert _check(bucket, "baseline", "reports/baseline/1")["notified"] == "admins"
    assert _check(bucket, "baseline", "reports/baseline/2")["notified"] == ""  # still passing: silence
    admins = _sent(sandbox, "admins")
    assert len(admins) == 2 and "pass again" in str(admins[1])
