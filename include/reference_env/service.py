"""One sandbox service instance: a small stdlib HTTP server speaking the business API of docs/sandbox.md.

Run by the supervisor as ``python -m reference_env.service --service quote --environment baseline
--instance 1 --version 1.2.0 --gateway-url http://127.0.0.1:8081 [--behaviour ...]``. It binds
127.0.0.1 on a free port and prints ``LISTENING <port>`` on stdout (the only line it ever prints
there), so the supervisor learns the port without a race. The signing key for quote and order ids
comes from the environment variable ``REFENV_SANDBOX_KEY`` (never the command line).

Only the standard library is imported, so an instance starts in a few tens of milliseconds and
stays small at rest.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

KEY_ENV = "REFENV_SANDBOX_KEY"
SERVICES = ("hotel-search", "hotel-detail", "quote", "order")
BEHAVIOURS = ("healthy", "fails_health", "wrong_answer", "slow_start", "slow_response")
DEFAULT_DATA = Path(__file__).resolve().parent / "data" / "hotels.json"
DOWNSTREAM_TIMEOUT_S = 10.0
FORWARDED_HEADERS = ("X-Route-Key", "X-Trace-Id")


class SignedIdError(ValueError):
    """A quote/order id is malformed or its signature does not match."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_id(kind: str, payload: dict[str, Any], key: bytes) -> str:
    """A self-contained id: ``<kind>_<base64 payload>.<base64 hmac>``; any instance with the key can read it."""
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(key, f"{kind}.{body}".encode(), hashlib.sha256).digest()[:18]
    return f"{kind}_{body}.{_b64(mac)}"


def read_id(kind: str, signed: str, key: bytes) -> dict[str, Any]:
    prefix = f"{kind}_"
    if not signed.startswith(prefix) or signed.count(".") != 1:
        raise SignedIdError(f"not a {kind} id")
    body, mac = signed[len(prefix) :].split(".")
    try:
        expected = hmac.new(key, f"{kind}.{body}".encode(), hashlib.sha256).digest()[:18]
        if not hmac.compare_digest(expected, _unb64(mac)):
            raise SignedIdError(f"{kind} id signature does not match")
        payload = json.loads(_unb64(body))
    except (ValueError, TypeError) as exc:
        raise SignedIdError(f"malformed {kind} id") from exc
    if not isinstance(payload, dict):
        raise SignedIdError(f"malformed {kind} id")
    return payload


class HttpError(Exception):
    """Ends a request with ``status`` and a JSON error body."""

    def __init__(self, status: int, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.status = status
        self.body = {"error": error, **extra}


@dataclass
class Settings:
    service: str
    environment: str
    instance: int
    version: str
    behaviour: str
    start_delay_s: float
    latency_ms: int
    gateway_url: str
    key: bytes
    cities: list[str]
    hotels: dict[str, dict[str, Any]]
    started_at: float

    @property
    def instance_label(self) -> str:
        return f"{self.environment}/{self.service}/{self.instance}"

    def starting(self) -> bool:
        return self.behaviour == "slow_start" and time.monotonic() - self.started_at < self.start_delay_s

    @property
    def wrong(self) -> bool:
        return self.behaviour == "wrong_answer"


def _require_int(body: dict[str, Any], name: str, low: int, high: int) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise HttpError(400, f"'{name}' must be an integer from {low} to {high}", got=value)
    return value


def _require_str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise HttpError(400, f"'{name}' must be a non-empty string", got=value)
    return value


class BusinessLogic:
    """The business endpoints of each service; downstream calls go through the gateway."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings

    # --- downstream -------------------------------------------------------------------------

    def call(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any] | None]:
        """GET ``path`` through the gateway; (status, JSON body) or (0, None) when nothing answered."""
        request = urllib.request.Request(self.s.gateway_url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=DOWNSTREAM_TIMEOUT_S) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read() or b"null")
            except ValueError:
                return exc.code, None
        except (urllib.error.URLError, OSError, ValueError):
            return 0, None

    # --- hotel-search -----------------------------------------------------------------------

    def cities(self) -> tuple[int, dict[str, Any]]:
        return 200, {"cities": list(self.s.cities)}

    def search(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        city = (query.get("city") or [""])[0]
        if not city:
            raise HttpError(400, "query parameter 'city' is required", expected="?city=<name>")
        min_stars = 0
        if "min_stars" in query:
            try:
                min_stars = int(query["min_stars"][0])
            except ValueError as exc:
                raise HttpError(400, "'min_stars' must be an integer", got=query["min_stars"][0]) from exc
        searched = city
        if self.s.wrong and city in self.s.cities:
            searched = self.s.cities[(self.s.cities.index(city) + 1) % len(self.s.cities)]
        hotels = [
            {"id": h["id"], "name": h["name"], "city": h["city"], "stars": h["stars"]}
            for h in self.s.hotels.values()
            if h["city"] == searched and h["stars"] >= min_stars
        ]
        return 200, {"city": city, "count": len(hotels), "hotels": hotels}

    # --- hotel-detail -----------------------------------------------------------------------

    def detail(self, hotel_id: str) -> tuple[int, dict[str, Any]]:
        hotel = self.s.hotels.get(hotel_id)
        if hotel is None:
            raise HttpError(404, "unknown hotel", hotel_id=hotel_id)
        rooms = [
            {"type": r["type"], "price_per_night": 0.0 if self.s.wrong else float(r["price_per_night"])}
            for r in hotel["rooms"]
        ]
        fields = ("id", "name", "city", "stars", "currency")
        return 200, {**{k: hotel[k] for k in fields}, "rooms": rooms}

    # --- quote ------------------------------------------------------------------------------

    def create_quote(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        hotel_id = _require_str(body, "hotel_id")
        room_type = _require_str(body, "room_type")
        nights = _require_int(body, "nights", 1, 30)
        guests = _require_int(body, "guests", 1, 4)
        status, hotel = self.call(f"/hotel-detail/hotels/{urllib.parse.quote(hotel_id, safe='')}", headers)
        if status == 404:
            raise HttpError(404, "unknown hotel", hotel_id=hotel_id)
        if status != 200 or not isinstance(hotel, dict):
            raise HttpError(502, "hotel-detail failed", upstream_status=status)
        room = next((r for r in hotel.get("rooms", []) if r.get("type") == room_type), None)
        if room is None:
            raise HttpError(404, "unknown room type", hotel_id=hotel_id, room_type=room_type)
        price = float(room["price_per_night"])
        total = price if self.s.wrong else round(price * nights, 2)
        quote = {
            "hotel_id": hotel_id,
            "room_type": room_type,
            "nights": nights,
            "guests": guests,
            "price_per_night": price,
            "total": total,
            "currency": hotel.get("currency", "EUR"),
        }
        return 201, {"quote_id": sign_id("q", quote, self.s.key), **quote}

    def read_quote(self, quote_id: str) -> tuple[int, dict[str, Any]]:
        try:
            quote = read_id("q", quote_id, self.s.key)
        except SignedIdError as exc:
            raise HttpError(404, "unknown quote", reason=str(exc)) from exc
        return 200, {"quote_id": quote_id, **quote}

    # --- order ------------------------------------------------------------------------------

    def create_order(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        quote_id = _require_str(body, "quote_id")
        guest_name = _require_str(body, "guest_name")
        email = _require_str(body, "email")
        if "@" not in email:
            raise HttpError(400, "'email' must be an e-mail address", got=email)
        status, quote = self.call(f"/quote/quotes/{urllib.parse.quote(quote_id, safe='')}", headers)
        if status == 404:
            raise HttpError(404, "unknown quote", quote_id=quote_id)
        if status != 200 or not isinstance(quote, dict):
            raise HttpError(502, "quote failed", upstream_status=status)
        total = float(quote["total"]) + (10.0 if self.s.wrong else 0.0)
        order = {
            "status": "confirmed",
            "quote_id": quote_id,
            "hotel_id": quote["hotel_id"],
            "total": total,
            "currency": quote.get("currency", "EUR"),
            "guest_name": guest_name,
        }
        return 201, {"order_id": sign_id("o", order, self.s.key), **order}

    def read_order(self, order_id: str) -> tuple[int, dict[str, Any]]:
        try:
            order = read_id("o", order_id, self.s.key)
        except SignedIdError as exc:
            raise HttpError(404, "unknown order", reason=str(exc)) from exc
        return 200, {"order_id": order_id, **order}

    # --- dispatch ---------------------------------------------------------------------------

    def route(
        self, method: str, parts: list[str], query: dict[str, list[str]], body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        service = self.s.service
        if service == "hotel-search" and method == "GET" and parts == ["cities"]:
            return self.cities()
        if service == "hotel-search" and method == "GET" and parts == ["hotels"]:
            return self.search(query)
        if service == "hotel-detail" and method == "GET" and len(parts) == 2 and parts[0] == "hotels":
            return self.detail(parts[1])
        if service == "quote" and parts[:1] == ["quotes"]:
            if method == "POST" and len(parts) == 1:
                return self.create_quote(_json_object(body), headers)
            if method == "GET" and len(parts) == 2:
                return self.read_quote(parts[1])
        if service == "order" and parts[:1] == ["orders"]:
            if method == "POST" and len(parts) == 1:
                return self.create_order(_json_object(body), headers)
            if method == "GET" and len(parts) == 2:
                return self.read_order(parts[1])
        raise HttpError(404, "no such endpoint", method=method, path="/" + "/".join(parts), service=service)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"null")
    except ValueError as exc:
        raise HttpError(400, "body must be a JSON object", detail=str(exc)) from exc
    if not isinstance(data, dict):
        raise HttpError(400, "body must be a JSON object", got=type(data).__name__)
    return data


class _Counter:
    """Business requests served (``GET /stats``), counted across handler threads."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.value += 1


def make_handler(settings: Settings) -> type[BaseHTTPRequestHandler]:
    logic = BusinessLogic(settings)
    prefix = settings.service
    served = _Counter()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the gateway reuses connections
        disable_nagle_algorithm = True
        server_version = f"sandbox-{settings.service}/{settings.version}"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per request would dominate the instance's cost; errors go to stderr

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

        def _handle(self, method: str) -> None:
            url = urllib.parse.urlsplit(self.path)
            parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
            if parts[:1] == [prefix]:
                parts = parts[1:]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            forward = {h: self.headers[h] for h in FORWARDED_HEADERS if self.headers.get(h)}
            try:
                if parts == ["health"] and method == "GET":
                    status, payload = self._health()
                elif parts == ["stats"] and method == "GET":
                    status, payload = 200, {"requests": served.value, **self._identity()}
                else:
                    served.add()
                    status, payload = self._business(
                        method, parts, urllib.parse.parse_qs(url.query), body, forward
                    )
            except HttpError as exc:
                status, payload = exc.status, exc.body
            except Exception as exc:  # a bug must still answer, and say so on stderr
                print(f"{settings.instance_label}: unhandled {type(exc).__name__}: {exc}", file=sys.stderr)
                status, payload = 500, {"error": "internal error"}
            self._send(status, payload, forward.get("X-Trace-Id"))

        def _health(self) -> tuple[int, dict[str, Any]]:
            info = self._identity()
            if settings.behaviour == "fails_health":
                return 503, {"status": "failing", **info}
            if settings.starting():
                return 503, {"status": "starting", **info}
            return 200, {"status": "ok", **info}

        def _identity(self) -> dict[str, Any]:
            return {
                "service": settings.service,
                "version": settings.version,
                "instance": settings.instance_label,
            }

        def _business(
            self,
            method: str,
            parts: list[str],
            query: dict[str, list[str]],
            body: bytes,
            forward: dict[str, str],
        ) -> tuple[int, dict[str, Any]]:
            if settings.behaviour == "fails_health":
                raise HttpError(500, "internal error")
            if settings.starting():
                raise HttpError(503, "starting", retry_after_s=settings.start_delay_s)
            if settings.behaviour == "slow_response" and settings.latency_ms:
                time.sleep(settings.latency_ms / 1000)
            return logic.route(method, parts, query, body, forward)

        def _send(self, status: int, payload: dict[str, Any], trace_id: str | None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Service", settings.service)
            self.send_header("X-Version", settings.version)
            self.send_header("X-Instance", settings.instance_label)
            self.send_header("X-Environment", settings.environment)
            if trace_id:
                self.send_header("X-Trace-Id", trace_id)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m reference_env.service", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--service", required=True, choices=SERVICES)
    parser.add_argument("--environment", required=True)
    parser.add_argument("--instance", required=True, type=int)
    parser.add_argument("--version", required=True)
    parser.add_argument("--behaviour", default="healthy", choices=BEHAVIOURS)
    parser.add_argument("--start-delay-s", type=float, default=0.0)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--gateway-url", required=True)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--fail-start", action="store_true", help="exit with an error instead of starting")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    label = f"{args.environment}/{args.service}/{args.instance}"
    if args.fail_start:
        print(f"{label}: start refused (sandbox configured this service's restarts to fail)", file=sys.stderr)
        return 3
    key = os.environ.get(KEY_ENV, "")
    if not key:
        print(f"{label}: environment variable {KEY_ENV} (the id-signing key) is not set", file=sys.stderr)
        return 2
    data = json.loads(args.data.read_text())
    settings = Settings(
        service=args.service,
        environment=args.environment,
        instance=args.instance,
        version=args.version,
        behaviour=args.behaviour,
        start_delay_s=args.start_delay_s,
        latency_ms=args.latency_ms,
        gateway_url=args.gateway_url.rstrip("/"),
        key=key.encode(),
        cities=list(data["cities"]),
        hotels={h["id"]: h for h in data["hotels"]},
        started_at=time.monotonic(),
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(settings))
    server.daemon_threads = True
    print(f"LISTENING {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
