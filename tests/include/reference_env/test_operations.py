"""Deploy, restart, kill and rotation against real instance processes, observed through the gateway."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from refenv_helpers import deploy, instance, pid_alive, run_chain, set_rotation, stats, wait_operation


@pytest.fixture
def hotel_search_2_back_at_1_0_0(api: httpx.Client) -> Iterator[None]:
    yield
    set_rotation(api, "baseline", "hotel-search", 2, False)
    deploy(api, "baseline", "hotel-search", 2, "1.0.0")
    set_rotation(api, "baseline", "hotel-search", 2, True).raise_for_status()


def test_deploy_completes_and_the_gateway_serves_the_new_version(
    api: httpx.Client, gateway: httpx.Client, hotel_search_2_back_at_1_0_0: None
) -> None:
    assert set_rotation(api, "baseline", "hotel-search", 2, False).json()["in_rotation"] is False
    op = deploy(api, "baseline", "hotel-search", 2, "1.2.0")
    assert op["state"] == "succeeded", op
    assert op["kind"] == "deploy" and op["target_version"] == "1.2.0" and op["finished_at"]
    inst = instance(api, "baseline", "hotel-search", 2)
    assert inst["version"] == "1.2.0" and inst["previous_version"] == "1.0.0"
    assert inst["state"] == "running" and inst["health"] == "healthy"
    assert set_rotation(api, "baseline", "hotel-search", 2, True).json()["in_rotation"] is True

    seen = {}
    for _ in range(6):
        response = gateway.get("/hotel-search/cities")
        seen[response.headers["X-Instance"]] = response.headers["X-Version"]
    assert seen == {"baseline/hotel-search/1": "1.0.0", "baseline/hotel-search/2": "1.2.0"}


def test_two_operations_on_one_instance_are_refused(api: httpx.Client) -> None:
    first = api.post("/v1/environments/baseline/services/hotel-detail/instances/2/restart")
    second = api.post("/v1/environments/baseline/services/hotel-detail/instances/2/restart")
    assert first.status_code == 202
    assert second.status_code == 409 and "busy" in second.json()["detail"]
    assert wait_operation(api, first.json())["state"] == "succeeded"


def test_rotation_keeps_traffic_off_the_out_instance_and_protects_the_last_one(
    api: httpx.Client, gateway: httpx.Client
) -> None:
    out = instance(api, "baseline", "quote", 2)
    assert set_rotation(api, "baseline", "quote", 2, False).status_code == 200
    try:
        served_before = stats(out["url"])
        for n in range(40):
            steps = run_chain(gateway, headers={"X-Trace-Id": f"rot-{n}"})
            assert steps["quote"].headers["X-Instance"] == "baseline/quote/1"
        assert stats(out["url"]) == served_before, "the out-of-rotation instance received requests"
        assert stats(instance(api, "baseline", "quote", 1)["url"]) >= 80  # POST quote + order's GET quote

        last = set_rotation(api, "baseline", "quote", 1, False)
        assert last.status_code == 409 and "last instance" in last.json()["detail"]
        assert instance(api, "baseline", "quote", 1)["in_rotation"] is True
    finally:
        set_rotation(api, "baseline", "quote", 2, True).raise_for_status()


def test_a_killed_instance_shows_as_not_healthy_and_a_restart_brings_it_back(
    api: httpx.Client, gateway: httpx.Client
) -> None:
    killed = api.post("/v1/sandbox/instances/baseline/order/2/kill")
    assert killed.status_code == 200, killed.text
    assert not pid_alive(killed.json()["pid"])
    dead = instance(api, "baseline", "order", 2)
    assert dead["state"] in ("failed", "stopped") and dead["health"] == "unhealthy" and dead["url"] is None
    report = api.get("/v1/environments/baseline/services/order/instances/2/health").json()
    assert report["health"] == "unhealthy"
    run_chain(gateway)  # the other instance keeps the link

    op = wait_operation(api, api.post("/v1/environments/baseline/services/order/instances/2/restart").json())
    assert op["state"] == "succeeded" and op["kind"] == "restart"
    back = instance(api, "baseline", "order", 2)
    assert back["state"] == "running" and back["health"] == "healthy" and back["version"] == "1.0.0"


def test_restarts_can_be_made_to_fail(api: httpx.Client) -> None:
    path = "/v1/sandbox/services/baseline/hotel-detail/restart-fails"
    assert api.put(path, json={"fails": True}).json() == {
        "environment": "baseline",
        "service": "hotel-detail",
        "fails": True,
    }
    try:
        op = wait_operation(
            api, api.post("/v1/environments/baseline/services/hotel-detail/instances/1/restart").json()
        )
        assert op["state"] == "failed"
        assert "baseline/hotel-detail/1" in op["message"] and "exited with code 3" in op["message"]
        failed = instance(api, "baseline", "hotel-detail", 1)
        assert failed["state"] == "failed" and failed["health"] == "unhealthy"
    finally:
        api.put(path, json={"fails": False}).raise_for_status()
    op = wait_operation(
        api, api.post("/v1/environments/baseline/services/hotel-detail/instances/1/restart").json()
    )
    assert op["state"] == "succeeded"
    assert instance(api, "baseline", "hotel-detail", 1)["health"] == "healthy"


def test_soft_routing_sends_only_the_changed_service_to_the_project_environment(
    api: httpx.Client, gateway: httpx.Client
) -> None:
    name = f"proj-{uuid.uuid4().hex[:8]}"
    created = api.post("/v1/environments", json={"name": name, "services": {"quote": "1.2.0"}})
    assert created.status_code == 201, created.text
    assert created.json()["routing_key"] == name and created.json()["services"] == ["quote"]
    try:
        project_quote = instance(api, name, "quote", 1)
        assert project_quote["state"] == "running" and project_quote["health"] == "healthy"
        before = stats(project_quote["url"])
        for _ in range(3):
            steps = run_chain(gateway, headers={"X-Route-Key": name})
            assert steps["quote"].headers["X-Instance"] == f"{name}/quote/1"
            assert steps["quote"].headers["X-Version"] == "1.2.0"
            for step in ("search", "detail", "order", "read_order"):
                assert steps[step].headers["X-Environment"] == "baseline", step
        assert stats(project_quote["url"]) == before + 6  # its POST + the order service's GET, per chain

        plain = run_chain(gateway)
        assert plain["quote"].headers["X-Environment"] == "baseline"
        unknown_key = gateway.get("/quote/health", headers={"X-Route-Key": "no-such-env"})
        assert unknown_key.headers["X-Environment"] == "baseline"
    finally:
        assert api.delete(f"/v1/environments/{name}").status_code == 204
    assert api.get(f"/v1/environments/{name}").status_code == 404
    fallback = gateway.post(
        "/quote/quotes",
        json={"hotel_id": "h-1001", "room_type": "single", "nights": 1, "guests": 1},
        headers={"X-Route-Key": name},
    )
    assert fallback.status_code == 201 and fallback.headers["X-Environment"] == "baseline"


def test_no_live_instance_in_rotation_answers_503_until_restarted(
    api: httpx.Client, gateway: httpx.Client
) -> None:
    for index in (1, 2):
        api.post(f"/v1/sandbox/instances/baseline/order/{index}/kill").raise_for_status()
    try:
        cut = gateway.get("/order/health")
        assert cut.status_code == 503 and cut.json()["error"] == "no live instance of 'order' is in rotation"
    finally:
        ops = [
            api.post(f"/v1/environments/baseline/services/order/instances/{i}/restart").json() for i in (1, 2)
        ]
        assert [wait_operation(api, op)["state"] for op in ops] == ["succeeded", "succeeded"]
    assert gateway.get("/order/health").status_code == 200
