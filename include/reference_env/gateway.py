"""The sandbox gateway: ``/<service>/<path>`` to an in-rotation instance, with soft routing by ``X-Route-Key``.

A plain ASGI app (no framework: it sits on every business call) sharing the :class:`Sandbox` with the
API in the same event loop, so a rotation change applies to the very next request. One shared
``aiohttp.ClientSession`` keeps connections to the instances alive (aiohttp rather than httpx: the
gateway is on every business call, and httpx's async pool tops out near 500 requests/s here).
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from reference_env.sandbox import Sandbox

# Hop-by-hop headers (RFC 9110 7.6.1) and the ones the client or server recomputes.
_DROPPED_REQUEST_HEADERS = frozenset(
    {
        b"host",
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"content-length",
        b"upgrade",
        b"te",
        b"trailer",
        b"proxy-connection",
    }
)
_DROPPED_RESPONSE_HEADERS = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"server", b"date"}
)
ROUTE_KEY = b"x-route-key"
UPSTREAM_TIMEOUT_S = 30.0


class Gateway:
    """ASGI app: call :meth:`open` before serving and :meth:`aclose` after."""

    def __init__(self, sandbox: Sandbox, *, max_connections: int = 256) -> None:
        self.sandbox = sandbox
        self.services = frozenset(sandbox.topology.service_names)
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.max_connections, keepalive_timeout=30),
            timeout=aiohttp.ClientTimeout(total=UPSTREAM_TIMEOUT_S),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        raw_path: bytes | None = scope.get("raw_path")  # percent-encoding kept, forwarded as sent
        path = raw_path.decode("latin-1") if raw_path else scope["path"]
        service, _, rest = path.lstrip("/").partition("/")
        if service not in self.services:
            await _send_json(
                send, 404, {"error": f"unknown service {service!r}", "services": sorted(self.services)}
            )
            return
        body = await _read_body(receive)
        route_key = None
        headers: list[tuple[str, str]] = []
        for name, value in scope["headers"]:
            if name == ROUTE_KEY:
                route_key = value.decode("latin-1")
            if name not in _DROPPED_REQUEST_HEADERS:
                headers.append((name.decode("latin-1"), value.decode("latin-1")))
        instance = self.sandbox.pick_instance(service, route_key)
        if instance is None:
            await _send_json(
                send, 503, {"error": f"no live instance of {service!r} is in rotation", "service": service}
            )
            return
        url = f"{instance.url}/{rest}"
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        assert self._session is not None, "Gateway.open() was not called"
        instance.in_flight += 1
        try:
            async with self._session.request(
                scope["method"], url, headers=headers, data=body or None, allow_redirects=False
            ) as response:
                content = await response.read()
                status = response.status
                raw_headers = response.raw_headers
        except (aiohttp.ClientError, TimeoutError) as exc:
            await _send_json(
                send,
                502,
                {
                    "error": f"instance {instance.label} did not answer ({type(exc).__name__})",
                    "instance": instance.label,
                },
            )
            return
        finally:
            instance.in_flight -= 1
        out = [(k.lower(), v) for k, v in raw_headers if k.lower() not in _DROPPED_RESPONSE_HEADERS]
        out.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": content})


async def _read_body(receive: Any) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _send_json(send: Any, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
