"""PostgreSQL servers for the engines and the client tools, from the Postgres provider's connections.

One adapter from an Airflow ``postgres`` connection to what the engines take: a
:class:`~baseline_guard.backup.pgtools.PgConnectionInfo` (backup, restore, drill, swap) or a
``postgresql://`` DSN (schema sync, check history). Passwords are masked in logs the moment
they are read, and reach ``pg_dump``/``pg_restore`` only through the engine's minimal environment.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from airflow.providers.postgres.hooks.postgres import PostgresHook

from baseline_guard.errors import InvalidInput

if TYPE_CHECKING:
    from baseline_guard.backup.pgtools import PgConnectionInfo

PG_BIN_DIR_ENV = "BASELINE_GUARD_PG_BIN_DIR"


def tools_dir(pg_bin_dir: str | None = None) -> str | None:
    """Where ``pg_dump``/``pg_restore`` are: ``pg_bin_dir``, else ``$BASELINE_GUARD_PG_BIN_DIR``, else PATH (None)."""
    return pg_bin_dir or os.environ.get(PG_BIN_DIR_ENV) or None


class PgToolsHook(PostgresHook):
    """A PostgreSQL server as the engines and ``pg_dump``/``pg_restore`` see it.

    :param postgres_conn_id: Airflow connection of the server (``schema`` is the default database)
    :param pg_bin_dir: directory of the client tools; default ``$BASELINE_GUARD_PG_BIN_DIR``, else PATH
    """

    hook_name = "Baseline Guard PostgreSQL tools"

    def __init__(self, *args: Any, pg_bin_dir: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pg_bin_dir = pg_bin_dir

    @property
    def tools_dir(self) -> str | None:
        return tools_dir(self.pg_bin_dir)

    def connection_info(self, database: str | None = None) -> PgConnectionInfo:
        """Where ``database`` (default: the connection's) lives and how to log in."""
        from airflow.sdk.log import mask_secret

        from baseline_guard.backup.pgtools import PgConnectionInfo

        conn = self.get_connection(self.get_conn_id())
        name = database or conn.schema
        if not name:
            raise InvalidInput(
                f"connection {self.get_conn_id()} names no database (schema) and none was given: "
                "expected the database name in the connection's schema or as an argument"
            )
        if conn.password:
            mask_secret(conn.password)
        return PgConnectionInfo(
            host=conn.host or "localhost",
            port=int(conn.port or 5432),
            user=conn.login or "postgres",
            password=conn.password or None,
            database=name,
            sslmode=conn.extra_dejson.get("sslmode"),
        )

    def dsn(self, database: str | None = None) -> str:
        """A ``postgresql://`` DSN for ``database`` (holds the password: masked, never logged)."""
        from airflow.sdk.log import mask_secret

        url = self.sqlalchemy_url
        if database:
            url = url.set(database=database)
        if url.password:
            mask_secret(str(url.password))
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        mask_secret(dsn)
        return dsn
