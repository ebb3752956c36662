"""The page app: ``/`` (the "Baseline health" page), ``/api/health`` (the same data as JSON) and
``/metrics`` (its measures for Prometheus, :mod:`baseline_guard.ui.metrics`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg2
import psycopg2.pool
from fastapi import APIRouter, Depends, FastAPI, HTTPException, status
from fastapi.responses import HTMLResponse, Response

from baseline_guard.health import protection
from baseline_guard.health.dburl import CONN_ID, dsn
from baseline_guard.health.report import HealthReport, build_report
from baseline_guard.health.store import HistoryStore
from baseline_guard.ui.auth import airflow_user, metrics_reader
from baseline_guard.ui.metrics import (
    CONTENT_TYPE,
    CachedSnapshot,
    MetricsSnapshot,
    exposition,
    metrics_registry,
)
from baseline_guard.ui.page import render
from baseline_guard.ui.refresher import Refresher
from baseline_guard.ui.syncs import SyncOutcome, last_sync_outcomes

log = logging.getLogger(__name__)
URL_PREFIX = "/baseline-guard"
ReportSource = Callable[[], HealthReport]
T = TypeVar("T")


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

    def read(self, use: Callable[[HistoryStore], T]) -> T:
        with self._connection() as conn:
            return use(HistoryStore(conn))

    def __call__(self) -> HealthReport:
        return self.read(
            lambda store: build_report(store, datetime.now(UTC), providers=protection.providers())
        )

    def snapshot(self, syncs: Callable[[], Sequence[SyncOutcome]] | None = None) -> MetricsSnapshot:
        """The metrics' snapshot: the report and the history's totals as of one moment, on one connection;
        ``syncs`` read after (None in the snapshot when they cannot be read: logged)."""

        def read(store: HistoryStore) -> MetricsSnapshot:
            now = datetime.now(UTC)
            report = build_report(store, now, providers=protection.providers())
            return MetricsSnapshot(report, store.totals(now), None)

        found = self.read(read)
        outcomes: Sequence[SyncOutcome] | None = None
        if syncs is not None:
            try:
                outcomes = list(syncs())
            except Exception as exc:
                log.warning("sync runs not readable for the metrics: %s: %s", type(exc).__name__, exc)
        return MetricsSnapshot(found.report, found.totals, outcomes)


def airflow_connection_dsn(conn_id: str = CONN_ID) -> str:
    """The history database's URL from the Airflow connection (environment, secrets backend or metadata DB)."""
    from airflow.models.connection import Connection

    c = Connection.get_connection_from_secrets(conn_id)
    return dsn(c.host, c.port, c.login, c.password, c.schema)


def create_app(
    reports: ReportSource,
    *,
    dependencies: Sequence[Any] = (Depends(airflow_user),),
    metrics: Callable[[], MetricsSnapshot] | None = None,
    metrics_dependencies: Sequence[Any] = (Depends(metrics_reader),),
    refresher: Refresher | None = None,
) -> FastAPI:
    """The page app; the page's routes depend on ``dependencies`` (Airflow's authentication by default),
    ``/metrics`` (when ``metrics`` gives the snapshot) on ``metrics_dependencies`` (the metrics
    permission). ``refresher`` runs in the background while the app is served (its lifespan)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if refresher is not None:
            refresher.start()
        try:
            yield
        finally:
            if refresher is not None:
                refresher.stop()

    app = FastAPI(title="Baseline health", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    page = APIRouter(dependencies=list(dependencies))

    def current() -> HealthReport:
        try:
            return reports()
        except (psycopg2.Error, LookupError) as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, f"check history unavailable: {type(exc).__name__}"
            ) from None

    @page.get("/", response_class=HTMLResponse)
    def page_html() -> str:
        return render(current())

    @page.get("/api/health", response_model=HealthReport)
    def health() -> HealthReport:
        return current()

    app.include_router(page)
    if metrics is not None:
        registry = metrics_registry(metrics)

        @app.get("/metrics", dependencies=list(metrics_dependencies), response_class=Response)
        def metrics_text() -> Response:
            try:
                body = exposition(registry)
            except (psycopg2.Error, LookupError) as exc:
                raise HTTPException(
                    status.HTTP_503_SERVICE_UNAVAILABLE, f"check history unavailable: {type(exc).__name__}"
                ) from None
            return Response(body, media_type=CONTENT_TYPE)

    return app


def airflow_app() -> FastAPI:
    """The app the plugin mounts: history from the ``baseline_guard_db`` connection, protection slots from the
    environment API, the backup store and Airflow's metadata DB (read at most once a minute), Airflow's auth."""
    from baseline_guard.health.protection_state import register_airflow_provider

    provider = register_airflow_provider()
    reports = HistoryReports(airflow_connection_dsn)
    return create_app(
        reports,
        metrics=CachedSnapshot(lambda: reports.snapshot(last_sync_outcomes)),
        refresher=Refresher(provider.refresh, provider.ttl),
    )
