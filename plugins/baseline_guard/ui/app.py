"""The page app: ``/`` (the "Baseline health" page) and ``/api/health`` (the same data as JSON)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg2
import psycopg2.pool
from fastapi import Depends, FastAPI, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse

from baseline_guard.health import protection
from baseline_guard.health.dburl import CONN_ID, dsn
from baseline_guard.health.report import HealthReport, build_report
from baseline_guard.health.store import HistoryStore
from baseline_guard.ui.auth import airflow_user
from baseline_guard.ui.page import render

URL_PREFIX = "/baseline-guard"
ReportSource = Callable[[], HealthReport]


class HistoryReports:
    """Builds the health report from the history database, over a small connection pool."""

    def __init__(self, dsn: Callable[[], str], *, max_connections: int = 4) -> None:
        self._dsn = dsn
        self._max = max_connections
        self._pool: psycopg2.pool.ThreadedConnectionPool | None = None
        self._lock = threading.Lock()

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        with self._lock:
            if self._pool is None:
                self._pool = psycopg2.pool.ThreadedConnectionPool(1, self._max, self._dsn())
        conn = self._pool.getconn()
        broken = False
        try:
            yield conn
        except psycopg2.Error:
            broken = True
            raise
        finally:
            self._pool.putconn(conn, close=broken or bool(conn.closed))

    def __call__(self) -> HealthReport:
        with self._connection() as conn:
            return build_report(HistoryStore(conn), datetime.now(UTC), providers=protection.providers())


def airflow_connection_dsn(conn_id: str = CONN_ID) -> str:
    """The history database's URL from the Airflow connection (environment, secrets backend or metadata DB)."""
    from airflow.models.connection import Connection

    c = Connection.get_connection_from_secrets(conn_id)
    return dsn(c.host, c.port, c.login, c.password, c.schema)


def create_app(reports: ReportSource, *, dependencies: Sequence[Any] = (Depends(airflow_user),)) -> FastAPI:
    """The page app; every route depends on ``dependencies`` (Airflow's authentication by default)."""
    app = FastAPI(
        title="Baseline health",
        dependencies=list(dependencies),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.middleware("http")
    async def never_cached(request: Request, call_next: Any) -> Response:
        # every environment, held approvals, presigned report links: for this user, now, nowhere else
        response = await call_next(request)
        response.headers["Cache-Control"] = "no-store, private"
        return response

    def current() -> HealthReport:
        try:
            return reports()
        except (psycopg2.Error, LookupError) as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, f"check history unavailable: {type(exc).__name__}"
            ) from None

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return render(current())

    @app.get("/api/health", response_model=HealthReport)
    def health() -> HealthReport:
        return current()

    return app


def airflow_app() -> FastAPI:
    """The app the plugin mounts: history from the ``baseline_guard_db`` connection, protection slots from the
    environment API, the backup store and Airflow's metadata DB (read at most once a minute), Airflow's auth."""
    from baseline_guard.health.protection_state import register_airflow_provider

    register_airflow_provider()
    return create_app(HistoryReports(airflow_connection_dsn))
