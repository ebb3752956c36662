"""The sandbox gateway: ``/<service>/<path>`` to an in-rotation instance, with soft routing by ``X-Route-Key``.

A plain ASGI app (no framework: it sits on every business call) sharing the :class:`Sandbox` with the
API in the same event loop, so a rotation change applies to the very next request. One shared
``httpx.AsyncClient`` keeps connections to the instances alive.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from reference_env.sandbox import Sandbox

# Hop-by-hop headers (RFC 9110 7.6.1) and the ones the client or server recomputes.
_DROPPED_REQUEST_HEADERS = frozenset({b"host", b"connection", b"keep-alive", b"transfer-encoding", b"content-length",
                                      b"upgrade", b"te", b"trailer", b"proxy-connection"})  # fmt: skip
_DROPPED_RESPONSE_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "server",
                                       "date", "content-encoding"})  # fmt: skip
ROUTE_KEY = b"x-route-key"
UPSTREAM_TIMEOUT_S = 30.0


class Gateway:
    """ASGI app: call :meth:`open` before serving and :meth:`aclose` after."""

    def __init__(self, sandbox: Sandbox, *, max_connections: int = 256) -> None:
        self.sandbox = sandbox
        self.services = frozenset(sandbox.topology.service_names)
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        self._client = httpx.AsyncClient(
            limits=self._limits, timeout=UPSTREAM_TIMEOUT_S, trust_env=False, follow_redirects=False
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        service, _, rest = path.lstrip("/").partition("/")
        if service not in self.services:
            await _send_json(
                send, 404, {"error": f"unknown service {service!r}", "services": sorted(self.services)}
            )
            return
        body = await _read_body(receive)
        route_key = None
        headers: list[tuple[bytes, bytes]] = []
        for name, value in scope["headers"]:
            if name == ROUTE_KEY:
                route_key = value.decode("latin-1")
            if name not in _DROPPED_REQUEST_HEADERS:
                headers.append((name, value))
        instance = self.sandbox.pick_instance(service, route_key)
        if instance is None:
            await _send_json(
                send, 503, {"error": f"no instance of {service!r} is in rotation", "service": service}
            )
            return
        url = f"{instance.url}/{rest}"
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        assert self._client is not None, "Gateway.open() was not called"
        instance.in_flight += 1
        try:
            response = await self._client.request(scope["method"], url, headers=headers, content=body)
        except httpx.HTTPError as exc:
            await _send_json(
                send, 502, {"error": f"instance {instance.label} did not answer ({type(exc).__name__})",
                            "instance": instance.label},
            )  # fmt: skip
            return
        finally:
            instance.in_flight -= 1
        content = response.content
        out = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in response.headers.multi_items()
            if k.lower() not in _DROPPED_RESPONSE_HEADERS
        ]
        out.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": response.status_code, "headers": out})
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
