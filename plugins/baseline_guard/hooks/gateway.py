"""The environments' gateway: where business checks send their calls (one gateway, routing by key).

An HTTP connection (``baseline_gateway``): host with or without ``http(s)://``, port, optional schema.
The business-check engine opens its own keep-alive client on :attr:`GatewayHook.base_url`; this hook
owns only the connection.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from baseline_guard.hooks.environment import connection_base_url

if TYPE_CHECKING:
    from airflow.sdk import Connection

GATEWAY_CONN_ID = "baseline_gateway"


class GatewayHook(BaseHook):
    """The gateway's address, from its Airflow connection.

    :param gateway_conn_id: Airflow connection id of the gateway
    """

    conn_name_attr = "gateway_conn_id"
    default_conn_name = GATEWAY_CONN_ID
    conn_type = "http"
    hook_name = "Baseline Guard environments' gateway"

    def __init__(self, gateway_conn_id: str = GATEWAY_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gateway_conn_id = gateway_conn_id

    @cached_property
    def base_url(self) -> str:
        """``scheme://host[:port]`` of the gateway."""
        return connection_base_url(self.get_connection(self.gateway_conn_id))

    def get_conn(self) -> Connection:
        """The gateway's Airflow connection: all this hook owns (no client; see :attr:`base_url`)."""
        return self.get_connection(self.gateway_conn_id)

    def test_connection(self) -> tuple[bool, str]:
        import httpx

        try:
            httpx.get(self.base_url, timeout=5)
        except Exception as exc:
            return False, f"gateway {self.base_url} not reachable: {exc}"
        return True, f"gateway {self.base_url} answers"
