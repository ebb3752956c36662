"""BusinessCheckOperator against a real sandbox and a real S3 endpoint."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

import httpx
import pytest
from baseline_guard.errors import BusinessChecksFailed
from baseline_guard.operators.business_check import BusinessCheckOperator
from local_stack.s3 import LocalS3
from reference_env.launcher import ReferenceEnvironment
from sandbox_connections import deploy_everywhere, use_backup_store, use_reference_environment
from task_tries import run_task

BUCKET = "bg-check-reports"


@pytest.fixture
def sandbox(
    make_env_api: Callable[[], ReferenceEnvironment], s3: LocalS3, monkeypatch: pytest.MonkeyPatch
) -> ReferenceEnvironment:
    env = make_env_api()
    use_reference_environment(monkeypatch, env, conn_id="check_env_api")
    use_backup_store(monkeypatch, s3, BUCKET, conn_id="check_s3")
    return env


def _operator(prefix: str, **kwargs: object) -> BusinessCheckOperator:
    return BusinessCheckOperator(
        task_id="checks",
        env_api_conn_id="check_env_api",
        aws_conn_id="check_s3",
        report_prefix=prefix,
        **kwargs,
    )  # type: ignore[arg-type]


def _notifications(env: ReferenceEnvironment) -> list[dict]:
    r = httpx.get(
        f"{env.api_url}/v1/notifications",
        params={"channel": "admins"},
        headers={"Authorization": f"Bearer {env.token}"},
    )
    r.raise_for_status()
    return r.json()


def test_healthy_sandbox_passes_and_reports_land_in_s3(sandbox: ReferenceEnvironment, s3: LocalS3) -> None:
    done = run_task(_operator("reports/healthy"))
    result = done.result
    assert result["passed"] is True and result["failed"] == [] and result["scenarios"] >= 30
    client = s3.client()
    keys = sorted(
        o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="reports/healthy/")["Contents"]
    )
    assert keys == ["reports/healthy/junit.xml", "reports/healthy/report.html", "reports/healthy/result.json"]
    junit = ET.fromstring(client.get_object(Bucket=BUCKET, Key="reports/healthy/junit.xml")["Body"].read())
    assert sum(int(s.get("tests", 0)) for s in junit.iter("testsuite")) == result["scenarios"]
    assert sum(int(s.get("failures", 0)) for s in junit.iter("testsuite")) == 0
    html = httpx.get(result["report_url"]).text  # the presigned link the task shows
    assert "<html" in html.lower() and "pricing" in html
    assert done.ti.xcoms["_link_BusinessCheckReportLink"] == result["report_url"]
    assert _notifications(sandbox) == []  # passing from the start: nothing to tell


def test_wrong_answer_in_quote_names_pricing_and_notifies_once(
    sandbox: ReferenceEnvironment, s3: LocalS3
) -> None:
    deploy_everywhere("baseline", "quote", "1.9.2-wrong", "check_env_api")
    done = run_task(_operator("reports/wrong-quote"))
    assert isinstance(done.error, BusinessChecksFailed)
    message = str(done.error)
    assert "pricing · POST /quotes" in message
    assert "search ·" not in message and "catalog ·" not in message
    sent = _notifications(sandbox)
    assert (
        len(sent) == 1
        and "pricing · POST /quotes" in str(sent[0])
        and "reports/wrong-quote/report.html" in str(sent[0])
    )


def test_project_environment_is_checked_through_its_routing_key(sandbox: ReferenceEnvironment) -> None:
    api = httpx.Client(base_url=f"{sandbox.api_url}/v1", headers={"Authorization": f"Bearer {sandbox.token}"})
    api.post(
        "/environments", json={"name": "proj-slow", "services": {"hotel-detail": "1.9.2-wrong"}}
    ).raise_for_status()
    failed = run_task(_operator("reports/proj", environment="proj-slow", tags=["catalog"]))
    assert isinstance(failed.error, BusinessChecksFailed)
    assert "catalog · GET /hotels/{id}" in str(failed.error)
    assert run_task(_operator("reports/base", tags=["catalog"])).result["passed"] is True


def test_a_check_that_cannot_start_tells_the_admins_why_once(sandbox: ReferenceEnvironment) -> None:
    done = run_task(_operator("reports/none", environment="proj-unknown"), tries=3)
    assert done.error is not None and "check_alert" not in done.ti.xcoms
    sent = _notifications(sandbox)
    assert len(sent) == 1 and "proj-unknown" in str(sent[0]) and "business checks failed" in str(sent[0])
