"""The reference environment API: contract v1 (``baseline_guard.environment_contract``) over a sandbox.

Every ``/v1/*`` path needs ``Authorization: Bearer <token>``, except ``POST /v1/notifications/{channel}``
(the target of an Apprise ``json://`` URL). ``X-Trace-Id`` is echoed on every answer (one is made up
when the caller sends none) and written in the access log line.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import uuid
from datetime import datetime
from typing import Annotated, Any

from baseline_guard.environment_contract import (
    API_VERSION,
    AppliedTestConfig,
    CatalogVersion,
    ConfigDigest,
    Database,
    DeployRequest,
    Environment,
    HealthReport,
    Instance,
    Operation,
    ProjectEnvironmentCreate,
    Release,
    ReleaseCreate,
    RotationRequest,
    Service,
    TestConfig,
    TestConfigApply,
)
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from reference_env.errors import SandboxError
from reference_env.sandbox import Sandbox

access_log = logging.getLogger("reference_env.access")

SANDBOX_ONLY = "sandbox-only"
DESCRIPTION = f"""\
Environment API contract **{API_VERSION}** served by the reference environment manager, which drives a
sandbox of local service processes behind a gateway (see `docs/sandbox.md`).

* Every `/v1/*` call needs `Authorization: Bearer <token>`; send `X-Trace-Id` to correlate logs.
* Every write to the `production` environment answers **403**: production is record-only (its instance
  versions come from release records).
* Taking the last in-rotation instance of a service out of rotation answers **409** (it would cut the link).
  Deploying to an instance that is still in rotation is allowed: taking it out first is the caller's job.
* Endpoints tagged **{SANDBOX_ONLY}** exist only in this reference server (notification sink, fault
  injection); a company's environment manager does not need them.
"""

bearer = HTTPBearer(auto_error=False, description="The token the reference server was started with.")
Env = Annotated[str, Path(description="Environment name: production, baseline or a project environment.")]
Svc = Annotated[str, Path(description="Service name, e.g. quote.")]
Idx = Annotated[int, Path(description="Instance index (1-based).", ge=1)]


class RestartFailsRequest(BaseModel):
    fails: bool


class RestartFailsState(BaseModel):
    environment: str
    service: str
    fails: bool


class KillReport(BaseModel):
    environment: str
    service: str
    instance: int
    pid: int
    signal: str


class Notification(BaseModel):
    id: str
    channel: str
    received_at: datetime
    body: Any


class TraceIdMiddleware:
    """Echo (or make up) ``X-Trace-Id`` and log one line per call: method, path, status, trace id."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope["headers"]).get(b"x-trace-id", b"").decode("latin-1")[:128]
        trace_id = sent or uuid.uuid4().hex
        status = 500
        started = time.perf_counter()

        async def send_with_trace(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-trace-id", trace_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_trace)
        finally:
            access_log.info(
                "%s %s %d trace_id=%s %.1fms",
                scope["method"],
                scope["path"],
                status,
                trace_id,
                (time.perf_counter() - started) * 1000,
            )


def create_app(sandbox: Sandbox, token: str) -> FastAPI:
    """The API app over ``sandbox``; ``token`` is the bearer token every ``/v1/*`` call must carry."""
    if not token:
        raise ValueError("token must be a non-empty string")
    expected = token.encode()

    def require_token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(
                401,
                "missing bearer token: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(credentials.credentials.encode(), expected):
            raise HTTPException(401, "invalid bearer token", headers={"WWW-Authenticate": "Bearer"})

    app = FastAPI(
        title="Baseline Guard reference environment API", version=API_VERSION, description=DESCRIPTION
    )
    app.add_middleware(TraceIdMiddleware)

    @app.exception_handler(SandboxError)
    async def sandbox_error(_: Request, exc: SandboxError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.get("/health", tags=["meta"], summary="200 once the sandbox is up (no auth)")
    async def health() -> JSONResponse:
        if sandbox.ready:
            return JSONResponse({"status": "ok", "api_version": API_VERSION})
        return JSONResponse({"status": "starting"}, status_code=503)

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_token)])
    open_v1 = APIRouter(prefix="/v1")

    # --- environments and services ------------------------------------------------------------

    @v1.get("/environments", tags=["environments"])
    async def list_environments() -> list[Environment]:
        return sandbox.list_environments()

    @v1.post("/environments", status_code=201, tags=["environments"])
    async def create_environment(body: ProjectEnvironmentCreate) -> Environment:
        return await sandbox.create_project(body)

    @v1.get("/environments/{env}", tags=["environments"])
    async def get_environment(env: Env) -> Environment:
        return sandbox.environment(env)

    @v1.delete("/environments/{env}", status_code=204, tags=["environments"])
    async def delete_environment(env: Env) -> Response:
        await sandbox.delete_project(env)
        return Response(status_code=204)

    @v1.get("/environments/{env}/services", tags=["services"])
    async def list_services(env: Env) -> list[Service]:
        return await sandbox.services(env)

    @v1.get("/environments/{env}/services/{svc}", tags=["services"])
    async def get_service(env: Env, svc: Svc) -> Service:
        return await sandbox.service(env, svc)

    @v1.post("/environments/{env}/services/{svc}/instances/{i}/deploy", status_code=202, tags=["instances"])
    async def deploy(env: Env, svc: Svc, i: Idx, body: DeployRequest) -> Operation:
        return sandbox.deploy(env, svc, i, body.version)

    @v1.post("/environments/{env}/services/{svc}/instances/{i}/restart", status_code=202, tags=["instances"])
    async def restart(env: Env, svc: Svc, i: Idx) -> Operation:
        return sandbox.restart(env, svc, i)

    @v1.put("/environments/{env}/services/{svc}/instances/{i}/rotation", tags=["instances"])
    async def rotation(env: Env, svc: Svc, i: Idx, body: RotationRequest) -> Instance:
        return await sandbox.set_rotation(env, svc, i, body.in_rotation)

    @v1.get("/environments/{env}/services/{svc}/instances/{i}/health", tags=["instances"])
    async def instance_health(env: Env, svc: Svc, i: Idx) -> HealthReport:
        return await sandbox.instance_health(env, svc, i)

    @v1.get("/operations/{op_id}", tags=["instances"])
    async def get_operation(op_id: str) -> Operation:
        return sandbox.operation(op_id)

    # --- releases and configuration -----------------------------------------------------------

    @v1.get("/releases", tags=["releases"])
    async def list_releases(
        service: Annotated[str | None, Query(description="Only this service's releases.")] = None,
        until: Annotated[datetime | None, Query(description="Only releases at or before this time.")] = None,
    ) -> list[Release]:
        return sandbox.list_releases(service, until)

    @v1.post("/releases", status_code=201, tags=["releases"])
    async def record_release(body: ReleaseCreate) -> Release:
        return sandbox.record_release(body)

    @v1.get("/test-configs/{ref}", tags=["configuration"])
    async def get_test_config(ref: str) -> TestConfig:
        return sandbox.test_config(ref)

    @v1.get("/environments/production/services/{svc}/config-digest", tags=["configuration"])
    async def config_digest(svc: Svc) -> ConfigDigest:
        return sandbox.production_config_digest(svc)

    @v1.get("/environments/{env}/services/{svc}/test-config", tags=["configuration"])
    async def get_applied_test_config(env: Env, svc: Svc) -> AppliedTestConfig:
        return sandbox.applied_test_config(env, svc)

    @v1.put("/environments/{env}/services/{svc}/test-config", tags=["configuration"])
    async def apply_test_config(env: Env, svc: Svc, body: TestConfigApply) -> AppliedTestConfig:
        return sandbox.apply_test_config(env, svc, body.ref, body.values)

    @v1.get("/environments/{env}/databases", tags=["databases"])
    async def list_databases(env: Env) -> list[Database]:
        return sandbox.databases(env)

    @v1.get("/catalog", tags=["catalog"])
    async def list_catalog() -> list[CatalogVersion]:
        return sandbox.list_catalog()

    @v1.post("/catalog", status_code=201, tags=["catalog"])
    async def declare_version(body: CatalogVersion) -> CatalogVersion:
        return sandbox.declare(body)

    # --- sandbox-only -------------------------------------------------------------------------

    @open_v1.post(
        "/notifications/{channel}",
        status_code=201,
        tags=[SANDBOX_ONLY],
        summary="Notification sink (no auth): target of Apprise json://host:port/v1/notifications/<channel>",
    )
    async def receive_notification(channel: str, request: Request) -> Notification:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise HTTPException(
                400, f"notification body must be JSON (Apprise json:// sends it): {exc}"
            ) from exc
        return Notification.model_validate(sandbox.receive_notification(channel, body))

    @v1.get("/notifications", tags=[SANDBOX_ONLY], summary="Notifications received, oldest first")
    async def list_notifications(channel: str | None = None) -> list[Notification]:
        return [Notification.model_validate(n) for n in sandbox.list_notifications(channel)]

    @v1.delete("/notifications", status_code=204, tags=[SANDBOX_ONLY], summary="Forget every notification")
    async def clear_notifications() -> Response:
        sandbox.clear_notifications()
        return Response(status_code=204)

    @v1.post(
        "/sandbox/instances/{env}/{svc}/{i}/kill",
        tags=[SANDBOX_ONLY],
        summary="SIGKILL an instance's process (the API notices on its next read)",
    )
    async def kill_instance(env: Env, svc: Svc, i: Idx) -> KillReport:
        return KillReport.model_validate(await sandbox.kill(env, svc, i))

    @v1.put(
        "/sandbox/services/{env}/{svc}/restart-fails",
        tags=[SANDBOX_ONLY],
        summary="Make every restart of this service's instances fail (or work again)",
    )
    async def restart_fails(env: Env, svc: Svc, body: RestartFailsRequest) -> RestartFailsState:
        return RestartFailsState.model_validate(sandbox.set_restart_fails(env, svc, body.fails))

    @v1.get(
        "/sandbox/operations",
        tags=[SANDBOX_ONLY],
        summary="Every deploy/restart operation since the server started, oldest first",
    )
    async def list_operations(kind: str | None = None) -> list[Operation]:
        return sandbox.list_operations(kind)

    app.include_router(open_v1)
    app.include_router(v1)
    return app
