"""A real HTTP server with a faithful slice of the sandbox business API (docs/sandbox.md).

It stands in for the sandbox gateway in the engine tests: the four services' business endpoints
under ``/hotel-search``, ``/hotel-detail``, ``/quote``, ``/order``, two "instances" per service
answering in turn (``X-Instance: baseline/quote/1`` then ``.../2``), and catalog behaviours
(``fails_health``, ``wrong_answer``, ``slow_response``) switchable per service and instance. It records
every request's headers so tests can assert on ``X-Route-Key`` and ``X-Trace-Id``.

Extra endpoints under ``/test`` help test the engine itself (echo, delay, raw bodies).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from local_stack.ports import free_port

HOTELS_FILE = Path(__file__).resolve().parents[4] / "include" / "reference_env" / "data" / "hotels.json"
SERVICES = {"hotel-search": "search", "hotel-detail": "catalog", "quote": "pricing", "order": "booking"}


@dataclass
class Fault:
    behaviour: str  # fails_health | wrong_answer | slow_response
    latency_ms: int = 0
    instance: int | None = None  # 1 or 2; None: both instances
    version: str = "1.9.9-faulty"


@dataclass
class SandboxState:
    faults: dict[str, Fault] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    counters: dict[str, itertools.count] = field(default_factory=dict)

    def reset(self) -> None:
        self.faults.clear()
        self.requests.clear()
        self.orders.clear()
        self.counters.clear()


def build_app(state: SandboxState) -> FastAPI:
    data = json.loads(HOTELS_FILE.read_text())
    hotels = {h["id"]: h for h in data["hotels"]}
    app = FastAPI()

    async def answer(request: Request, service: str, status: int, body: Any) -> Response:
        """Apply the service's fault (if any) and add the instance headers."""
        counter = state.counters.setdefault(service, itertools.count())
        instance = next(counter) % 2 + 1
        fault = state.faults.get(service)
        if fault and fault.instance not in (None, instance):
            fault = None
        state.requests.append(
            {
                "service": service,
                "path": request.url.path,
                "headers": dict(request.headers),
                "instance": instance,
            }
        )
        version = fault.version if fault else "1.0.0"
        headers = {
            "X-Service": service,
            "X-Instance": f"baseline/{service}/{instance}",
            "X-Version": version,
            "X-Environment": "baseline",
        }
        if fault and fault.behaviour == "fails_health":
            return JSONResponse({"error": "internal error"}, status_code=500, headers=headers)
        if fault and fault.behaviour == "slow_response":
            await asyncio.sleep(fault.latency_ms / 1000)
        if fault and fault.behaviour == "wrong_answer" and status < 300:
            body = wrong(service, body)
        return JSONResponse(body, status_code=status, headers=headers)

    def wrong(service: str, body: dict[str, Any]) -> dict[str, Any]:
        body = json.loads(json.dumps(body))
        if service == "hotel-search" and "hotels" in body:
            other = next(c for c in data["cities"] if c != body["city"])
            body["hotels"] = [_summary(h) for h in data["hotels"] if h["city"] == other]
        elif service == "hotel-detail" and "rooms" in body:
            for room in body["rooms"]:
                room["price_per_night"] = 0.0
        elif service == "quote" and "total" in body:
            body["total"] = body["price_per_night"]
        elif service == "order" and "total" in body:
            body["total"] = body["total"] + 10
        return body

    @app.get("/hotel-search/cities")
    async def cities(request: Request) -> Response:
        return await answer(request, "hotel-search", 200, {"cities": data["cities"]})

    @app.get("/hotel-search/hotels")
    async def search(request: Request) -> Response:
        city = request.query_params.get("city")
        if not city:
            return await answer(request, "hotel-search", 400, {"error": "query parameter 'city' is required"})
        min_stars = int(request.query_params.get("min_stars", "0"))
        found = [_summary(h) for h in data["hotels"] if h["city"] == city and h["stars"] >= min_stars]
        return await answer(
            request, "hotel-search", 200, {"city": city, "count": len(found), "hotels": found}
        )

    @app.get("/hotel-detail/hotels/{hotel_id}")
    async def detail(request: Request, hotel_id: str) -> Response:
        hotel = hotels.get(hotel_id)
        if hotel is None:
            return await answer(request, "hotel-detail", 404, {"error": "unknown hotel", "id": hotel_id})
        return await answer(request, "hotel-detail", 200, hotel)

    @app.post("/quote/quotes")
    async def create_quote(request: Request) -> Response:
        body = await _json(request)
        if not _valid_quote_request(body):
            return await answer(request, "quote", 400, {"error": "bad body"})
        hotel = hotels.get(body["hotel_id"])
        room = next((r for r in hotel["rooms"] if r["type"] == body["room_type"]), None) if hotel else None
        if room is None:
            return await answer(request, "quote", 404, {"error": "unknown hotel or room type"})
        price = room["price_per_night"]
        if "hotel-detail" in state.faults and state.faults["hotel-detail"].behaviour == "wrong_answer":
            price = 0.0  # the quote service reads prices from hotel-detail
        quote = {
            "hotel_id": body["hotel_id"],
            "room_type": body["room_type"],
            "nights": body["nights"],
            "guests": body["guests"],
            "price_per_night": price,
            "total": price * body["nights"],
            "currency": "EUR",
        }
        quote["quote_id"] = "q-" + base64.urlsafe_b64encode(json.dumps(quote).encode()).decode().rstrip("=")
        return await answer(request, "quote", 201, quote)

    @app.get("/quote/quotes/{quote_id}")
    async def get_quote(request: Request, quote_id: str) -> Response:
        quote = _decode_quote(quote_id)
        if quote is None:
            return await answer(request, "quote", 404, {"error": "unknown quote", "quote_id": quote_id})
        return await answer(request, "quote", 200, {**quote, "quote_id": quote_id})

    @app.post("/order/orders")
    async def create_order(request: Request) -> Response:
        body = await _json(request)
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str) for k in ("quote_id", "guest_name")
        ):
            return await answer(request, "order", 400, {"error": "bad body"})
        quote = _decode_quote(body["quote_id"])
        if quote is None:
            return await answer(request, "order", 404, {"error": "unknown quote"})
        order = {
            "order_id": "o-" + uuid.uuid4().hex[:12],
            "status": "confirmed",
            "quote_id": body["quote_id"],
            "hotel_id": quote["hotel_id"],
            "total": quote["total"],
            "currency": "EUR",
            "guest_name": body["guest_name"],
        }
        state.orders[order["order_id"]] = order
        return await answer(request, "order", 201, order)

    @app.get("/order/orders/{order_id}")
    async def get_order(request: Request, order_id: str) -> Response:
        order = state.orders.get(order_id)
        if order is None:
            return await answer(request, "order", 404, {"error": "unknown order"})
        return await answer(request, "order", 200, order)

    @app.api_route("/test/echo", methods=["GET", "POST", "PUT", "DELETE"])
    async def echo(request: Request) -> Response:
        state.requests.append({"service": "test", "path": request.url.path, "headers": dict(request.headers)})
        return JSONResponse(
            {
                "method": request.method,
                "query": dict(request.query_params),
                "headers": dict(request.headers),
                "json": await _json(request),
            },
            headers={"X-Service": "echo", "X-Instance": "test/echo/1", "X-Version": "0.0.1"},
        )

    @app.get("/test/delay")
    async def delay(ms: int = 0) -> Response:
        await asyncio.sleep(ms / 1000)
        return JSONResponse({"slept_ms": ms})

    @app.get("/test/raw")
    async def raw(body: str = "", status: int = 200, content_type: str = "text/plain") -> Response:
        return Response(body, status_code=status, media_type=content_type)

    @app.get("/test/status/{code}")
    async def status(code: int) -> Response:
        state.requests.append({"service": "test", "path": f"/test/status/{code}", "headers": {}})
        return JSONResponse({"status": code}, status_code=code)

    return app


def _summary(hotel: dict[str, Any]) -> dict[str, Any]:
    return {k: hotel[k] for k in ("id", "name", "city", "stars")}


async def _json(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _valid_quote_request(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    ints = {"nights": (1, 30), "guests": (1, 4)}
    for key, (low, high) in ints.items():
        value = body.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            return False
    return isinstance(body.get("hotel_id"), str) and isinstance(body.get("room_type"), str)


def _decode_quote(quote_id: str) -> dict[str, Any] | None:
    if not quote_id.startswith("q-"):
        return None
    encoded = quote_id[2:]
    try:
        return json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except ValueError:
        return None


class BusinessSandbox:
    """The slice above under uvicorn in a background thread, on a free port of 127.0.0.1."""

    def __init__(self) -> None:
        self.state = SandboxState()
        self.port = free_port()
        config = uvicorn.Config(
            build_app(self.state), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="business-sandbox", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> BusinessSandbox:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("business sandbox did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


_RESPONSE_TIME_FAILURE = re.compile(r"answered in \d+ ms, limit \d+ ms")


def only_response_time_failures(run: Any) -> bool:
    """True when a check run failed, and only on response-time limits (what a machine stall causes)."""
    messages = [s.failure.message for s in run.failed_scenarios if s.failure]
    return bool(messages) and all(_RESPONSE_TIME_FAILURE.search(m) for m in messages)
