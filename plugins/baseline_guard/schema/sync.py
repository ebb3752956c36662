"""Diff a source schema against a target and bring the target in line (safe changes only by default)."""

from __future__ import annotations

from collections.abc import Sequence

from baseline_guard.errors import InvalidInput, ProductionWriteRefused
from baseline_guard.schema.apply import (
    DEFAULT_LOCK_TIMEOUT_MS,
    DEFAULT_STATEMENT_TIMEOUT_MS,
    apply_statements,
)
from baseline_guard.schema.classify import classify
from baseline_guard.schema.connect import Database
from baseline_guard.schema.diff import CatalogFacts, check_schemas, plan_statements
from baseline_guard.schema.models import SchemaDiff, SyncResult

PRODUCTION = "production"


def diff_schemas(source_dsn: str, target_dsn: str, schemas: Sequence[str] = ("public",)) -> SchemaDiff:
    """The classified statements that turn the target's ``schemas`` into the source's.

    Both databases are read through read-only sessions (``default_transaction_read_only=on``):
    diffing never writes anywhere.
    """
    source = Database.parse(source_dsn, "source")
    target = Database.parse(target_dsn, "target")
    if source.identity == target.identity:
        raise InvalidInput(
            f"source and target are the same database ({target.label}); expected two databases"
        )
    with source.connect(read_only=True) as src, target.connect(read_only=True) as tgt:
        wanted = check_schemas(schemas, src, source.label)
        plan = plan_statements(src, tgt, wanted)
        facts = CatalogFacts(tgt)
        return SchemaDiff(classify(plan.statements, facts, wanted[0], unchanged_views=plan.unchanged_views))


def sync_schema(
    source_dsn: str,
    target_dsn: str,
    *,
    schemas: Sequence[str] = ("public",),
    apply_destructive: bool = False,
    target_kind: str | None = None,
    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS,
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
) -> SyncResult:
    """Bring the target's schema to the source's: safe statements in one transaction, the rest held.

    :param target_kind: the target environment's kind; ``"production"`` is refused before
        anything is read or written
    :param apply_destructive: apply destructive statements too (nothing is held then)
    """
    if target_kind is not None and str(target_kind) == PRODUCTION:
        raise ProductionWriteRefused(
            "schema sync never writes to a production database; the target is production"
        )
    plan = diff_schemas(source_dsn, target_dsn, schemas)
    to_apply = plan.statements if apply_destructive else plan.safe
    held = [] if apply_destructive else plan.destructive
    apply_statements(target_dsn, [s.sql for s in to_apply], lock_timeout_ms, statement_timeout_ms)
    return SyncResult(applied=list(to_apply), held=held)
