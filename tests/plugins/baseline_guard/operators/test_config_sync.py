"""The config sync operators against a real sandbox: test configs applied, prod values never copied, secrets
masked; production config changes asked about and the answers kept in the guard's real database."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import reference_env
import yaml
from airflow.providers.standard.exceptions import HITLTriggerEventError
from airflow.sdk._shared.secrets_masker import redact
from baseline_guard.errors import ProductionWriteRefused
from baseline_guard.health.guard_state import ConfigDecisionStore, connect
from baseline_guard.hooks.environment import EnvironmentHook
from baseline_guard.operators.config_sync import (
    ConfigChangeDecisionOperator,
    ConfigSyncOperator,
    FindUnmatchedConfigChangesOperator,
)
from local_stack.connections import env_api_connections
from local_stack.postgres import LocalPostgres
from reference_env.launcher import ReferenceEnvironment
from sandbox_connections import history_database

TOPOLOGY = yaml.safe_load((Path(reference_env.__file__).parent / "topology.yaml").read_text())


@pytest.fixture
def sandbox(
    make_env_api: Callable[[], ReferenceEnvironment], monkeypatch: pytest.MonkeyPatch
) -> ReferenceEnvironment:
    env = make_env_api()
    for key, value in env_api_connections(env.api_port, env.token, conn_id="config_env_api").items():
        monkeypatch.setenv(key, value)
    return env


def _sync(**kwargs: object) -> dict:
    context = {"data_interval_end": datetime.now(UTC)}  # the run's time
    operator = ConfigSyncOperator(task_id="sync", env_api_conn_id="config_env_api", **kwargs)  # type: ignore[arg-type]
    return operator.execute(context=context)


def _applied(service: str) -> dict[str, str]:
    return EnvironmentHook("config_env_api").get_applied_test_config("baseline", service).model_dump()


def test_applies_release_test_configs_once_and_never_production_values(sandbox: ReferenceEnvironment) -> None:
    first = _sync()
    assert sorted(a["service"] for a in first["applied"]) == [
        "hotel-detail",
        "hotel-search",
        "order",
        "quote",
    ]
    for svc in TOPOLOGY["services"]:
        applied = _applied(svc["name"])
        assert applied["values"] == svc["test_config"]
        assert applied["ref"] == f"{svc['name']}@{svc['production_version']}"
        prod_values = set(svc["production_config"].values()) - set(svc["test_config"].values())
        assert not prod_values & set(applied["values"].values()), "a production value reached the baseline"
    assert _sync()["applied"] == []  # nothing left to do


def _api(sandbox: ReferenceEnvironment) -> httpx.Client:
    return httpx.Client(
        base_url=f"{sandbox.api_url}/v1", headers={"Authorization": f"Bearer {sandbox.token}"}
    )


SECRETS = {
    "db_pwd": "hunter22-baseline",
    "encryption_key": "k3y-material-0001",
    "db_url": "postgresql://quote:Pg-S3cret-77@db.test.example:5432/quote",
    "fx_source": "ZmF0LXRva2VuLTk4NzY1NDMyMTA-abcXYZ",  # an API token under an innocent key name
}


def test_new_release_config_applied_with_secrets_masked_by_value(
    sandbox: ReferenceEnvironment, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    _sync()
    with _api(sandbox) as api:
        api.post(
            "/releases",
            json={
                "service": "quote",
                "version": "1.3.0",
                "test_config": {"pricing_currency": "EUR", **SECRETS},
            },
        ).raise_for_status()
    result = _sync()
    assert result["applied"] == [
        {
            "service": "quote",
            "ref": "quote@1.3.0",
            "previous_ref": "quote@1.2.0",
            "keys": 5,
            "changed": 5,
            "changed_keys": ["db_pwd", "db_url", "encryption_key", "fx_source", "pricing_fx_source"],
            "secret_keys": 4,
        }
    ]
    assert _applied("quote")["values"]["db_url"] == SECRETS["db_url"]  # the baseline got the real value
    out, err = capsys.readouterr()
    logs = out + err + caplog.text
    assert "applied test config" in logs
    for value in [*SECRETS.values(), "Pg-S3cret-77"]:
        assert value not in logs and value not in json.dumps(result)
        assert redact(f"x {value} y") == "x *** y", value  # registered with Airflow's masker


def test_oversized_config_is_refused_others_applied_and_logs_stay_small(
    sandbox: ReferenceEnvironment, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    _sync()
    huge = {f"key_{i:05d}": "v" * 90 for i in range(10_001)}  # about 1 MB
    with _api(sandbox) as api:
        api.post(
            "/releases", json={"service": "quote", "version": "1.3.0", "test_config": huge}
        ).raise_for_status()
        api.post(
            "/releases",
            json={"service": "order", "version": "1.1.0", "test_config": {"booking_mail": "sink2"}},
        ).raise_for_status()
    capsys.readouterr()
    result = _sync()
    assert [a["service"] for a in result["applied"]] == ["order"]
    assert [r["service"] for r in result["refused"]] == ["quote"]
    assert (
        "10001 keys" in result["refused"][0]["reason"]
        and "limit is 2000 keys" in result["refused"][0]["reason"]
    )
    assert _applied("quote")["ref"] == "quote@1.2.0"
    out, err = capsys.readouterr()
    assert len(json.dumps(result)) < 2_000 and len(out + err + caplog.text) < 20_000


def test_release_without_test_config_is_reported_not_invented(sandbox: ReferenceEnvironment) -> None:
    _sync()
    with _api(sandbox) as api:
        api.post("/releases", json={"service": "order", "version": "1.1.0"}).raise_for_status()
    result = _sync()
    assert result == {"applied": [], "without_test_config": [{"service": "order"}], "refused": []}
    assert _applied("order")["ref"] == "order@1.0.0"


def test_re_recorded_version_keeps_its_test_config_and_warns_nothing(
    sandbox: ReferenceEnvironment, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    _sync()
    with _api(sandbox) as api:  # production config change recorded as a release of the running version
        api.post(
            "/releases",
            json={
                "service": "quote",
                "version": "1.2.0",
                "production_config": {"pricing_fx_source": "https://fx2.prod.example"},
            },
        ).raise_for_status()
    capsys.readouterr()
    assert _sync() == {"applied": [], "without_test_config": [], "refused": []}
    out, err = capsys.readouterr()
    assert "no test config" not in out + err + caplog.text
    assert _applied("quote")["ref"] == "quote@1.2.0"


def test_production_refused(sandbox: ReferenceEnvironment) -> None:
    with pytest.raises(ProductionWriteRefused):
        _sync(environment="production")


@pytest.fixture
def decisions(postgres: LocalPostgres, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh migrated guard database behind the connection ``config_guard_db``; yields its DSN."""
    with history_database(postgres, monkeypatch) as dsn:
        monkeypatch.setenv("AIRFLOW_CONN_CONFIG_GUARD_DB", os.environ["AIRFLOW_CONN_BASELINE_GUARD_DB"])
        yield dsn


def _find(run_id: str, now: datetime) -> list[dict[str, str]]:
    operator = FindUnmatchedConfigChangesOperator(
        task_id="find", env_api_conn_id="config_env_api", guard_db_conn_id="config_guard_db"
    )
    return operator.execute(context={"data_interval_end": now, "run_id": run_id})


def _records(dsn: str) -> dict[str, dict[str, Any]]:
    conn = connect(dsn)
    try:
        return ConfigDecisionStore(conn).load()
    finally:
        conn.close()


def _decide(change: dict[str, str], event: dict[str, Any], now: datetime) -> Any:
    operator = ConfigChangeDecisionOperator(
        task_id="decide", change=change, guard_db_conn_id="config_guard_db"
    )
    operator.response_timeout = timedelta(minutes=operator.decision_timeout_minutes)
    return operator.execute_complete({"data_interval_end": now}, event)


def test_a_change_without_test_config_is_asked_once_and_each_outcome_kept_in_the_database(
    sandbox: ReferenceEnvironment, decisions: str
) -> None:
    now = datetime.now(UTC)
    assert _find("r1", now) == []  # first sighting: recorded, nobody asked
    first = _records(decisions)
    assert set(first) == {s["name"] for s in TOPOLOGY["services"]}
    assert {r["status"] for r in first.values()} == {"recorded"}
    with _api(sandbox) as api:  # production's config changes later, with no test config
        api.post(
            "/releases",
            json={
                "service": "order",
                "version": "1.0.0",
                "released_at": (now + timedelta(minutes=10)).isoformat(),
                "production_config": {"booking_mail": "smtp9.prod.example"},
            },
        ).raise_for_status()
    now += timedelta(minutes=15)

    changes = _find("r2", now)
    assert [c["service"] for c in changes] == ["order"]
    asked = _records(decisions)["order"]
    assert (asked["status"], asked["asked_in"], asked["digest"]) == ("asked", "r2", changes[0]["digest"])
    assert _find("r3", now) == []  # its question is still waiting: not asked twice

    with pytest.raises(HITLTriggerEventError):  # no answer in time
        _decide(changes[0], {"error": "no answer", "error_type": "timeout"}, now)
    assert _records(decisions)["order"]["status"] == "timed_out"
    again = _find("r4", now)  # asked again by the next run
    assert [c["service"] for c in again] == ["order"] and _records(decisions)["order"]["asked_in"] == "r4"

    answer = {
        "chosen_options": ["Not needed for the baseline"],
        "params_input": {},
        "responded_at": now,
        "responded_by_user": {"id": "7", "name": "oncall"},
    }
    _decide(again[0], answer, now)
    assert _find("r5", now) == []
    decided = _records(decisions)["order"]
    assert (decided["status"], decided["decision"], decided["decided_by"]) == (
        "decided",
        "Not needed for the baseline",
        "oncall",
    )
    assert {s: r["status"] for s, r in _records(decisions).items() if s != "order"} == {
        s: "recorded" for s in first if s != "order"
    }
