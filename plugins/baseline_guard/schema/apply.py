"""Apply DDL to the target in one transaction.

:func:`apply_statements` is all-or-nothing. :func:`apply_converging` runs each statement under a
SAVEPOINT, retries the ones PostgreSQL refused after the others (which fixes ordering in
general), and sets aside what still fails together with what depends on it, with PostgreSQL's
error as the reason; the rest commits in the same single transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg2

from baseline_guard.errors import DatabaseUnreachable, InvalidInput, SchemaApplyFailed
from baseline_guard.schema import footprint as fp
from baseline_guard.schema.connect import APPLICATION_NAME, CONNECT_TIMEOUT_S, Database

DEFAULT_LOCK_TIMEOUT_MS = 5_000
DEFAULT_STATEMENT_TIMEOUT_MS = 300_000


def check_timeout(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput(f"{name} must be a positive number of milliseconds, got {value!r}")
    return value


def _first_line(exc: psycopg2.Error) -> str:
    text = (exc.pgerror or str(exc)).strip()
    return " ".join(text.splitlines()[:2])


def apply_statements(
    target_dsn: str,
    statements: Sequence[str],
    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS,
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
) -> list[str]:
    """Run ``statements`` on the target in one transaction and return them once committed.

    ``lock_timeout`` and ``statement_timeout`` are set with ``SET LOCAL``, so they end with the
    transaction. If any statement fails, the transaction is rolled back, the target is exactly
    as before, and :class:`SchemaApplyFailed` says which statement failed and why.
    """
    lock_ms = check_timeout("lock_timeout_ms", lock_timeout_ms)
    statement_ms = check_timeout("statement_timeout_ms", statement_timeout_ms)
    if isinstance(statements, str):
        raise InvalidInput("statements must be a list of SQL statements, got a single string")
    todo = [s for s in statements if s.strip()]
    if not todo:
        return []
    target = Database.parse(target_dsn, "target")
    try:
        conn = psycopg2.connect(
            target.libpq_dsn(), connect_timeout=CONNECT_TIMEOUT_S, application_name=APPLICATION_NAME
        )
    except psycopg2.Error as exc:
        raise DatabaseUnreachable(
            f"cannot connect to {target.label}: {target.scrub(_first_line(exc))}"
        ) from None
    try:
        with conn.cursor() as cur:  # psycopg2 opens the transaction with the first statement
            cur.execute("SELECT set_config('lock_timeout', %s, true)", (f"{lock_ms}ms",))
            cur.execute("SELECT set_config('statement_timeout', %s, true)", (f"{statement_ms}ms",))
            for number, sql in enumerate(todo, start=1):
                try:
                    cur.execute(sql)
                except psycopg2.Error as exc:
                    conn.rollback()
                    raise SchemaApplyFailed(
                        f"statement {number} of {len(todo)} failed on {target.label}: "
                        f"{target.scrub(_first_line(exc))}; rolled back, nothing was applied. "
                        f"Statement: {' '.join(sql.split())}",
                        statement=sql,
                    ) from None
        conn.commit()
    finally:
        conn.close()
    return todo


# Errors a retry can fix (a lock held elsewhere, a timeout, a lost connection): the whole apply
# stops and rolls back, so the task fails and Airflow retries it, instead of holding a good statement.
_TRANSIENT_SQLSTATES = frozenset({"55P03", "57014", "40001", "40P01", "57P01", "57P02", "57P03"})


@dataclass(frozen=True)
class ApplyOutcome:
    """Indexes (into the statements given) applied, in the order they ran, and those set aside with why."""

    applied: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)


def _connect(target: Database) -> psycopg2.extensions.connection:
    try:
        return psycopg2.connect(
            target.libpq_dsn(), connect_timeout=CONNECT_TIMEOUT_S, application_name=APPLICATION_NAME
        )
    except psycopg2.Error as exc:
        raise DatabaseUnreachable(
            f"cannot connect to {target.label}: {target.scrub(_first_line(exc))}"
        ) from None


def _dependents(failed: set[int], footprints: list[fp.Footprint], candidates: set[int]) -> dict[int, int]:
    """Statements that read or write what a failed one writes (transitively) -> the failed statement they follow."""
    cause = {i: i for i in failed}
    frontier = set(failed)
    while frontier:
        nxt = set()
        for i in candidates - cause.keys():
            origin = next((f for f in sorted(frontier) if footprints[i].touches(footprints[f].writes)), None)
            if origin is not None:
                cause[i] = cause[origin]
                nxt.add(i)
        frontier = nxt
    return {i: c for i, c in cause.items() if i not in failed}


def _one_line(sql: str, limit: int = 100) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _run_rounds(
    cur: psycopg2.extensions.cursor, target: Database, todo: list[int], statements: Sequence[str]
) -> tuple[list[int], dict[int, str]]:
    """Run ``todo`` under savepoints, retrying refused statements until a round makes no progress."""
    applied: list[int] = []
    errors: dict[int, str] = {}
    pending = list(todo)
    while pending:
        left = []
        for i in pending:
            cur.execute("SAVEPOINT bg_stmt")
            try:
                cur.execute(statements[i])
            except psycopg2.Error as exc:
                if exc.pgcode in _TRANSIENT_SQLSTATES or exc.pgcode is None:
                    raise
                cur.execute("ROLLBACK TO SAVEPOINT bg_stmt")
                errors[i] = target.scrub(_first_line(exc))
                left.append(i)
                continue
            cur.execute("RELEASE SAVEPOINT bg_stmt")
            applied.append(i)
            errors.pop(i, None)
        if len(left) == len(pending):
            break
        pending = left
    return applied, {i: errors[i] for i in pending}


def apply_converging(
    target_dsn: str,
    statements: Sequence[str],
    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS,
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
    default_schema: str = "public",
) -> ApplyOutcome:
    """Apply what PostgreSQL accepts of ``statements`` in one transaction; set aside what it refuses.

    A statement refused after every retry is set aside with PostgreSQL's error, and so is every
    statement that reads or writes what it writes (a new primary key's index without the key,
    say): if one of those had run, the transaction is rolled back and run again without them, so
    nothing is half-applied. Lock and statement timeouts and lost connections are not set aside:
    :class:`SchemaApplyFailed` is raised and nothing is applied (a retry can succeed).
    """
    lock_ms = check_timeout("lock_timeout_ms", lock_timeout_ms)
    statement_ms = check_timeout("statement_timeout_ms", statement_timeout_ms)
    if isinstance(statements, str):
        raise InvalidInput("statements must be a list of SQL statements, got a single string")
    if not any(s.strip() for s in statements):
        return ApplyOutcome()
    target = Database.parse(target_dsn, "target")
    footprints = [fp.of_sql(s, default_schema) for s in statements]
    refused: dict[int, str] = {}
    conn = _connect(target)
    try:
        while True:
            todo = [i for i, sql in enumerate(statements) if sql.strip() and i not in refused]
            with conn.cursor() as cur:
                cur.execute("SELECT set_config('lock_timeout', %s, true)", (f"{lock_ms}ms",))
                cur.execute("SELECT set_config('statement_timeout', %s, true)", (f"{statement_ms}ms",))
                try:
                    applied, failed = _run_rounds(cur, target, todo, statements)
                except psycopg2.Error as exc:
                    conn.rollback()
                    raise SchemaApplyFailed(
                        f"applying to {target.label} stopped: {target.scrub(_first_line(exc))}; "
                        "rolled back, nothing was applied",
                        statement="",
                    ) from None
            tied = _dependents(set(failed), footprints, set(todo) - set(failed))
            refused.update({i: f"PostgreSQL refused it: {err}" for i, err in failed.items()})
            refused.update(
                {
                    i: f"depends on a statement PostgreSQL refused ({_one_line(statements[c])}): {failed[c]}"
                    for i, c in tied.items()
                }
            )
            if not tied:  # else what was tied to a refused statement ran: run again without it
                conn.commit()
                return ApplyOutcome(applied=applied, refused=refused)
            conn.rollback()
    finally:
        conn.close()
