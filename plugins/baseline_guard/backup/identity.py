"""Who a database really is: server address, port, name and the cluster's ``system_identifier``.

A restore target is compared with every database the environment API lists for production
before anything is written. A label ("baseline") proves nothing; the server does. Two
databases are the same when their names are equal and either their servers' system
identifiers or their (host, port) are; a production database whose server is unknown (no
connection to it on this worker) matches by name alone. A target whose server cannot say its system identifier
is refused: it cannot be told apart from production.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from baseline_guard.backup.pgtools import PgConnectionInfo
from baseline_guard.errors import ProductionWriteRefused, TargetNotIdentified


@dataclass(frozen=True)
class DatabaseIdentity:
    """One database as its server identifies it. ``system_identifier`` None: not known."""

    host: str
    port: int
    database: str
    system_identifier: str | None = None
    label: str = ""

    def same_database(self, other: DatabaseIdentity) -> bool:
        if self.database != other.database:
            return False
        if not self.host or not other.host:  # server unknown (no connection to it): the name decides
            return True
        if self.system_identifier and self.system_identifier == other.system_identifier:
            return True
        return (_host(self.host), self.port) == (_host(other.host), other.port)

    def describe(self) -> str:
        sysid = self.system_identifier or "unknown"
        return f"{self.database} on {self.host}:{self.port} (system_identifier {sysid})"


def _host(host: str) -> str:
    host = host.strip().lower().rstrip("/")
    return "127.0.0.1" if host in ("localhost", "::1", "127.0.0.1") else host


def read_system_identifier(info: PgConnectionInfo, maintenance_database: str) -> str:
    """The server's ``system_identifier`` (through the maintenance database), or TargetNotIdentified."""
    try:
        conn = info.connect(maintenance_database)
    except Exception as err:
        raise TargetNotIdentified(
            f"cannot reach the server of {info.database} at {info.host}:{info.port} to identify it: "
            f"{info.redact(str(err)).strip()}"
        ) from None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT system_identifier::text FROM pg_control_system()")
            row = cur.fetchone()
    except Exception as err:
        raise TargetNotIdentified(
            f"the server of {info.database} at {info.host}:{info.port} does not say its "
            f"system_identifier ({str(err).strip()}): expected pg_control_system() to be readable"
        ) from None
    finally:
        conn.close()
    if not row or not row[0]:
        raise TargetNotIdentified(f"the server of {info.database} reports no system_identifier")
    return str(row[0])


def identify(info: PgConnectionInfo, maintenance_database: str, label: str = "") -> DatabaseIdentity:
    """The identity of ``info``'s database, its server asked for its system identifier."""
    return DatabaseIdentity(
        host=info.host,
        port=info.port,
        database=info.database,
        system_identifier=read_system_identifier(info, maintenance_database),
        label=label,
    )


def refuse_production_target(target: DatabaseIdentity, production: Sequence[DatabaseIdentity]) -> None:
    """Raise ProductionWriteRefused when ``target`` is one of production's databases, whatever its label."""
    if not target.system_identifier:
        raise TargetNotIdentified(f"restore target {target.describe()} cannot be identified: refused")
    for known in production:
        if target.same_database(known):
            what = f" ({known.label})" if known.label else ""
            raise ProductionWriteRefused(
                f"restore target {target.describe()} is production database {known.describe()}{what}: "
                "Baseline Guard never writes to production, whatever the environment's label"
            )
