"""The sandbox business API through the real gateway (docs/sandbox.md)."""

from __future__ import annotations

import httpx
from refenv_helpers import run_chain


def test_full_chain_through_the_gateway(gateway: httpx.Client) -> None:
    steps = run_chain(gateway, headers={"X-Trace-Id": "chain-1"})

    search = steps["search"].json()
    assert search["city"] == "Paris" and search["count"] == 3
    assert {h["city"] for h in search["hotels"]} == {"Paris"}
    detail = steps["detail"].json()
    assert detail["currency"] == "EUR"
    assert {r["type"] for r in detail["rooms"]} == {"single", "double", "suite"}
    double = next(r["price_per_night"] for r in detail["rooms"] if r["type"] == "double")
    quote = steps["quote"].json()
    assert steps["quote"].status_code == 201
    assert quote["price_per_night"] == double and quote["total"] == double * 2
    order = steps["order"].json()
    assert steps["order"].status_code == 201
    assert (
        order["status"] == "confirmed"
        and order["total"] == quote["total"]
        and order["quote_id"] == quote["quote_id"]
    )
    assert steps["read_order"].json() == order
    for name, response in steps.items():
        assert response.headers["X-Environment"] == "baseline", name
        assert response.headers["X-Instance"].startswith(f"baseline/{response.headers['X-Service']}/"), name
        assert response.headers["X-Version"], name
        assert response.headers["X-Trace-Id"] == "chain-1", name


def test_quote_ids_are_readable_by_any_instance_and_forgeries_are_refused(gateway: httpx.Client) -> None:
    created = gateway.post(
        "/quote/quotes", json={"hotel_id": "h-2001", "room_type": "suite", "nights": 3, "guests": 1}
    ).raise_for_status()
    quote = created.json()
    readers = set()
    for _ in range(4):  # round robin: both baseline quote instances read it
        read = gateway.get(f"/quote/quotes/{quote['quote_id']}")
        assert read.status_code == 200 and read.json() == quote
        readers.add(read.headers["X-Instance"])
    assert readers == {"baseline/quote/1", "baseline/quote/2"}

    forged = quote["quote_id"][:-4] + ("AAAA" if not quote["quote_id"].endswith("AAAA") else "BBBB")
    assert gateway.get(f"/quote/quotes/{forged}").status_code == 404
    assert gateway.get("/quote/quotes/not-a-quote").status_code == 404


def test_business_errors(gateway: httpx.Client) -> None:
    assert gateway.get("/hotel-search/cities").json() == {"cities": ["Paris", "Berlin", "Rome", "Lisbon"]}
    assert gateway.get("/hotel-search/hotels").status_code == 400
    unknown_city = gateway.get("/hotel-search/hotels", params={"city": "Atlantis"})
    assert unknown_city.status_code == 200 and unknown_city.json()["count"] == 0
    five_stars = gateway.get("/hotel-search/hotels", params={"city": "Rome", "min_stars": 5}).json()
    assert [h["stars"] for h in five_stars["hotels"]] == [5]
    assert gateway.get("/hotel-detail/hotels/h-0000").status_code == 404

    bad_nights = gateway.post(
        "/quote/quotes", json={"hotel_id": "h-1001", "room_type": "single", "nights": 31, "guests": 1}
    )
    assert bad_nights.status_code == 400 and "nights" in bad_nights.json()["error"]
    assert gateway.post("/quote/quotes", content=b"not json").status_code == 400
    unknown_hotel = gateway.post(
        "/quote/quotes", json={"hotel_id": "h-0000", "room_type": "single", "nights": 1, "guests": 1}
    )
    assert unknown_hotel.status_code == 404
    unknown_room = gateway.post(
        "/quote/quotes", json={"hotel_id": "h-1001", "room_type": "attic", "nights": 1, "guests": 1}
    )
    assert unknown_room.status_code == 404 and unknown_room.json()["error"] == "unknown room type"

    assert (
        gateway.post(
            "/order/orders", json={"quote_id": "q_x.y", "guest_name": "A", "email": "nope"}
        ).status_code
        == 400
    )
    assert (
        gateway.post(
            "/order/orders", json={"quote_id": "q_x.y", "guest_name": "A", "email": "a@b.c"}
        ).status_code
        == 404
    )
    assert gateway.get("/order/orders/o_forged.sig").status_code == 404

    unknown_service = gateway.get("/payments/health")
    assert unknown_service.status_code == 404 and "payments" in unknown_service.json()["error"]


def test_health_through_the_gateway(gateway: httpx.Client) -> None:
    response = gateway.get("/order/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and response.json()["service"] == "order"
