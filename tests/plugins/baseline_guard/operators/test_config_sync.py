"""ConfigSyncOperator against a real sandbox: test configs applied, prod values never copied, secrets masked."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import reference_env
import yaml
from baseline_guard.errors import ProductionWriteRefused
from baseline_guard.hooks.environment import EnvironmentHook
from baseline_guard.operators.config_sync import ConfigSyncOperator
from local_stack.connections import env_api_connections
from reference_env.launcher import ReferenceEnvironment

TOPOLOGY = yaml.safe_load((Path(reference_env.__file__).parent / "topology.yaml").read_text())
SECRET = "sekret-token-4711-abc"


@pytest.fixture
def sandbox(
    make_env_api: Callable[[], ReferenceEnvironment], monkeypatch: pytest.MonkeyPatch
) -> ReferenceEnvironment:
    env = make_env_api()
    for key, value in env_api_connections(env.api_port, env.token, conn_id="config_env_api").items():
        monkeypatch.setenv(key, value)
    return env


def _sync(**kwargs: object) -> dict:
    now = datetime.now(UTC).isoformat()
    return ConfigSyncOperator(task_id="sync", env_api_conn_id="config_env_api", as_of=now, **kwargs).execute(
        context={}
    )  # type: ignore[arg-type]


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


def test_new_release_config_applied_with_secrets_masked(
    sandbox: ReferenceEnvironment, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    _sync()
    api = httpx.Client(base_url=f"{sandbox.api_url}/v1", headers={"Authorization": f"Bearer {sandbox.token}"})
    api.post("/releases", json={"service": "quote", "version": "1.3.0",
                                "test_config": {"pricing_currency": "EUR", "fx_api_token": SECRET}}).raise_for_status()  # fmt: skip
    result = _sync()
    assert result["applied"] == [
        {"service": "quote", "ref": "quote@1.3.0", "previous_ref": "quote@1.2.0",
         "changed_keys": ["fx_api_token", "pricing_fx_source"]}
    ]  # fmt: skip
    assert _applied("quote")["values"]["fx_api_token"] == SECRET  # the baseline got the real value
    out, err = capsys.readouterr()
    logs = out + err + caplog.text
    assert "applied test config" in logs and "***" in logs
    assert SECRET not in logs and SECRET not in json.dumps(result)


def test_release_without_test_config_is_reported_not_invented(sandbox: ReferenceEnvironment) -> None:
    _sync()
    api = httpx.Client(base_url=f"{sandbox.api_url}/v1", headers={"Authorization": f"Bearer {sandbox.token}"})
    api.post("/releases", json={"service": "order", "version": "1.1.0"}).raise_for_status()
    result = _sync()
    assert result == {"applied": [], "without_test_config": [{"service": "order", "version": "1.1.0"}]}
    assert _applied("order")["ref"] == "order@1.0.0"


def test_production_refused(sandbox: ReferenceEnvironment) -> None:
    with pytest.raises(ProductionWriteRefused):
        _sync(environment="production")
