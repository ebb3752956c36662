"""Production as the restore operators recognise it: by the environment API's kind and by identity.

A restore target is refused when its environment is of kind production (asked before anything
else), and when the database *is* one of production's (server ``system_identifier``, host, port and
name compared with what the environment API lists for production), whatever it is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from baseline_guard.environment_contract import EnvironmentKind
from baseline_guard.errors import EnvironmentApiError, InvalidInput
from baseline_guard.operators.base import pg_tools

if TYPE_CHECKING:
    from baseline_guard.backup.identity import DatabaseIdentity
    from baseline_guard.backup.pgtools import PgConnectionInfo
    from baseline_guard.hooks.environment import EnvironmentHook


def writable_environment_kind(env_api: EnvironmentHook, environment: str) -> str:
    """The environment's kind after refusing production; an unknown environment is bad input."""
    try:
        return env_api.require_writable(environment).kind.value
    except EnvironmentApiError as err:
        if err.status == 404:
            raise InvalidInput(f"environment {environment!r} is not known to the environment API") from err
        raise


def production_identities(env_api: EnvironmentHook) -> list[DatabaseIdentity]:
    """Every database the environment API lists for an environment of kind production, identified.

    Host, port and name come from the Airflow connection the API names; the server's
    ``system_identifier`` is read over a read-only connection when it can be reached (else the
    comparison falls back to host, port and name).
    """
    from baseline_guard.backup.identity import DatabaseIdentity

    identities: list[DatabaseIdentity] = []
    for env in env_api.list_environments():
        if env.kind != EnvironmentKind.PRODUCTION:
            continue
        for database in env_api.list_databases(env.name):
            label = f"{env.name}/{database.service}"
            try:
                info = pg_tools(database.conn_id).connection_info(database.name)
            except Exception as err:  # no connection on this worker: the name alone still counts
                env_api.log.warning("production database %s: %s", database.name, type(err).__name__)
                identities.append(DatabaseIdentity("", 0, database.name, None, label))
                continue
            identities.append(_identify_quietly(info, label))
    return identities


def _identify_quietly(info: PgConnectionInfo, label: str) -> DatabaseIdentity:
    from baseline_guard.backup.identity import DatabaseIdentity, read_system_identifier

    try:
        sysid = read_system_identifier(info, info.database)
    except Exception:
        sysid = None
    return DatabaseIdentity(info.host, info.port, info.database, sysid, label)
