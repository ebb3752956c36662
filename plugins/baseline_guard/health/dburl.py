"""The history database's address: a libpq URL, or an Airflow connection given as ``AIRFLOW_CONN_*``."""

from __future__ import annotations

import json
import os
from urllib.parse import quote

CONN_ID = "baseline_guard_db"


def sqlalchemy_url(dsn: str) -> str:
    """``postgresql+psycopg2://...`` for SQLAlchemy/Alembic from a ``postgres(ql)://`` URL."""
    scheme, sep, rest = dsn.partition("://")
    if not sep:
        raise ValueError(f"expected a postgresql:// URL, got {dsn.split('@')[-1]!r}")
    return f"postgresql+psycopg2://{rest}" if scheme in ("postgres", "postgresql") else dsn


def dsn_from_airflow_connection(value: str) -> str:
    """A libpq URL from an ``AIRFLOW_CONN_*`` value (JSON form or ``postgres://`` URI form)."""
    value = value.strip()
    if not value.startswith("{"):
        return "postgresql://" + value.split("://", 1)[1]
    conn = json.loads(value)
    return dsn(
        conn.get("host"), conn.get("port"), conn.get("login"), conn.get("password"), conn.get("schema")
    )


def dsn(
    host: str | None, port: int | str | None, login: str | None, password: str | None, database: str | None
) -> str:
    """A libpq URL from an Airflow connection's fields (password percent-encoded)."""
    user = quote(str(login or ""), safe="")
    auth = f"{user}:{quote(str(password), safe='')}@" if password else (f"{user}@" if user else "")
    return f"postgresql://{auth}{host or 'localhost'}{f':{port}' if port else ''}/{database or ''}"


def dsn_from_environment(conn_id: str = CONN_ID) -> str:
    """The history database from ``BASELINE_GUARD_DB_URL`` or ``AIRFLOW_CONN_<CONN_ID>``."""
    if url := os.environ.get("BASELINE_GUARD_DB_URL"):
        return url
    var = f"AIRFLOW_CONN_{conn_id.upper()}"
    if value := os.environ.get(var):
        return dsn_from_airflow_connection(value)
    raise LookupError(f"set BASELINE_GUARD_DB_URL or {var} to reach the check-history database")
