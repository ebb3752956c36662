"""Apply DDL to the target in one transaction: every statement applies, or none does."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg2

from baseline_guard.errors import InvalidInput
from baseline_guard.schema.connect import APPLICATION_NAME, CONNECT_TIMEOUT_S, Database
from baseline_guard.schema.errors import DatabaseUnreachable, SchemaApplyFailed

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
