"""The REST guard: an ASGI middleware on Airflow's API server that refuses bad run conf before a run exists.

Registered by ``plugins/baseline_guard_plugin.py`` as a ``fastapi_root_middlewares`` entry. It
inspects the requests that create runs with a conf:

- ``POST /api/v2/dags/{dag_id}/dagRuns`` (REST clients, CI and the UI's trigger form alike);
- ``POST /api/v2/backfills`` and ``/backfills/dry_run`` (``dag_run_conf``).

The conf's keys are compared with the params the DAG declares (its latest serialized version), so
every DAG is covered without code of its own; sizes are bounded (``baseline_guard.strict_conf``).
A trigger's ``logical_date``, data interval and ``run_after`` must be now or ``null``
(``baseline_guard.run_dates``): a future date makes a run that never starts, a past one would date
what the run stores. A refusal is HTTP 400 ``{"detail": "..."}`` saying what was wrong and what is
expected.

Creating a backfill also needs the right to edit the DAG (``can_edit`` on ``DAG:<dag_id>``): the
auth manager cannot tell a backfill from a single trigger (both are "create runs of this DAG"),
and the CI role may only trigger single runs.

Only a caller whom Airflow authenticates and allows to create runs of that DAG is answered here;
anyone else goes on to Airflow, which answers 401/403/404 as usual, so the guard never tells a
stranger which params a DAG has.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baseline_guard.errors import InvalidInput
from baseline_guard.run_dates import check_trigger_dates
from baseline_guard.strict_conf import LIMITS, check_conf

MAX_BODY_BYTES = 4 * LIMITS.max_bytes
TRIGGER_PATH = re.compile(r"/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns/?$")
BACKFILL_PATH = re.compile(r"/api/v2/backfills(?:/dry_run)?/?$")


class StrictConfMiddleware:
    """Refuse unknown conf keys and oversize conf on the requests that create DAG runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        trigger, backfill = TRIGGER_PATH.search(path), BACKFILL_PATH.search(path)
        if not (trigger or backfill):
            await self.app(scope, receive, send)
            return
        body, complete = await _read_body(receive, MAX_BODY_BYTES)
        if not complete:  # says nothing about any DAG: refused whoever asks
            refusal: tuple[int, str] | None = (
                400,
                f"request body is larger than {MAX_BODY_BYTES} bytes; "
                f"a run conf may be at most {LIMITS.max_bytes} bytes as JSON",
            )
        else:
            refusal = await _refusal(scope, body, unquote(trigger["dag_id"]) if trigger else None)
        if refusal is not None:
            await _answer(send, *refusal)
            return
        await self.app(scope, _replay(body, receive), send)


async def _refusal(scope: Scope, body: bytes, trigger_dag_id: str | None) -> tuple[int, str] | None:
    """``(status, detail)`` when the request must be refused, ``None`` to let Airflow handle it."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None  # Airflow answers 422
    if not isinstance(payload, dict):
        return None
    dag_id = trigger_dag_id or payload.get("dag_id")
    conf = payload.get("conf") if trigger_dag_id else payload.get("dag_run_conf")
    if not isinstance(dag_id, str) or not (conf is None or isinstance(conf, dict)):
        return None
    user = await _user(scope)
    if user is None or not _may_create_runs(user, dag_id):
        return None  # Airflow answers 401/403
    if trigger_dag_id is None and not _may_edit(user, dag_id):
        return 403, (
            f"creating a backfill of {dag_id} needs edit permission on the DAG; "
            "this account may only trigger single runs"
        )
    params = await run_in_threadpool(_declared_params, scope, dag_id)
    if params is None:
        return None  # Airflow answers 404
    try:
        check_conf(dag_id, conf or {}, params)
        if trigger_dag_id is not None:
            check_trigger_dates(dag_id, payload, datetime.now(UTC))
    except InvalidInput as err:
        return 400, str(err)
    return None


def _declared_params(scope: Scope, dag_id: str) -> list[str] | None:
    from airflow.utils.session import create_session

    dag_bag = scope["app"].state.dag_bag
    with create_session() as session:
        dag = dag_bag.get_latest_version_of_dag(dag_id, session=session)
        return None if dag is None else list(dag.params.keys())


def _token(scope: Scope) -> str | None:
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from starlette.requests import HTTPConnection

    conn = HTTPConnection(scope)
    scheme, _, credentials = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    return conn.cookies.get(COOKIE_NAME_JWT_TOKEN)


async def _user(scope: Scope) -> Any | None:
    from airflow.api_fastapi.app import get_auth_manager

    token = _token(scope)
    if not token:
        return None
    try:
        return await get_auth_manager().get_user_from_token(token)
    except Exception:  # expired, forged, unknown user: Airflow itself answers 401/403
        return None


def _may_create_runs(user: Any, dag_id: str) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return get_auth_manager().is_authorized_dag(
        method="POST", access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=user
    )


def _may_edit(user: Any, dag_id: str) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    return get_auth_manager().is_authorized_dag(method="PUT", details=DagDetails(id=dag_id), user=user)


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The request body, and whether it was read whole (``False``: it is longer than ``limit``)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", False
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
