"""EnvironmentHook transport behaviour against a real, deliberately unreliable HTTP server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from baseline_guard.hooks.environment import EnvironmentApiError, EnvironmentHook
from local_stack.ports import free_port


class FlakyServer:
    """Answers /v1/environments; the first ``failures`` requests get ``fail_status`` (or a hang)."""

    def __init__(self) -> None:
        self.failures = 0
        self.fail_status = 503
        self.hang_s = 0.0
        self.requests: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> None:
                server.requests.append({k.lower(): v for k, v in self.headers.items()} | {"path": self.path})
                if server.failures > 0:
                    server.failures -= 1
                    if server.hang_s:
                        time.sleep(server.hang_s)
                    self._send(server.fail_status, {"detail": "temporarily broken"})
                    return
                if self.path.startswith("/v1/environments/nowhere"):
                    self._send(404, {"detail": "environment 'nowhere' not found"})
                    return
                self._send(200, [{"name": "baseline", "kind": "baseline", "services": ["quote"]}])

            do_GET = _answer
            do_POST = _answer

            def _send(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> Iterator[FlakyServer]:
    server = FlakyServer()
    monkeypatch.setenv(
        "AIRFLOW_CONN_FLAKY_ENV_API",
        json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": server.port, "password": "tok-123456"}),
    )
    yield server
    server.httpd.shutdown()


def _hook(**kwargs: object) -> EnvironmentHook:
    return EnvironmentHook("flaky_env_api", backoff_s=0.01, **kwargs)  # type: ignore[arg-type]


def test_retries_5xx_then_succeeds_with_same_trace_id(flaky: FlakyServer) -> None:
    flaky.failures = 2
    envs = _hook(trace_id="trace-abc").list_environments()
    assert [e.name for e in envs] == ["baseline"]
    assert len(flaky.requests) == 3
    assert {r["x-trace-id"] for r in flaky.requests} == {"trace-abc"}
    assert {r["authorization"] for r in flaky.requests} == {"Bearer tok-123456"}


def test_gives_up_after_max_retries_naming_call_and_status(flaky: FlakyServer) -> None:
    flaky.failures = 10
    with pytest.raises(EnvironmentApiError) as err:
        _hook(max_retries=2).list_environments()
    assert err.value.status == 503
    assert "list environments" in str(err.value) and "temporarily broken" in str(err.value)
    assert len(flaky.requests) == 3


def test_4xx_is_not_retried(flaky: FlakyServer) -> None:
    with pytest.raises(EnvironmentApiError) as err:
        _hook().get_environment("nowhere")
    assert err.value.status == 404
    assert "environment 'nowhere' not found" in str(err.value)
    assert len(flaky.requests) == 1


def test_timeout_on_get_is_retried(flaky: FlakyServer) -> None:
    flaky.failures, flaky.hang_s = 1, 0.5
    envs = _hook(timeout=0.2).list_environments()
    assert envs[0].kind == "baseline"
    assert len(flaky.requests) == 2


def test_connection_refused_is_retried_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setenv(
        "AIRFLOW_CONN_DEAD_ENV_API", json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": port})
    )
    hook = EnvironmentHook("dead_env_api", max_retries=1, backoff_s=0.01)
    started = time.monotonic()
    with pytest.raises(EnvironmentApiError) as err:
        hook.list_environments()
    assert err.value.status is None and "ConnectError" in str(err.value)
    assert time.monotonic() - started < 5


def test_token_never_in_error_message(flaky: FlakyServer) -> None:
    flaky.failures = 10
    with pytest.raises(EnvironmentApiError) as err:
        _hook(max_retries=0).list_environments()
    assert "tok-123456" not in str(err.value)
