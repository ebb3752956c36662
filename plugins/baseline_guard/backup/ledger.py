"""The restore ledger: what the project itself created or changed on a server, so a crash can be undone.

A small table in the server's maintenance database (schema ``baseline_guard``) records, *before*
the change is made, every database a restore creates (its copy), every database it sets aside
(the old one after a swap) and every database it closes to connections, with its connection
state before (``datallowconn``, connection limit), which is what reopening gives back: a database
an admin had closed stays closed. Clean-up acts only on
what is recorded here (name and OID must both match), never on a name pattern, so a person's
``mydb__old_20250101`` is never touched. Renames and ledger updates share one transaction in the
maintenance database, so the ledger always says whether a swap happened.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from psycopg2 import sql
from psycopg2.extensions import connection as PgConnection

from baseline_guard.errors import BackupError

log = logging.getLogger(__name__)

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
    recorded_at timestamptz NOT NULL DEFAULT now(),
    allowed_before boolean,
    connection_limit_before integer
);
DO $$ BEGIN  -- a ledger made by an older version: add the columns (only its owner may, only then)
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '{SCHEMA}.blocked_connections'::regclass
                   AND attname = 'allowed_before') THEN
        ALTER TABLE {SCHEMA}.blocked_connections
            ADD COLUMN allowed_before boolean, ADD COLUMN connection_limit_before integer;
    END IF;
END $$;
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
        if not cur.fetchone()[0]:
            raise BackupError(f"another restore of database {database} is running on this server")


def database_oid(admin: PgConnection, name: str) -> int | None:
    with admin.cursor() as cur:
        cur.execute("SELECT oid FROM pg_database WHERE datname = %s", (name,))
        row = cur.fetchone()
    return int(row[0]) if row else None


def record_copy(admin: PgConnection, copy: str, target: str, restore_id: str) -> None:
    """Record the copy about to be created; refused when a database of that name exists already.

    The row gets the copy's OID only once this restore created it (:func:`set_copy_state`); a row
    without an OID never drops anything, so a name that was taken stays someone else's.
    """
    if database_oid(admin, copy) is not None:
        raise BackupError(
            f"database {copy} already exists and the restore ledger did not create it: refusing to "
            "restore into that name (a restore id is fresh for each run; drop or rename that database "
            "if it is a leftover)"
        )
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


@dataclass(frozen=True)
class ConnectionState:
    """A database's connection settings before a swap closed it."""

    allowed: bool
    connection_limit: int | None  # None: unknown, left as it is


def connection_state(admin: PgConnection, oid: int) -> ConnectionState | None:
    with admin.cursor() as cur:
        cur.execute("SELECT datallowconn, datconnlimit FROM pg_database WHERE oid = %s", (oid,))
        row = cur.fetchone()
    return None if row is None else ConnectionState(bool(row[0]), int(row[1]))


def record_blocked(
    admin: PgConnection, name: str, oid: int, restore_id: str, before: ConnectionState
) -> None:
    """Record ``name`` as closed by ``restore_id``, with its state before (the first record wins)."""
    with admin.cursor() as cur:
        cur.execute(
            f"INSERT INTO {SCHEMA}.blocked_connections "
            "(database_oid, database_name, restore_id, allowed_before, connection_limit_before) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (database_oid) DO NOTHING",
            (oid, name, restore_id, before.allowed, before.connection_limit),
        )


def blocked_state(admin: PgConnection, oid: int) -> ConnectionState | None:
    """The state recorded for ``oid`` before it was closed; None when not recorded as closed.

    A row written by an older version without the state reads as open (what that version restored).
    """
    with admin.cursor() as cur:
        cur.execute(
            f"SELECT allowed_before, connection_limit_before FROM {SCHEMA}.blocked_connections "
            "WHERE database_oid = %s",
            (oid,),
        )
        row = cur.fetchone()
    if row is None:
        return None
    return ConnectionState(True if row[0] is None else bool(row[0]), None if row[1] is None else int(row[1]))


def give_back_state(admin: PgConnection, name: str, state: ConnectionState) -> None:
    """Set ``name``'s connection settings to ``state`` exactly (inside the caller's transaction)."""
    statement = sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
        sql.Identifier(name), sql.SQL("true" if state.allowed else "false")
    )
    if state.connection_limit is not None:
        statement += sql.SQL(" CONNECTION LIMIT {}").format(sql.Literal(state.connection_limit))
    with admin.cursor() as cur:
        cur.execute(statement)


def forget_blocked(admin: PgConnection, oids: list[int]) -> None:
    with admin.cursor() as cur:
        cur.execute(f"DELETE FROM {SCHEMA}.blocked_connections WHERE database_oid = ANY(%s::oid[])", (oids,))


def drop_recorded(admin: PgConnection, name: str, oid: int | None) -> bool:
    """Drop ``name`` only if it is still the database the ledger recorded (same OID). True if dropped.

    Fails closed: without a recorded OID nothing is dropped (the ledger cannot tell that database
    is the one it created).
    """
    current = database_oid(admin, name)
    if oid is None or current != oid:
        return False
    with admin.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    return True


def reopen_blocked(admin: PgConnection) -> list[str]:
    """Give back connections to every database a crashed swap closed (by OID, whatever its name now).

    Each database gets the state recorded before it was closed (one an admin had closed stays
    closed). Skipped while a swap is running on this server (it holds :data:`SWAP_LOCK` and
    reopens its own).
    """
    with admin.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", (SWAP_LOCK,))
        if not cur.fetchone()[0]:
            return []
    try:
        return reopen_recorded(admin)
    finally:
        with admin.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", (SWAP_LOCK,))


def reopen_recorded(admin: PgConnection, restore_id: str | None = None) -> list[str]:
    """Give each recorded database (of ``restore_id``, or all) its state before, and forget the row."""
    with admin.cursor() as cur:
        cur.execute(
            f"SELECT b.database_oid, d.datname FROM {SCHEMA}.blocked_connections b "
            "LEFT JOIN pg_database d ON d.oid = b.database_oid WHERE %(id)s::text IS NULL OR b.restore_id = %(id)s",
            {"id": restore_id},
        )
        rows = cur.fetchall()
    reopened = []
    for oid, name in rows:
        admin.autocommit = False
        try:
            state = blocked_state(admin, int(oid))
            if name is not None and state is not None:
                give_back_state(admin, name, state)
                reopened.append(name)
            forget_blocked(admin, [int(oid)])
            admin.commit()
        except BaseException:
            admin.rollback()
            raise
        finally:
            admin.autocommit = True
    return reopened


def clean_up_target(admin: PgConnection, target: str) -> list[str]:
    """Undo what earlier restores of ``target`` left: drop recorded copies and old databases.

    Copies already swapped in (state swapped/done) are the target now: only their rows go. A row
    without an OID whose database exists is kept, and the database too: only a kill between
    ``CREATE DATABASE`` and recording its OID leaves one, and the ledger cannot prove it is ours
    (a person drops it). Returns the databases dropped.
    """
    with admin.cursor() as cur:
        cur.execute(
            f"SELECT database_name, database_oid, role, state FROM {SCHEMA}.restore_ledger WHERE target = %s",
            (target,),
        )
        rows = cur.fetchall()
    dropped = []
    for name, oid, role, state in rows:
        if oid is None and database_oid(admin, name) is not None:
            log.warning(
                "Restore ledger: %s exists but its OID was never recorded: not dropped, "
                "a person must check and drop it",
                name,
            )
            continue
        if (role == "old" or state not in (SWAPPED, DONE)) and drop_recorded(
            admin, name, None if oid is None else int(oid)
        ):
            dropped.append(name)
        with admin.cursor() as cur:
            cur.execute(f"DELETE FROM {SCHEMA}.restore_ledger WHERE database_name = %s", (name,))
    return dropped
