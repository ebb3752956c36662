"""Airflow connections that reach a reference environment: its API, gateway and notification sink.

Used by the local stack (with the S3 and PostgreSQL connections added) and by the tests.
"""

from __future__ import annotations

import json

ENV_API_CONN_ID = "baseline_env_api"
GATEWAY_CONN_ID = "baseline_gateway"
APPRISE_ADMINS_CONN_ID = "apprise_admins"
APPRISE_ONCALL_CONN_ID = "apprise_oncall"
NOTIFICATION_CHANNELS = {APPRISE_ADMINS_CONN_ID: "admins", APPRISE_ONCALL_CONN_ID: "oncall"}


def reference_env_connections(
    api_port: int,
    token: str,
    *,
    gateway_port: int | None = None,
    conn_id: str = ENV_API_CONN_ID,
    host: str = "127.0.0.1",
) -> dict[str, dict[str, object]]:
    """Connections by id in Airflow's JSON form: the environment API (token as password), the
    gateway, and one Apprise connection per channel posting to the reference server's sink."""
    conns: dict[str, dict[str, object]] = {
        conn_id: {"conn_type": "http", "host": host, "port": api_port, "schema": "http", "password": token},
    }
    if gateway_port is not None:
        conns[GATEWAY_CONN_ID] = {"conn_type": "http", "host": host, "port": gateway_port, "schema": "http"}
    for apprise_id, channel in NOTIFICATION_CHANNELS.items():
        path = f"json://{host}:{api_port}/v1/notifications/{channel}"
        conns[apprise_id] = {"conn_type": "apprise", "extra": {"config": {"path": path, "tag": "all"}}}
    return conns


def conn_env_var(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def as_env(conns: dict[str, dict[str, object]]) -> dict[str, str]:
    """``AIRFLOW_CONN_<ID>`` variables (JSON form) for connections by id."""
    return {conn_env_var(cid): json.dumps(conn) for cid, conn in conns.items()}


def env_api_connections(
    api_port: int, token: str, *, gateway_port: int | None = None, conn_id: str = ENV_API_CONN_ID
) -> dict[str, str]:
    """:func:`reference_env_connections` as ``AIRFLOW_CONN_*`` variables."""
    return as_env(reference_env_connections(api_port, token, gateway_port=gateway_port, conn_id=conn_id))
