"""Each catalog behaviour behaves as docs/sandbox.md declares, in throw-away project environments."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from refenv_helpers import instance, wait_operation

QUOTE = {"hotel_id": "h-1001", "room_type": "double", "nights": 3, "guests": 2}


@pytest.fixture
def project(api: httpx.Client) -> Iterator[Callable[[dict[str, str]], str]]:
    """Create project environments on demand; delete them afterwards."""
    created: list[str] = []

    def make(services: dict[str, str]) -> str:
        name = f"beh-{uuid.uuid4().hex[:8]}"
        response = api.post("/v1/environments", json={"name": name, "services": services})
        assert response.status_code == 201, response.text
        created.append(name)
        return name

    yield make
    for name in created:
        api.delete(f"/v1/environments/{name}")


def test_wrong_answer_search_quote_and_order(
    gateway: httpx.Client, project: Callable[[dict[str, str]], str]
) -> None:
    env = project({"hotel-search": "1.9.2-wrong", "quote": "1.9.2-wrong", "order": "1.9.2-wrong"})
    key = {"X-Route-Key": env}
    search = gateway.get("/hotel-search/hotels", params={"city": "Paris"}, headers=key)
    assert search.status_code == 200 and search.headers["X-Version"] == "1.9.2-wrong"
    assert search.json()["count"] > 0 and all(h["city"] != "Paris" for h in search.json()["hotels"])

    quote = gateway.post("/quote/quotes", json=QUOTE, headers=key).json()
    assert quote["price_per_night"] == 130.0 and quote["total"] == 130.0  # ignores nights

    order = gateway.post(
        "/order/orders",
        json={"quote_id": quote["quote_id"], "guest_name": "Bo", "email": "bo@x.org"},
        headers=key,
    )
    assert order.status_code == 201 and order.json()["total"] == quote["total"] + 10


def test_wrong_answer_detail_prices_every_room_at_zero(
    gateway: httpx.Client, project: Callable[[dict[str, str]], str]
) -> None:
    env = project({"hotel-detail": "1.9.2-wrong"})
    detail = gateway.get("/hotel-detail/hotels/h-1001", headers={"X-Route-Key": env})
    assert detail.status_code == 200 and [r["price_per_night"] for r in detail.json()["rooms"]] == [
        0.0,
        0.0,
        0.0,
    ]
    # the baseline quote, reached with the same key, prices from the wrong detail: the chain stays in the project
    quote = gateway.post("/quote/quotes", json=QUOTE, headers={"X-Route-Key": env})
    assert quote.headers["X-Environment"] == "baseline" and quote.json()["total"] == 0.0


def test_fails_health(
    api: httpx.Client, gateway: httpx.Client, project: Callable[[dict[str, str]], str]
) -> None:
    env = project({"quote": "1.9.1-unhealthy"})
    inst = instance(api, env, "quote", 1)
    assert inst["state"] == "running" and inst["health"] == "unhealthy"
    assert (
        api.get(f"/v1/environments/{env}/services/quote/instances/1/health").json()["health"] == "unhealthy"
    )
    assert gateway.get("/quote/health", headers={"X-Route-Key": env}).status_code == 503
    business = gateway.post("/quote/quotes", json=QUOTE, headers={"X-Route-Key": env})
    assert business.status_code == 500 and business.json() == {"error": "internal error"}
    order = gateway.post(
        "/order/orders",
        json={"quote_id": "q_x.y", "guest_name": "Bo", "email": "bo@x.org"},
        headers={"X-Route-Key": env},
    )
    assert order.status_code == 502 and order.json()["error"] == "quote failed"


def test_slow_start_is_starting_then_healthy(
    api: httpx.Client, gateway: httpx.Client, project: Callable[[dict[str, str]], str]
) -> None:
    env = project({"hotel-search": "1.9.4-slowstart"})
    key = {"X-Route-Key": env}
    assert instance(api, env, "hotel-search", 1)["health"] == "starting"
    early = gateway.get("/hotel-search/cities", headers=key)
    assert early.status_code == 503 and early.headers["X-Environment"] == env
    assert gateway.get("/hotel-search/health", headers=key).json()["status"] == "starting"

    deadline = time.monotonic() + 10
    while instance(api, env, "hotel-search", 1)["health"] == "starting" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert instance(api, env, "hotel-search", 1)["health"] == "healthy"
    later = gateway.get("/hotel-search/cities", headers=key)
    assert later.status_code == 200 and later.headers["X-Environment"] == env


def test_slow_response_answers_correctly_but_late(
    gateway: httpx.Client, project: Callable[[dict[str, str]], str]
) -> None:
    env = project({"hotel-detail": "1.9.3-slow"})
    started = time.monotonic()
    detail = gateway.get("/hotel-detail/hotels/h-1001", headers={"X-Route-Key": env})
    waited = time.monotonic() - started
    assert detail.status_code == 200 and detail.headers["X-Version"] == "1.9.3-slow"
    assert [r["price_per_night"] for r in detail.json()["rooms"]] == [100.0, 130.0, 250.0]
    assert waited >= 1.4  # the declared latency_ms=1500 is a behaviour, not a speed target
    with pytest.raises(httpx.ReadTimeout):
        gateway.get("/hotel-detail/hotels/h-1001", headers={"X-Route-Key": env}, timeout=0.5)


def test_a_version_that_cannot_start_fails_its_deploy_operation(
    api: httpx.Client, project: Callable[[dict[str, str]], str]
) -> None:
    """Deploy succeeds once the process listens; a process that dies first fails the operation."""
    env = project({"order": "1.1.0"})
    api.put(f"/v1/sandbox/services/{env}/order/restart-fails", json={"fails": True}).raise_for_status()
    restarted = api.post(f"/v1/environments/{env}/services/order/instances/1/restart")
    op = wait_operation(api, restarted.json())
    assert op["state"] == "failed" and "exited with code 3" in op["message"]
    deployed = api.post(
        f"/v1/environments/{env}/services/order/instances/1/deploy", json={"version": "1.2.0"}
    )
    op = wait_operation(api, deployed.json())
    assert op["state"] == "succeeded"  # restart-fails affects restarts only
    inst = instance(api, env, "order", 1)
    assert (inst["version"], inst["previous_version"], inst["health"]) == ("1.2.0", "1.1.0", "healthy")


def test_the_gateway_counts_requests_in_flight(
    api: httpx.Client, gateway: httpx.Client, project: Callable[[dict[str, str]], str]
) -> None:
    env = project({"hotel-detail": "1.9.3-slow"})
    assert instance(api, env, "hotel-detail", 1)["in_flight"] == 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = [
            pool.submit(gateway.get, "/hotel-detail/hotels/h-2001", headers={"X-Route-Key": env})
            for _ in range(2)
        ]
        counts = set()
        while not all(p.done() for p in pending):
            counts.add(instance(api, env, "hotel-detail", 1)["in_flight"])
            time.sleep(0.05)
        assert all(p.result().status_code == 200 for p in pending)
    assert 2 in counts, counts
    assert instance(api, env, "hotel-detail", 1)["in_flight"] == 0
