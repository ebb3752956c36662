"""The restore ledger: what the project itself created or changed on a server, so a crash can be undone.

A small table in the server's maintenance database (schema ``baseline_guard``) records, *before*
the change is made, every database a restore creates (its copy), every database it sets aside
(the old one after a swap) and every database it closes to connections. Clean-up acts only on
what is recorded here (name and OID must both match), never on a name pattern, so a person's
``mydb__old_20250101`` is never touched. Renames and ledger updates share one transaction in the
maintenance database, so the ledger always says whether a swap happened.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from psycopg2 import sql
from psycopg2.extensions import connection as PgConnection

from baseline_guard.backup.pgtools import fetch_value
from baseline_guard.errors import BackupError

SCHEMA = "baseline_guard"
_SETUP_LOCK = 0x42474C4544474552  # "BGLEDGER"
SWAP_LOCK = 0x42475357415000  # held by a swap in progress on this server

_SETUP_SQL = f"""
SELECT pg_advisory_xact_lock({_SETUP_LOCK});
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.restore_ledger (
    database_name text PRIMARY KEY,
    database_oid oid,
    role text NOT NULL CHECK (role IN ('copy', 'old')),
    target text NOT NULL,
    restore_id text NOT NULL,
    state text NOT NULL,
    reason text,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.blocked_connections (
    database_oid oid PRIMARY KEY,
    database_name text NOT NULL,
    restore_id text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
"""

# copy states: creating -> verified | failed; verified -> swapped -> done
CREATING, VERIFIED, FAILED, SWAPPED, DONE = "creating", "verified", "failed", "swapped", "done"


@dataclass(frozen=True)
class CopyEntry:
    database_name: str
    database_oid: int | None
    target: str
    restore_id: str
    state: str
    reason: str | None


def ensure_ledger(admin: PgConnection) -> None:
    """Create the ledger tables if missing (autocommit connection; serialised by an advisory lock)."""
    admin.autocommit = False
    try:
        with admin.cursor() as cur:
            cur.execute(_SETUP_SQL)
        admin.commit()
    except Exception as err:
        admin.rollback()
        raise BackupError(
            f"cannot create the restore ledger {SCHEMA}.restore_ledger in the maintenance database: "
            f"{str(err).strip()} (the restoring user needs CREATE on it)"
        ) from None
    finally:
        admin.autocommit = True


def lock_key(database: str) -> int:
    return int.from_bytes(
        hashlib.sha256(f"baseline_guard.restore:{database}".encode()).digest()[:8], "big", signed=True
    )


def take_lock(admin: PgConnection, database: str) -> None:
    with admin.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(database),))
        if not fetch_value(cur):
            raise BackupError(f"another restore of database {database} is running on this server")


def database_oid(admin: PgConnection, name: str) -> int | None:
    with admin.cursor() as cur:
        cur.execute("SELECT oid FROM pg_database WHERE datname = %s", (name,))
        row = cur.fetchone()
    return int(row[0]) if row else None


def record_copy(admin: PgConnection, copy: str, target: str, restore_id: str) -> None:
    with admin.cursor() as cur:
        cur.execute(
            f"INSERT INTO {SCHEMA}.restore_ledger (database_name, role, target, restore_id, state) "
            "VALUES (%s, 'copy', %s, %s, %s)",
            (copy, target, restore_id, CREATING),
        )


def set_copy_state(
    admin: PgConnection, copy: str, state: str, *, oid: int | None = None, reason: str | None = None
) -> None:
    with admin.cursor() as cur:
        cur.execute(
            f"UPDATE {SCHEMA}.restore_ledger SET state = %s, reason = %s, "
            "database_oid = coalesce(%s, database_oid), recorded_at = now() "
            "WHERE database_name = %s AND role = 'copy'",
            (state, reason, oid, copy),
        )


def copies_of(admin: PgConnection, restore_id: str, target: str) -> list[CopyEntry]:
    with admin.cursor() as cur:
        cur.execute(
            f"SELECT database_name, database_oid, target, restore_id, state, reason "
            f"FROM {SCHEMA}.restore_ledger WHERE role = 'copy' AND restore_id = %s AND target = %s",
            (restore_id, target),
        )
        return [CopyEntry(r[0], None if r[1] is None else int(r[1]), *r[2:]) for r in cur.fetchall()]


def record_old(admin: PgConnection, old: str, oid: int, target: str, restore_id: str) -> None:
    with admin.cursor() as cur:
        cur.execute(
            f"INSERT INTO {SCHEMA}.restore_ledger "
            "(database_name, database_oid, role, target, restore_id, state) VALUES (%s, %s, 'old', %s, %s, %s)",
            (old, oid, target, restore_id, SWAPPED),
        )


def record_blocked(admin: PgConnection, name: str, oid: int, restore_id: str) -> None:
    with admin.cursor() as cur:
        cur.execute(
            f"INSERT INTO {SCHEMA}.blocked_connections (database_oid, database_name, restore_id) "
            "VALUES (%s, %s, %s) ON CONFLICT (database_oid) DO NOTHING",
            (oid, name, restore_id),
        )


def forget_blocked(admin: PgConnection, oids: list[int]) -> None:
    with admin.cursor() as cur:
        cur.execute(f"DELETE FROM {SCHEMA}.blocked_connections WHERE database_oid = ANY(%s::oid[])", (oids,))


def drop_recorded(admin: PgConnection, name: str, oid: int | None) -> bool:
    """Drop ``name`` only if it is still the database the ledger recorded (same OID). True if dropped."""
    current = database_oid(admin, name)
    if current is None or (oid is not None and current != oid):
        return False
    with admin.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    return True


def reopen_blocked(admin: PgConnection) -> list[str]:
    """Give back connections to every database a crashed swap closed (by OID, whatever its name now).

    Skipped while a swap is running on this server (it holds :data:`SWAP_LOCK` and reopens its own).
    """
    with admin.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", (SWAP_LOCK,))
        if not fetch_value(cur):
            return []
    try:
        return _reopen_recorded(admin)
    finally:
        with admin.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", (SWAP_LOCK,))


def _reopen_recorded(admin: PgConnection) -> list[str]:
    with admin.cursor() as cur:
        cur.execute(
            f"SELECT b.database_oid, d.datname FROM {SCHEMA}.blocked_connections b "
            "LEFT JOIN pg_database d ON d.oid = b.database_oid"
        )
        rows = cur.fetchall()
    reopened = []
    for oid, name in rows:
        if name is not None:
            with admin.cursor() as cur:
                cur.execute(
                    sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(sql.Identifier(name))
                )
            reopened.append(name)
        forget_blocked(admin, [int(oid)])
    return reopened


def clean_up_target(admin: PgConnection, target: str) -> list[str]:
    """Undo what earlier restores of ``target`` left: drop recorded copies and old databases.

    Copies already swapped in (state swapped/done) are the target now: only their rows go.
    Returns the databases dropped.
    """
    with admin.cursor() as cur:
        cur.execute(
            f"SELECT database_name, database_oid, role, state FROM {SCHEMA}.restore_ledger WHERE target = %s",
            (target,),
        )
        rows = cur.fetchall()
    dropped = []
    for name, oid, role, state in rows:
        if (role == "old" or state not in (SWAPPED, DONE)) and drop_recorded(
            admin, name, None if oid is None else int(oid)
        ):
            dropped.append(name)
        with admin.cursor() as cur:
            cur.execute(f"DELETE FROM {SCHEMA}.restore_ledger WHERE database_name = %s", (name,))
    return dropped
