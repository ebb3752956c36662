"""Airflow connections (``AIRFLOW_CONN_*`` in JSON form) that reach a reference environment."""

from __future__ import annotations

import json

ENV_API_CONN_ID = "baseline_env_api"
GATEWAY_CONN_ID = "baseline_gateway"
NOTIFICATION_CHANNELS = {"apprise_admins": "admins", "apprise_oncall": "oncall"}


def env_api_connections(
    api_port: int,
    token: str,
    *,
    gateway_port: int | None = None,
    conn_id: str = ENV_API_CONN_ID,
    host: str = "127.0.0.1",
) -> dict[str, str]:
    """The environment API connection (token as password), the gateway connection, and one
    Apprise connection per channel, each pointing at the reference server's notification sink."""
    conns: dict[str, dict] = {
        conn_id: {"conn_type": "http", "host": host, "port": api_port, "schema": "http", "password": token},
    }
    if gateway_port is not None:
        conns[GATEWAY_CONN_ID] = {"conn_type": "http", "host": host, "port": gateway_port, "schema": "http"}
    for apprise_id, channel in NOTIFICATION_CHANNELS.items():
        path = f"json://{host}:{api_port}/v1/notifications/{channel}"
        conns[apprise_id] = {"conn_type": "apprise", "extra": {"config": {"path": path, "tag": "all"}}}
    return {f"AIRFLOW_CONN_{cid.upper()}": json.dumps(conn) for cid, conn in conns.items()}
