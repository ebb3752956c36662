"""The guard's own PostgreSQL database (connection ``baseline_guard_db``): the decision and incident
state the DAGs keep between runs, beside the check history.

The SQL lives in the engine (:mod:`baseline_guard.health.guard_state`); this hook only opens the
connection from the Airflow connection and hands out the stores, closing the connection after use.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from baseline_guard.hooks.postgres import PgToolsHook

if TYPE_CHECKING:
    from baseline_guard.health.guard_state import ConfigDecisionStore, PatrolIncidentStore

GUARD_DB_CONN_ID = "baseline_guard_db"


class GuardDbHook(PgToolsHook):
    """The ``baseline_guard`` database as the DAGs' state store.

    :param postgres_conn_id: Airflow connection of the database (its schema names the database)
    """

    default_conn_name = GUARD_DB_CONN_ID
    hook_name = "Baseline Guard state database"

    def __init__(self, postgres_conn_id: str = GUARD_DB_CONN_ID, **kwargs: Any) -> None:
        super().__init__(postgres_conn_id=postgres_conn_id, **kwargs)

    @contextmanager
    def state_connection(self) -> Iterator[Any]:
        """A psycopg2 connection in UTC, closed afterwards."""
        from baseline_guard.health.guard_state import connect

        conn = connect(self.dsn(), connect_timeout=10)
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def config_decisions(self) -> Iterator[ConfigDecisionStore]:
        from baseline_guard.health.guard_state import ConfigDecisionStore

        with self.state_connection() as conn:
            yield ConfigDecisionStore(conn)

    @contextmanager
    def patrol_incidents(self) -> Iterator[PatrolIncidentStore]:
        from baseline_guard.health.guard_state import PatrolIncidentStore

        with self.state_connection() as conn:
            yield PatrolIncidentStore(conn)
