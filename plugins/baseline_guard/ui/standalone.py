"""Serve the page outside Airflow's api-server, guarded the same way: Airflow's configured auth manager
(its ``/auth/token`` endpoint mounted too) validates the JWT. For the browser tests and the benchmark.

    AIRFLOW__CORE__AUTH_MANAGER=... AIRFLOW__API_AUTH__JWT_SECRET=... AIRFLOW_CONN_BASELINE_GUARD_DB=... \\
    python -m baseline_guard.ui.standalone --port 8099
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from baseline_guard.ui.app import URL_PREFIX, airflow_app


def ensure_revoked_token_table() -> None:
    """Airflow checks every token against its ``revoked_token`` table (logouts): without a migrated
    metadata database (e.g. a fresh SQLite file), create just that table from Airflow's own model."""
    from airflow import settings
    from airflow.models.revoked_token import RevokedToken

    RevokedToken.__table__.create(settings.engine, checkfirst=True)


def standalone_app() -> FastAPI:
    from airflow.api_fastapi.app import init_auth_manager

    ensure_revoked_token_table()
    page = airflow_app()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with page.router.lifespan_context(page):  # as Airflow's api-server enters its mounted apps'
            yield

    root = FastAPI(title="Baseline health (standalone)", lifespan=lifespan)
    init_auth_manager(root)  # the auth manager, and its /auth routes (POST /auth/token)
    root.mount(URL_PREFIX, page)
    return root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(standalone_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
