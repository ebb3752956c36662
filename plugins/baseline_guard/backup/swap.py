"""The final step of a restore: swap every verified copy in for its database, all or none.

Before anything changes, every target's copy must be recorded as verified in its server's
ledger; if one is not, no database is swapped, this restore's copies are dropped and the error
names each database and why. Per server, the swap is one transaction in the maintenance
database: close the targets and copies to new connections (recorded first), end their sessions
(ours in the copies included), rename ``<db>`` to ``<db>__old_<id>`` and the copy to ``<db>``,
give the restored ``<db>`` the connection state ``<db>`` had before (a database an admin had
closed stays closed), and update the ledger, all committed together. Any failure in between gives
every database back its recorded state, through a new session when the swap's own is gone. A kill
before the commit leaves every database as it was but closed: the swap's retry (or any later
restore or drill on that server) gives back what the ledger says was closed; after the commit,
every database is the restored one. The old databases are dropped last.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection as PgConnection

from baseline_guard.backup import ledger
from baseline_guard.backup.identity import (
    DatabaseIdentity,
    read_system_identifier,
    refuse_production_target,
)
from baseline_guard.backup.names import derived_name
from baseline_guard.backup.pgtools import PgConnectionInfo
from baseline_guard.errors import DatabaseBusy, InvalidInput, RestoreAborted

StepCallback = Callable[[str], None]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SwapOutcome:
    database: str
    replaced_existing: bool
    already_swapped: bool


@dataclass
class _Server:
    admin: PgConnection
    targets: list[PgConnectionInfo]
    system_identifier: str
    maintenance_database: str

    def reconnect(self) -> PgConnection:
        admin = self.targets[0].connect(self.maintenance_database)
        admin.autocommit = True
        return admin


def copy_name(database: str, restore_id: str) -> str:
    return derived_name(database, "restore", restore_id)


def old_name(database: str, restore_id: str) -> str:
    return derived_name(database, "old", restore_id)


def swap_restored(
    targets: Sequence[PgConnectionInfo],
    restore_id: str,
    *,
    production: Sequence[DatabaseIdentity],
    maintenance_database: str = "postgres",
    timeout_s: float = 30.0,
    on_step: StepCallback | None = None,
) -> list[SwapOutcome]:
    """Swap the verified copies of restore ``restore_id`` in for ``targets``: all of them or none."""
    if not targets:
        raise InvalidInput("no databases to swap: expected the restore's target databases")
    names = [t.database for t in targets]
    if len(set(names)) != len(names):
        raise InvalidInput(f"a database appears twice among the swap targets: {sorted(names)}")
    step = on_step or (lambda _name: None)
    servers = _open_servers(targets, maintenance_database, production)
    try:
        states = {t.database: _copy_state(s, t.database, restore_id) for s in servers for t in s.targets}
        problems = [f"{db}: {why}" for db, (ok, why) in states.items() if not ok]
        if problems:
            for server in servers:
                for target in server.targets:
                    ledger.clean_up_target(server.admin, target.database)
            raise RestoreAborted(
                f"restore {restore_id}: no database was swapped, because " + "; ".join(problems)
            )
        step("verified")
        outcomes: list[SwapOutcome] = []
        for server in servers:
            outcomes += _swap_server(server, restore_id, states, timeout_s, step)
        step("swapped")
        for server in servers:
            _drop_old(server, restore_id)
        step("cleaned")
        return outcomes
    finally:
        for server in servers:
            server.admin.close()


def _open_servers(
    targets: Sequence[PgConnectionInfo], maintenance_database: str, production: Sequence[DatabaseIdentity]
) -> list[_Server]:
    """One maintenance connection per server, after refusing production targets and before any write."""
    grouped: dict[tuple[str, int], list[PgConnectionInfo]] = {}
    for target in targets:
        if target.database == maintenance_database:
            raise InvalidInput(
                f"target database {target.database} is the maintenance database: expected another"
            )
        grouped.setdefault((target.host, target.port), []).append(target)
    identified = {
        key: read_system_identifier(group[0], maintenance_database) for key, group in grouped.items()
    }
    for key, group in grouped.items():
        for target in group:
            refuse_production_target(
                DatabaseIdentity(target.host, target.port, target.database, identified[key]), production
            )
    servers: list[_Server] = []
    try:
        for key, group in grouped.items():
            sysid = identified[key]
            admin = group[0].connect(maintenance_database)
            admin.autocommit = True
            servers.append(
                _Server(admin, sorted(group, key=lambda t: t.database), sysid, maintenance_database)
            )
            ledger.ensure_ledger(admin)
            ledger.reopen_blocked(admin)
            for target in servers[-1].targets:
                ledger.take_lock(admin, target.database)
    except BaseException:
        for server in servers:
            server.admin.close()
        raise
    return servers


def _copy_state(server: _Server, database: str, restore_id: str) -> tuple[bool, str]:
    """(ready, why): ready when the copy is verified (or this restore already swapped it in)."""
    entries = ledger.copies_of(server.admin, restore_id, database)
    if not entries:
        return (
            False,
            "no restored copy was recorded (its restore stopped before creating one; its own error says why)",
        )
    entry = entries[0]
    if entry.state in (ledger.SWAPPED, ledger.DONE):
        return True, entry.state
    if entry.state == ledger.FAILED:
        return False, f"its restore failed: {entry.reason}"
    if entry.state != ledger.VERIFIED:
        return False, "its restore did not finish (the task failed or was killed before verification)"
    if ledger.database_oid(server.admin, entry.database_name) != entry.database_oid:
        return False, f"the verified copy {entry.database_name} is gone or was replaced"
    return True, entry.state


def _swap_server(
    server: _Server,
    restore_id: str,
    states: dict[str, tuple[bool, str]],
    timeout_s: float,
    step: StepCallback,
) -> list[SwapOutcome]:
    admin = server.admin
    pending = [t.database for t in server.targets if states[t.database][1] == ledger.VERIFIED]
    outcomes = [
        SwapOutcome(t.database, replaced_existing=True, already_swapped=True)
        for t in server.targets
        if t.database not in pending
    ]
    if not pending:
        return outcomes
    copies = {db: copy_name(db, restore_id) for db in pending}
    existing = {db: ledger.database_oid(admin, db) for db in pending}
    with admin.cursor() as cur:  # no other restore reopens what this swap closes
        cur.execute("SELECT pg_advisory_lock(%s)", (ledger.SWAP_LOCK,))
    try:
        return outcomes + _swap_pending(server, restore_id, copies, existing, timeout_s, step)
    finally:
        with contextlib.suppress(psycopg2.Error), admin.cursor() as cur:  # gone with a lost session
            cur.execute("SELECT pg_advisory_unlock(%s)", (ledger.SWAP_LOCK,))


def _swap_pending(
    server: _Server,
    restore_id: str,
    copies: dict[str, str],
    existing: dict[str, int | None],
    timeout_s: float,
    step: StepCallback,
) -> list[SwapOutcome]:
    admin = server.admin
    pending = list(copies)
    _close(admin, restore_id, [*pending, *copies.values()])
    try:
        step("closed")
        deadline = time.monotonic() + timeout_s
        while True:
            _terminate(admin, [*pending, *copies.values()])
            try:
                _rename_all(admin, restore_id, copies, existing)
                break
            except psycopg2.errors.ObjectInUse:
                if time.monotonic() > deadline:
                    raise DatabaseBusy(
                        f"swap of restore {restore_id} gave up after {timeout_s:.0f} s: "
                        f"{_busy(admin, copies)}; no database was swapped on this server"
                    ) from None
                time.sleep(0.2)
    except BaseException:
        _give_back(server, restore_id)
        raise
    return [
        SwapOutcome(db, replaced_existing=existing[db] is not None, already_swapped=False) for db in pending
    ]


def _give_back(server: _Server, restore_id: str) -> None:
    """After a failed swap: every database this swap closed gets its recorded state back.

    Through the swap's own session, or a new one when that is gone (killed, server restarted);
    if neither works the rows stay, and the retry or the next restore on this server gives back.
    """
    try:
        ledger.reopen_recorded(server.admin, restore_id)
        return
    except Exception as err:
        log.warning("Swap %s: giving back connections in its own session failed (%s)", restore_id, err)
    try:
        fresh = server.reconnect()
    except Exception as err:
        log.warning("Swap %s: cannot reconnect to give back connections (%s)", restore_id, err)
        return
    try:
        ledger.reopen_recorded(fresh, restore_id)
    except Exception as err:
        log.warning("Swap %s: giving back connections failed (%s); the retry does it", restore_id, err)
    finally:
        fresh.close()


def _close(admin: PgConnection, restore_id: str, databases: list[str]) -> None:
    """Record (with the state before), then close to new connections, in one transaction."""
    admin.autocommit = False
    try:
        with admin.cursor() as cur:
            for name in databases:
                oid = ledger.database_oid(admin, name)
                before = None if oid is None else ledger.connection_state(admin, oid)
                if oid is None or before is None:
                    continue
                ledger.record_blocked(admin, name, oid, restore_id, before)
                cur.execute(
                    sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(name))
                )
        admin.commit()
    except BaseException:
        admin.rollback()
        raise
    finally:
        admin.autocommit = True


def _terminate(admin: PgConnection, databases: list[str]) -> None:
    """End the sessions in ``databases`` that this role may end; the others make the rename wait."""
    with admin.cursor() as cur:
        cur.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = ANY(%s) AND pid <> pg_backend_pid()",
            (databases,),
        )
        pids = [row[0] for row in cur.fetchall()]
        for pid in pids:  # a superuser's session may be out of reach: named if it outlasts the wait
            with contextlib.suppress(psycopg2.errors.InsufficientPrivilege):
                cur.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _rename_all(
    admin: PgConnection, restore_id: str, copies: dict[str, str], existing: dict[str, int | None]
) -> None:
    """Every rename of this server, the reopening and the ledger update in one transaction."""
    ident = sql.Identifier
    admin.autocommit = False
    try:
        with admin.cursor() as cur:
            for database, copy in copies.items():
                copy_oid = ledger.database_oid(admin, copy)
                # the restored database takes the live one's connection state from before the swap
                before = (
                    None if existing[database] is None else ledger.blocked_state(admin, existing[database])
                )
                copy_before = None if copy_oid is None else ledger.blocked_state(admin, copy_oid)
                allowed = before.allowed if before is not None else True
                if existing[database] is not None:
                    old = old_name(database, restore_id)
                    cur.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(ident(database), ident(old)))
                    ledger.record_old(admin, old, existing[database], database, restore_id)  # type: ignore[arg-type]
                cur.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(ident(copy), ident(database)))
                limit = copy_before.connection_limit if copy_before is not None else None
                ledger.give_back_state(admin, database, ledger.ConnectionState(allowed, limit))
                ledger.set_copy_state(admin, copy, ledger.SWAPPED)
                ledger.forget_blocked(admin, [o for o in (copy_oid, existing[database]) if o is not None])
        admin.commit()
    except BaseException:
        admin.rollback()
        raise
    finally:
        admin.autocommit = True


def _busy(admin: PgConnection, copies: dict[str, str]) -> str:
    """Which databases still have sessions, and whose (application name, user)."""
    role = {db: f"database {db}" for db in copies} | {
        copy: f"restored copy {copy} (of {db})" for db, copy in copies.items()
    }
    with admin.cursor() as cur:
        cur.execute(
            "SELECT datname, count(*), string_agg(DISTINCT coalesce(nullif(application_name, ''), '?') "
            "|| ' as ' || coalesce(usename, '?'), ', ') FROM pg_stat_activity "
            "WHERE datname = ANY(%s) AND pid <> pg_backend_pid() GROUP BY datname",
            (list(role),),
        )
        rows = cur.fetchall()
    if not rows:
        return "a database was still in use when renamed (sessions came and went)"
    return "; ".join(f"{role[name]} is busy: {n} session(s) ({who})" for name, n, who in rows)


def _drop_old(server: _Server, restore_id: str) -> None:
    """Drop the databases this swap set aside and mark the copies done (rows stay for a retry)."""
    for target in server.targets:
        database = target.database
        old = old_name(database, restore_id)
        with server.admin.cursor() as cur:
            cur.execute(
                f"SELECT database_oid FROM {ledger.SCHEMA}.restore_ledger "
                "WHERE database_name = %s AND role = 'old' AND restore_id = %s",
                (old, restore_id),
            )
            row = cur.fetchone()
        if row is not None:
            ledger.drop_recorded(server.admin, old, int(row[0]))
            with server.admin.cursor() as cur:
                cur.execute(f"DELETE FROM {ledger.SCHEMA}.restore_ledger WHERE database_name = %s", (old,))
        ledger.set_copy_state(server.admin, copy_name(database, restore_id), ledger.DONE)
