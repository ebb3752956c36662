"""Who hears about a failed business check, and how often: a project environment's owners, the admins for
the baseline; once when it starts failing, none while the same breakage repeats (also across the tries of
one task), once when it passes again.

Against a real sandbox (its notification sink counts the messages) and a real S3 endpoint (where
each environment's last outcome is kept). Each task is run as Airflow runs it: its tries, then its
callback (the :class:`BusinessCheckNotifier` that sends what the last try decided).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from baseline_guard.errors import BusinessChecksFailed
from baseline_guard.hooks.environment import EnvironmentHook
from baseline_guard.operators.business_check import BusinessCheckOperator
from baseline_guard.protection.check_alerts import load_outcome
from local_stack.s3 import LocalS3
from reference_env.launcher import ReferenceEnvironment
from sandbox_connections import deploy_everywhere, use_backup_store, use_reference_environment
from task_tries import TaskOutcome, run_task

CONN = "owners_env_api"


@pytest.fixture
def sandbox(
    make_env_api: Callable[[], ReferenceEnvironment], s3: LocalS3, monkeypatch: pytest.MonkeyPatch
) -> ReferenceEnvironment:
    env = make_env_api()
    use_reference_environment(monkeypatch, env, conn_id=CONN)
    return env


@pytest.fixture
def bucket(s3: LocalS3, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"bg-owners-{secrets.token_hex(4)}"
    use_backup_store(monkeypatch, s3, name, conn_id="owners_s3")
    return name


def _api(env: ReferenceEnvironment) -> httpx.Client:
    return httpx.Client(
        base_url=f"{env.api_url}/v1", headers={"Authorization": f"Bearer {env.token}"}, timeout=60
    )


def _sent(env: ReferenceEnvironment, channel: str) -> list[dict]:
    answer = _api(env).get("/notifications", params={"channel": channel})
    answer.raise_for_status()
    return answer.json()


def _check(environment: str, run: str, *, tries: int = 1) -> TaskOutcome:
    operator = BusinessCheckOperator(
        task_id="checks",
        env_api_conn_id=CONN,
        aws_conn_id="owners_s3",
        environment=environment,
        report_prefix=f"reports/{environment}/{run}",
        tags=["catalog"],
    )
    return run_task(operator, run_id=run, tries=tries)


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
        done = _check("proj-x", f"scheduled__{attempt}")
        assert isinstance(done.error, BusinessChecksFailed) and "catalog · GET /hotels" in str(done.error)
    owners = _sent(sandbox, "owners-proj-x")
    assert len(owners) == 1
    assert "proj-x" in str(owners[0]) and "catalog · GET /hotels/{id}" in str(owners[0])
    assert _sent(sandbox, "admins") == []  # a project environment's failure is not the admins' business

    deploy_everywhere("baseline", "hotel-detail", "1.9.2-wrong", CONN)
    assert isinstance(_check("baseline", "scheduled__b0").error, BusinessChecksFailed)
    admins = _sent(sandbox, "admins")
    assert (
        len(admins) == 1 and "baseline" in str(admins[0]) and "catalog · GET /hotels/{id}" in str(admins[0])
    )
    assert len(_sent(sandbox, "owners-proj-x")) == 1

    deploy_everywhere(
        "baseline", "hotel-detail", EnvironmentHook(CONN).list_releases("hotel-detail")[-1].version, CONN
    )
    assert _check("baseline", "scheduled__b1").result["alert"] == "recovered"
    assert _check("baseline", "scheduled__b2").result["alert"] is None  # still passing: silence
    admins = _sent(sandbox, "admins")
    assert len(admins) == 2 and "pass again" in str(admins[1])


def test_a_failing_check_retried_by_its_task_is_told_once_and_its_retries_decide_alike(
    sandbox: ReferenceEnvironment, s3: LocalS3, bucket: str
) -> None:
    deploy_everywhere("baseline", "hotel-detail", "1.9.2-wrong", CONN)
    done = _check("baseline", "manual__retried", tries=3)  # e.g. inside a backup run, which retries
    assert isinstance(done.error, BusinessChecksFailed) and done.ti.try_number == 3
    assert done.ti.xcoms["check_alert"]["alert"] == "failed"  # the last try decided as the first did
    assert len(_sent(sandbox, "admins")) == 1

    stored = load_outcome(s3.client(), bucket, "baseline", "catalog")
    assert stored is not None and stored.decided_by == "business_check/manual__retried/checks/-1"
    assert stored.before is None and stored.broken == ["catalog · GET /hotels/{id}"]

    again = _check("baseline", "manual__next")  # the next run: same breakage, silence
    assert again.ti.xcoms["check_alert"]["alert"] is None
    assert len(_sent(sandbox, "admins")) == 1


def test_the_outcome_keeps_when_it_started_failing_as_of_the_run(
    sandbox: ReferenceEnvironment, s3: LocalS3, bucket: str
) -> None:
    deploy_everywhere("baseline", "hotel-detail", "1.9.2-wrong", CONN)
    first, later = datetime(2026, 11, 1, 10, tzinfo=UTC), datetime(2026, 11, 1, 11, tzinfo=UTC)
    for run, as_of in (("scheduled__10", first), ("scheduled__11", later)):
        operator = BusinessCheckOperator(
            task_id="checks",
            env_api_conn_id=CONN,
            aws_conn_id="owners_s3",
            report_prefix=f"reports/{run}",
            tags=["catalog"],
        )
        run_task(operator, run_id=run, as_of=as_of)
    stored = load_outcome(s3.client(), bucket, "baseline", "catalog")
    assert stored is not None and stored.since == first and not stored.passed
    assert json.loads(stored.model_dump_json())["decided_by"].endswith("scheduled__11/checks/-1")
