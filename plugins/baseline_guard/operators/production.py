"""Production as the backup and restore operators recognise it: by the environment API's kind and by identity.

A restore target is refused when its environment is of kind production (asked before anything
else), and when the database *is* one of production's (server ``system_identifier``, host, port and
name compared with what the environment API lists for production), whatever it is called. A backup
is refused the same ways: production is never dumped into the test bucket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from baseline_guard.environment_contract import EnvironmentKind
from baseline_guard.errors import (
    EnvironmentApiError,
    InvalidInput,
    ProductionWriteRefused,
    TargetNotIdentified,
)
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


NEVER_BACKED_UP = "production is never backed up into the test bucket"


def refuse_production_environment_backup(env_api: EnvironmentHook, environment: str) -> None:
    """Refuse a backup of an environment of kind production; an unknown environment is bad input."""
    try:
        env = env_api.get_environment(environment)
    except EnvironmentApiError as err:
        if err.status == 404:
            raise InvalidInput(f"environment {environment!r} is not known to the environment API") from err
        raise
    if env.kind == EnvironmentKind.PRODUCTION:
        raise ProductionWriteRefused(f"environment {environment!r} is of kind production: {NEVER_BACKED_UP}")


def refuse_production_source(env_api: EnvironmentHook, source: PgConnectionInfo) -> None:
    """Refuse to dump a database that *is* one of production's (by server identity), whatever its label.

    A source whose server cannot say its ``system_identifier`` is refused too: it cannot be told
    apart from production.
    """
    from baseline_guard.backup.identity import identify

    me = identify(source, source.database)  # asked through the database itself: no other needed
    for known in production_identities(env_api):
        if me.same_database(known):
            what = f" ({known.label})" if known.label else ""
            raise ProductionWriteRefused(
                f"backup source {me.describe()} is production database {known.describe()}{what}: "
                f"{NEVER_BACKED_UP}, whatever the environment's label"
            )


def production_identities(env_api: EnvironmentHook) -> list[DatabaseIdentity]:
    """Every database the environment API lists for an environment of kind production, identified.

    Host, port and name come from the Airflow connection the API names, and the server's
    ``system_identifier`` is read through it. When that read fails (timeout, privilege, a server
    that does not answer) the check fails closed (``TargetNotIdentified``): a target reaching
    production by another address could not be told apart. A worker with no connection to a
    production database compares by its name alone (any database of that name is refused).
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
            identities.append(_identify_or_refuse(info, label))
    return identities


def _identify_or_refuse(info: PgConnectionInfo, label: str) -> DatabaseIdentity:
    from baseline_guard.backup.identity import DatabaseIdentity, read_system_identifier

    try:
        sysid = read_system_identifier(info, info.database)
    except TargetNotIdentified as err:
        raise TargetNotIdentified(
            f"production database {info.database} ({label}) cannot be identified, so no target can be "
            f"told apart from it; refused until it can: {err}"
        ) from None
    return DatabaseIdentity(info.host, info.port, info.database, sysid, label)
