"""The environment API contract v1 over real HTTP: auth, trace ids, reads, refusals, releases and configs."""

from __future__ import annotations

import re

import httpx
import pytest
from baseline_guard.environment_contract import (
    AppliedTestConfig,
    CatalogVersion,
    ConfigDigest,
    Database,
    Environment,
    Release,
    Service,
    TestConfig,
)
from reference_env.launcher import ReferenceEnvironment

CONTRACT_TABLE = re.compile(r"^(GET|POST|PUT|DELETE)\s+(/\S+)", re.MULTILINE)


def test_health_and_openapi_publish_every_contract_path(refenv: ReferenceEnvironment) -> None:
    import baseline_guard.environment_contract as contract

    assert httpx.get(f"{refenv.api_url}/health").json()["status"] == "ok"
    spec = httpx.get(f"{refenv.api_url}/openapi.json").json()
    published = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    expected = {(m, "/v1" + p.split("?")[0]) for m, p in CONTRACT_TABLE.findall(contract.__doc__ or "")}
    assert len(expected) == 20
    assert expected <= published, sorted(expected - published)
    schemas = spec["components"]["schemas"]
    assert {"Environment", "Instance", "Operation", "Release", "CatalogVersion"} <= set(schemas)
    sandbox_only = [
        p for p, ops in spec["paths"].items() for op in ops.values() if "sandbox-only" in op.get("tags", [])
    ]
    assert "/v1/notifications/{channel}" in sandbox_only and "sandbox-only" in spec["info"]["description"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic Zm9vOmJhcg=="}],
    ids=["no-token", "wrong-token", "basic-auth"],
)
def test_every_v1_call_needs_the_bearer_token(refenv: ReferenceEnvironment, headers: dict[str, str]) -> None:
    for method, path in [
        ("GET", "/v1/environments"),
        ("GET", "/v1/catalog"),
        ("POST", "/v1/releases"),
        ("GET", "/v1/notifications"),
    ]:
        response = httpx.request(method, f"{refenv.api_url}{path}", headers=headers, json={})
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert refenv.token not in response.text


def test_trace_id_is_echoed_and_logged(api: httpx.Client, refenv: ReferenceEnvironment) -> None:
    response = api.get("/v1/environments", headers={"X-Trace-Id": "trace-abc-123"})
    assert response.status_code == 200 and response.headers["X-Trace-Id"] == "trace-abc-123"
    generated = api.get("/v1/environments").headers["X-Trace-Id"]
    assert len(generated) == 32
    log = refenv.log_path.read_text()
    assert "GET /v1/environments 200 trace_id=trace-abc-123" in log
    assert refenv.token not in log


def test_environments_services_and_databases(api: httpx.Client) -> None:
    envs = {e.name: e for e in map(Environment.model_validate, api.get("/v1/environments").json())}
    assert envs["production"].kind == "production" and envs["baseline"].kind == "baseline"
    assert envs["baseline"].services == ["hotel-search", "hotel-detail", "quote", "order"]

    baseline = [Service.model_validate(s) for s in api.get("/v1/environments/baseline/services").json()]
    assert {s.name: s.module for s in baseline} == {
        "hotel-search": "search",
        "hotel-detail": "catalog",
        "quote": "pricing",
        "order": "booking",
    }
    for svc in baseline:
        assert [i.index for i in svc.instances] == [1, 2]
        assert all(i.state == "running" and i.url and i.in_rotation for i in svc.instances), svc

    prod = {
        s.name: s for s in map(Service.model_validate, api.get("/v1/environments/production/services").json())
    }
    base = {s.name: s for s in baseline}
    ahead = [n for n in prod if prod[n].instances[0].version != base[n].instances[0].version]
    assert len(ahead) >= 2, "production must run ahead of the baseline on two services at least"
    assert all(i.url is None and i.health == "healthy" for s in prod.values() for i in s.instances)

    dbs = [Database.model_validate(d) for d in api.get("/v1/environments/baseline/databases").json()]
    assert {(d.service, d.name, d.conn_id) for d in dbs} >= {
        ("hotel-search", "baseline_hotel_search", "pg_baseline_hotel_search"),
        ("order", "baseline_booking", "pg_baseline_booking"),
    }
    prod_dbs = {d["name"] for d in api.get("/v1/environments/production/databases").json()}
    assert prod_dbs == {"prod_hotel_search", "prod_hotel_detail", "prod_quote", "prod_booking"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/environments/production/services/quote/instances/1/deploy", {"version": "1.0.0"}),
        ("POST", "/v1/environments/production/services/quote/instances/1/restart", None),
        ("PUT", "/v1/environments/production/services/quote/instances/1/rotation", {"in_rotation": False}),
        ("PUT", "/v1/environments/production/services/quote/test-config", {"ref": "x", "values": {}}),
        ("DELETE", "/v1/environments/production", None),
        ("POST", "/v1/sandbox/instances/production/quote/1/kill", None),
        ("PUT", "/v1/sandbox/services/production/quote/restart-fails", {"fails": True}),
    ],
)
def test_every_write_to_production_is_refused(
    api: httpx.Client, method: str, path: str, body: object
) -> None:
    before = api.get("/v1/environments/production/services/quote").json()
    response = api.request(method, path, json=body)
    assert response.status_code == 403, response.text
    assert response.json()["detail"] == "environment 'production' is read-only"
    assert api.get("/v1/environments/production/services/quote").json() == before


def test_not_found_conflict_and_validation_errors_say_what_was_wrong(api: httpx.Client) -> None:
    missing_env = api.get("/v1/environments/nowhere/services")
    assert missing_env.status_code == 404 and "'nowhere'" in missing_env.json()["detail"]
    missing_svc = api.get("/v1/environments/baseline/services/payments")
    assert missing_svc.status_code == 404 and "'payments'" in missing_svc.json()["detail"]
    missing_inst = api.post(
        "/v1/environments/baseline/services/quote/instances/7/deploy", json={"version": "1.0.0"}
    )
    assert missing_inst.status_code == 404 and "instance 7" in missing_inst.json()["detail"]
    assert api.get("/v1/operations/nope").status_code == 404

    undeclared = api.post(
        "/v1/environments/baseline/services/quote/instances/1/deploy", json={"version": "9.9.9"}
    )
    assert undeclared.status_code == 409
    assert "'quote'" in undeclared.json()["detail"] and "1.2.0" in undeclared.json()["detail"]
    bad_version = api.post(
        "/v1/environments/baseline/services/quote/instances/1/deploy", json={"version": "latest"}
    )
    assert bad_version.status_code == 422
    assert api.post("/v1/environments", json={"name": "Bad Name!", "services": {}}).status_code == 422
    assert api.delete("/v1/environments/baseline").status_code == 403
    assert (
        api.post("/v1/environments", json={"name": "baseline", "services": {"quote": "1.0.0"}}).status_code
        == 409
    )
    empty = api.post("/v1/environments", json={"name": "proj-empty", "services": {}})
    assert empty.status_code == 400 and "services" in empty.json()["detail"]
    assert api.get("/v1/environments/proj-empty").status_code == 404  # nothing half-created


def test_release_records_test_config_and_production_config_digest(api: httpx.Client) -> None:
    digest_before = ConfigDigest.model_validate(
        api.get("/v1/environments/production/services/order/config-digest").json()
    )
    assert digest_before.digest.startswith("sha256:")

    created = api.post(
        "/v1/releases",
        json={
            "service": "order",
            "version": "1.2.0",
            "test_config": {"booking_mail": "sink", "retries": "3"},
            "production_config": {"booking_mail": "smtp2.prod.example", "secret_api_key": "prod-only-value"},
        },
    )
    assert created.status_code == 201, created.text
    release = Release.model_validate(created.json())
    assert release.test_config_ref == "order@1.2.0"

    assert api.get("/v1/environments/production/services/order").json()["instances"][0]["version"] == "1.2.0"
    history = [Release.model_validate(r) for r in api.get("/v1/releases", params={"service": "order"}).json()]
    assert [r.version for r in history][-2:] == ["1.0.0", "1.2.0"]
    until = api.get(
        "/v1/releases", params={"service": "order", "until": history[0].released_at.isoformat()}
    ).json()
    assert [r["version"] for r in until] == ["1.0.0"]

    config = TestConfig.model_validate(api.get("/v1/test-configs/order@1.2.0").json())
    assert config.values == {"booking_mail": "sink", "retries": "3"}
    digest_after = ConfigDigest.model_validate(
        api.get("/v1/environments/production/services/order/config-digest").json()
    )
    assert digest_after.digest != digest_before.digest and digest_after.changed_at >= digest_before.changed_at
    for path in (
        "/v1/releases",
        "/v1/environments/production/services/order/config-digest",
        "/v1/test-configs/order@1.2.0",
    ):
        assert "prod-only-value" not in api.get(path).text

    assert api.post("/v1/releases", json={"service": "order", "version": "7.7.7"}).status_code == 409
    assert api.post("/v1/releases", json={"service": "payments", "version": "1.0.0"}).status_code == 404
    assert api.get("/v1/test-configs/order@7.7.7").status_code == 404


def test_test_config_is_applied_to_the_baseline_only(api: httpx.Client) -> None:
    path = "/v1/environments/baseline/services/quote/test-config"
    applied = api.put(path, json={"ref": "quote@1.2.0", "values": {"pricing_fx_source": "fixed"}})
    assert applied.status_code == 200, applied.text
    got = AppliedTestConfig.model_validate(api.get(path).json())
    assert (
        got.ref == "quote@1.2.0"
        and got.values == {"pricing_fx_source": "fixed"}
        and got.applied_at is not None
    )
    seeded = TestConfig.model_validate(api.get("/v1/test-configs/quote@1.2.0").json())
    assert seeded.service == "quote" and seeded.values


def test_catalog_declares_new_versions(api: httpx.Client) -> None:
    catalog = [CatalogVersion.model_validate(c) for c in api.get("/v1/catalog").json()]
    behaviours = {(c.service, c.behaviour) for c in catalog}
    for service in ("hotel-search", "hotel-detail", "quote", "order"):
        for behaviour in ("healthy", "fails_health", "wrong_answer", "slow_start", "slow_response"):
            assert (service, behaviour) in behaviours
    new = {"service": "quote", "version": "2.0.0", "behaviour": "healthy"}
    assert api.post("/v1/catalog", json=new).status_code == 201
    assert any(c["version"] == "2.0.0" for c in api.get("/v1/catalog").json())
    clash = api.post("/v1/catalog", json={**new, "behaviour": "wrong_answer"})
    assert clash.status_code == 409 and "already declared" in clash.json()["detail"]
    assert (
        api.post(
            "/v1/catalog", json={"service": "quote", "version": "2.0", "behaviour": "healthy"}
        ).status_code
        == 422
    )


def test_notification_sink_needs_no_token_and_lists_what_it_received(
    api: httpx.Client, refenv: ReferenceEnvironment
) -> None:
    api.delete("/v1/notifications").raise_for_status()
    apprise_like = {
        "version": "1.0",
        "title": "Baseline drift",
        "message": "quote 1.1.0 -> 1.2.0",
        "type": "info",
    }
    posted = httpx.post(f"{refenv.api_url}/v1/notifications/oncall", json=apprise_like)
    assert posted.status_code == 201
    httpx.post(f"{refenv.api_url}/v1/notifications/admins", json={"title": "x"}).raise_for_status()
    oncall = api.get("/v1/notifications", params={"channel": "oncall"}).json()
    assert [n["body"] for n in oncall] == [apprise_like] and oncall[0]["received_at"]
    assert len(api.get("/v1/notifications").json()) == 2
    assert httpx.post(f"{refenv.api_url}/v1/notifications/oncall", content=b"{not json").status_code == 400
    assert api.delete("/v1/notifications").status_code == 204
    assert api.get("/v1/notifications").json() == []


def test_a_real_apprise_json_notification_lands_in_the_sink(
    api: httpx.Client, refenv: ReferenceEnvironment
) -> None:
    import apprise

    channel = "apprise-check"
    sender = apprise.Apprise()
    assert sender.add(f"json://127.0.0.1:{refenv.api_port}/v1/notifications/{channel}")
    assert bool(sender.notify(title="Baseline drift", body="quote 1.1.0 -> 1.2.0"))
    received = api.get("/v1/notifications", params={"channel": channel}).json()
    assert len(received) == 1
    assert (
        received[0]["body"]["title"] == "Baseline drift"
        and received[0]["body"]["message"] == "quote 1.1.0 -> 1.2.0"
    )


def test_project_environment_requests_are_checked_before_anything_starts(api: httpx.Client) -> None:
    unknown = api.post("/v1/environments", json={"name": "proj-bad", "services": {"payments": "1.0.0"}})
    assert unknown.status_code == 404 and "'payments'" in unknown.json()["detail"]
    undeclared = api.post("/v1/environments", json={"name": "proj-bad", "services": {"quote": "0.0.1"}})
    assert undeclared.status_code == 409 and "declared versions" in undeclared.json()["detail"]
    too_many = api.post(
        "/v1/environments", json={"name": "proj-bad", "services": {"quote": "1.0.0"}, "instances": 3}
    )
    assert too_many.status_code == 422
    assert api.get("/v1/environments/proj-bad").status_code == 404


def test_a_two_instance_project_environment_round_robins(api: httpx.Client, gateway: httpx.Client) -> None:
    created = api.post(
        "/v1/environments", json={"name": "proj-pair", "services": {"hotel-detail": "1.3.0"}, "instances": 2}
    )
    assert created.status_code == 201, created.text
    try:
        seen = {
            gateway.get("/hotel-detail/health", headers={"X-Route-Key": "proj-pair"}).headers["X-Instance"]
            for _ in range(4)
        }
        assert seen == {"proj-pair/hotel-detail/1", "proj-pair/hotel-detail/2"}
    finally:
        assert api.delete("/v1/environments/proj-pair").status_code == 204
