"""Hook for the company's environment manager, spoken through the environment API contract v1.

The contract (paths and models) is in :mod:`baseline_guard.environment_contract`; the
project's reference server publishes it as OpenAPI. A company adapts its own environment
manager to it, or subclasses this hook and overrides the calls that differ.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import tenacity
from airflow.sdk import BaseHook
from pydantic import TypeAdapter

from baseline_guard.environment_contract import (
    API_VERSION,
    TRACE_ID_HEADER,
    AppliedTestConfig,
    CatalogVersion,
    ConfigDigest,
    Database,
    Environment,
    EnvironmentKind,
    Health,
    HealthReport,
    Instance,
    Operation,
    Release,
    ReleaseCreate,
    Service,
    TestConfig,
)
from baseline_guard.errors import (
    EnvironmentApiError,
    EnvironmentApiUnavailable,
    InvalidInput,
    ProductionWriteRefused,
    SmokeCheckFailed,
)

if TYPE_CHECKING:
    from airflow.sdk import Connection

T = TypeVar("T")

_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})


class EnvironmentHook(BaseHook):
    """Talks to the environment manager over HTTP (contract v1).

    The connection: host (with or without ``http(s)://``), port, optional schema ``https``,
    and the bearer token in the password field. Every call carries ``X-Trace-Id``.

    :param env_api_conn_id: Airflow connection id of the environment API
    :param trace_id: id sent as ``X-Trace-Id`` on every call (a new one if not given)
    :param timeout: seconds for each HTTP call
    :param max_retries: retries on connection errors and 5xx answers, with exponential backoff
    :param backoff_s: first backoff delay; doubles on each retry
    """

    conn_name_attr = "env_api_conn_id"
    default_conn_name = "baseline_env_api"
    conn_type = "http"
    hook_name = "Baseline Guard environment API"

    def __init__(
        self,
        env_api_conn_id: str = default_conn_name,
        *,
        trace_id: str | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.env_api_conn_id = env_api_conn_id
        self.trace_id = trace_id or uuid.uuid4().hex
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self._aclient: httpx.AsyncClient | None = None

    # --- connection ----------------------------------------------------------------------

    @cached_property
    def base_url(self) -> str:
        return self._base_url(self.get_connection(self.env_api_conn_id))

    def get_conn(self) -> httpx.Client:
        """The HTTP client (created once, keeps connections alive)."""
        return self._client

    @cached_property
    def _client(self) -> httpx.Client:
        return httpx.Client(**self._client_args(self.get_connection(self.env_api_conn_id)))

    def _client_args(self, conn: Connection) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if conn.password:
            headers["Authorization"] = f"Bearer {conn.password}"
        return {"base_url": self._base_url(conn), "headers": headers, "timeout": self.timeout}

    @staticmethod
    def _base_url(conn: Connection) -> str:
        return f"{connection_base_url(conn)}/{API_VERSION}"

    async def _async_client(self) -> httpx.AsyncClient:
        """The async HTTP client of a trigger; the connection is read through the async-safe path."""
        if self._aclient is None:
            conn = await self.aget_connection(self.env_api_conn_id)
            self._aclient = httpx.AsyncClient(**self._client_args(conn))
        return self._aclient

    def close(self) -> None:
        if "_client" in self.__dict__:
            self._client.close()

    async def aclose(self) -> None:
        if self._aclient is not None:
            await self._aclient.aclose()
            self._aclient = None

    def test_connection(self) -> tuple[bool, str]:
        try:
            envs = self.list_environments()
        except Exception as err:
            return False, str(err)
        return True, f"connected: {len(envs)} environments"

    # --- transport -----------------------------------------------------------------------

    def _retry_args(self, call: str) -> dict[str, Any]:
        """Tenacity arguments (as ``HttpHook.run_with_advanced_retry`` takes them): retry what may pass."""
        return {
            "stop": tenacity.stop_after_attempt(self.max_retries + 1),
            "wait": tenacity.wait_exponential(multiplier=self.backoff_s, min=self.backoff_s),
            "retry": tenacity.retry_if_exception_type(EnvironmentApiUnavailable),
            "before_sleep": lambda state: self.log.warning(
                "environment API call %s failed, retry %d/%d in %.1fs (trace %s)",
                call,
                state.attempt_number,
                self.max_retries,
                state.next_action.sleep if state.next_action else 0.0,
                self.trace_id,
            ),
            "reraise": True,
        }

    def _call(
        self,
        call: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """One API call with retries on connection errors and 5xx; returns the decoded JSON."""
        headers = {TRACE_ID_HEADER: self.trace_id}
        for attempt in tenacity.Retrying(**self._retry_args(call)):
            with attempt:
                try:
                    response = self.get_conn().request(
                        method, path, json=json, params=params, headers=headers
                    )
                except httpx.TransportError as err:
                    raise _transport_error(call, method, err) from err
                return _decoded(call, response)
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    async def _acall(self, call: str, path: str) -> Any:
        """A GET from async code (a trigger), with the same retries as :meth:`_call`."""
        client = await self._async_client()
        headers = {TRACE_ID_HEADER: self.trace_id}
        async for attempt in tenacity.AsyncRetrying(**self._retry_args(call)):
            with attempt:
                try:
                    response = await client.get(path, headers=headers)
                except httpx.TransportError as err:
                    raise _transport_error(call, "GET", err) from err
                return _decoded(call, response)
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    def _get(self, call: str, path: str, model: type[T] | Any, **params: Any) -> T:
        return TypeAdapter(model).validate_python(self._call(call, "GET", path, params=_clean(params)))

    # --- environments and services -------------------------------------------------------

    def list_environments(self) -> list[Environment]:
        return self._get("list environments", "/environments", list[Environment])

    def get_environment(self, name: str) -> Environment:
        return self._get(f"get environment {name}", f"/environments/{name}", Environment)

    def require_writable(self, name: str) -> Environment:
        """The environment, after checking it is not production (raises ProductionWriteRefused)."""
        env = self.get_environment(name)
        if env.kind == EnvironmentKind.PRODUCTION:
            raise ProductionWriteRefused(
                f"environment '{name}' is of kind production: Baseline Guard never writes to production"
            )
        return env

    def list_services(self, environment: str) -> list[Service]:
        return self._get(
            f"list services of {environment}", f"/environments/{environment}/services", list[Service]
        )

    def get_service(self, environment: str, service: str) -> Service:
        return self._get(
            f"get service {environment}/{service}", f"/environments/{environment}/services/{service}", Service
        )

    def list_databases(self, environment: str) -> list[Database]:
        return self._get(
            f"list databases of {environment}", f"/environments/{environment}/databases", list[Database]
        )

    def list_databases_of(self, environment: str) -> list[Database]:
        """Like :meth:`list_databases`, but an unknown environment is bad input (no retry helps)."""
        try:
            return self.list_databases(environment)
        except EnvironmentApiError as err:
            if err.status == 404:
                raise InvalidInput(
                    f"environment {environment!r} is not known to the environment API"
                ) from err
            raise

    # --- instances -----------------------------------------------------------------------

    @staticmethod
    def _instance_path(environment: str, service: str, index: int) -> str:
        return f"/environments/{environment}/services/{service}/instances/{index}"

    def deploy(self, environment: str, service: str, index: int, version: str) -> Operation:
        """Start deploying ``version`` to one instance; poll the returned operation."""
        path = self._instance_path(environment, service, index) + "/deploy"
        body = self._call(
            f"deploy {environment}/{service}#{index} {version}", "POST", path, json={"version": version}
        )
        return Operation.model_validate(body)

    def restart(self, environment: str, service: str, index: int) -> Operation:
        path = self._instance_path(environment, service, index) + "/restart"
        return Operation.model_validate(self._call(f"restart {environment}/{service}#{index}", "POST", path))

    def get_operation(self, op_id: str) -> Operation:
        return self._get(f"get operation {op_id}", f"/operations/{op_id}", Operation)

    def set_rotation(self, environment: str, service: str, index: int, in_rotation: bool) -> Instance:
        path = self._instance_path(environment, service, index) + "/rotation"
        verb = "into" if in_rotation else "out of"
        body = self._call(
            f"put {environment}/{service}#{index} {verb} rotation",
            "PUT",
            path,
            json={"in_rotation": in_rotation},
        )
        return Instance.model_validate(body)

    def instance_health(self, environment: str, service: str, index: int) -> HealthReport:
        path = self._instance_path(environment, service, index) + "/health"
        return self._get(f"health of {environment}/{service}#{index}", path, HealthReport)

    def get_instance(self, environment: str, service: str, index: int) -> Instance:
        for inst in self.get_service(environment, service).instances:
            if inst.index == index:
                return inst
        raise InvalidInput(f"{environment}/{service} has no instance {index}")

    async def aget_operation(self, op_id: str) -> Operation:
        return Operation.model_validate(await self._acall(f"get operation {op_id}", f"/operations/{op_id}"))

    async def ainstance_health(self, environment: str, service: str, index: int) -> HealthReport:
        path = self._instance_path(environment, service, index) + "/health"
        body = await self._acall(f"health of {environment}/{service}#{index}", path)
        return HealthReport.model_validate(body)

    # --- waits: ``await_*`` are the long ones, awaited by a trigger so no worker slot waits ---

    def wait_until_drained(
        self, environment: str, service: str, index: int, *, timeout_s: float, poll_interval_s: float
    ) -> Instance:
        """The instance once the gateway has no request in flight to it, or as it is when time ran out."""
        retrying = tenacity.Retrying(**_poll_until(lambda i: i.in_flight == 0, timeout_s, poll_interval_s))
        return retrying(self.get_instance, environment, service, index)

    def wait_for_operation(self, op_id: str, *, timeout_s: float, poll_interval_s: float) -> Operation:
        """The operation once finished, or as it stands when ``timeout_s`` ran out."""
        done = _poll_until(lambda op: op.state.finished, timeout_s, poll_interval_s)
        return tenacity.Retrying(**done)(self.get_operation, op_id)

    async def await_operation(self, op_id: str, *, timeout_s: float, poll_interval_s: float) -> Operation:
        """:meth:`wait_for_operation` for async code (a trigger)."""
        done = _poll_until(lambda op: op.state.finished, timeout_s, poll_interval_s)
        return await tenacity.AsyncRetrying(**done)(self.aget_operation, op_id)

    def wait_until_healthy(
        self,
        environment: str,
        service: str,
        index: int,
        *,
        version: str | None = None,
        timeout_s: float,
        poll_interval_s: float,
    ) -> HealthReport:
        """The instance's health once healthy (at ``version`` when given), or the last report when time ran out."""
        done = _poll_until(lambda report: healthy_at(report, version), timeout_s, poll_interval_s)
        return tenacity.Retrying(**done)(self.instance_health, environment, service, index)

    async def await_healthy(
        self,
        environment: str,
        service: str,
        index: int,
        *,
        version: str | None = None,
        timeout_s: float,
        poll_interval_s: float,
    ) -> HealthReport:
        """The instance's health once healthy (at ``version`` when given), or the last report when time ran out."""

        done = _poll_until(lambda report: healthy_at(report, version), timeout_s, poll_interval_s)
        return await tenacity.AsyncRetrying(**done)(self.ainstance_health, environment, service, index)

    def smoke_check(self, url: str | None, paths: Sequence[str]) -> None:
        """GET each path directly on an instance (not through the gateway); each must answer 2xx."""
        if not url:
            raise SmokeCheckFailed("the instance has no address to smoke-check")
        with httpx.Client(base_url=url, timeout=self.timeout) as client:
            for path in paths:
                try:
                    response = client.get(path, headers={TRACE_ID_HEADER: self.trace_id})
                except httpx.TransportError as err:
                    raise SmokeCheckFailed(
                        f"smoke check GET {path} got no answer ({type(err).__name__})"
                    ) from err
                if response.status_code >= 300:
                    raise SmokeCheckFailed(f"smoke check GET {path} answered {response.status_code}")

    # --- releases and configuration ------------------------------------------------------

    def list_releases(self, service: str | None = None, until: datetime | None = None) -> list[Release]:
        """Production release records, oldest first; ``until`` bounds ``released_at`` (inclusive)."""
        return self._get(
            "list releases",
            "/releases",
            list[Release],
            service=service,
            until=until.isoformat() if until else None,
        )

    def create_release(self, release: ReleaseCreate) -> Release:
        body = self._call(
            f"record release {release.service} {release.version}",
            "POST",
            "/releases",
            json=release.model_dump(mode="json", exclude_none=True),
        )
        return Release.model_validate(body)

    def get_test_config(self, ref: str) -> TestConfig:
        return self._get(f"get test config {ref}", f"/test-configs/{ref}", TestConfig)

    def get_applied_test_config(self, environment: str, service: str) -> AppliedTestConfig:
        path = f"/environments/{environment}/services/{service}/test-config"
        return self._get(f"get test config of {environment}/{service}", path, AppliedTestConfig)

    def apply_test_config(
        self, environment: str, service: str, ref: str, values: dict[str, str]
    ) -> AppliedTestConfig:
        path = f"/environments/{environment}/services/{service}/test-config"
        body = self._call(
            f"apply test config {ref} to {environment}/{service}",
            "PUT",
            path,
            json={"ref": ref, "values": values},
        )
        return AppliedTestConfig.model_validate(body)

    def get_config_digest(self, service: str) -> ConfigDigest:
        path = f"/environments/production/services/{service}/config-digest"
        return self._get(f"get production config digest of {service}", path, ConfigDigest)

    def list_catalog(self) -> list[CatalogVersion]:
        return self._get("list release catalog", "/catalog", list[CatalogVersion])


def connection_base_url(conn: Connection) -> str:
    """``scheme://host[:port]`` of an HTTP-like Airflow connection (host may carry the scheme)."""
    host = (conn.host or "").rstrip("/")
    if not host:
        raise ValueError(
            f"connection '{conn.conn_id}' has no host; expected the service's host name or address"
        )
    if "://" not in host:
        host = f"{conn.schema or 'http'}://{host}"
    return f"{host}:{conn.port}" if conn.port else host


def healthy_at(report: HealthReport, version: str | None) -> bool:
    """Healthy, and at ``version`` when one is expected (an instance not reporting its version passes)."""
    return report.health == Health.HEALTHY and (version is None or report.version in (None, version))


def _poll_until(done: Callable[[Any], bool], timeout_s: float, poll_interval_s: float) -> dict[str, Any]:
    """Tenacity arguments to poll until ``done(value)``; when time runs out, the last value is returned."""
    return {
        "stop": tenacity.stop_after_delay(timeout_s),
        "wait": tenacity.wait_fixed(poll_interval_s),
        "retry": tenacity.retry_if_result(lambda value: not done(value)),
        "retry_error_callback": lambda state: state.outcome.result(),
    }


def _transport_error(call: str, method: str, err: httpx.TransportError) -> EnvironmentApiError:
    """No answer: worth a retry when the request cannot have been applied (refused) or may be repeated."""
    retriable = isinstance(err, httpx.ConnectError | httpx.ConnectTimeout) or method in _IDEMPOTENT
    error = EnvironmentApiUnavailable if retriable else EnvironmentApiError
    return error(call, None, f"{type(err).__name__}: {err}")


def _decoded(call: str, response: httpx.Response) -> Any:
    """The JSON body of a successful answer; a 5xx is worth a retry, a 4xx is not."""
    if response.status_code < 400:
        return response.json() if response.content else None
    error = EnvironmentApiUnavailable if response.status_code >= 500 else EnvironmentApiError
    raise error(call, response.status_code, _detail(response))


def _clean(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _detail(response: httpx.Response) -> str:
    """The server's error explanation, short, from a JSON ``detail`` or the body's start."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    return str(detail)[:500]
