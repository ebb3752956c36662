"""Compute the DDL that turns a target schema into the source's, with migradiff (module ``migra``).

Both databases are inspected once, filtered to the requested schemas, and handed to
``migra.Migration`` as inspectors, so one plan covers all schemas in a valid order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from migra import Migration
from schemainspect import get_inspector
from schemainspect.pg.obj import PROPS
from sqlalchemy.engine import Connection

from baseline_guard.errors import InvalidInput, SchemaSyncError
from baseline_guard.schema.footprint import Key, relation

# schemainspect's PostgreSQL inspector: the library ships no types
Inspector = Any

_DERIVED_FOREIGN_KEYS = sa.text(
    "SELECT n.nspname, t.relname, c.conname FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
    "JOIN pg_namespace n ON n.oid = t.relnamespace WHERE c.contype = 'f' AND c.conparentid <> 0"
)


def _forget_derived_foreign_keys(conn: Connection, inspector: Inspector) -> None:
    """Drop from the inspection the foreign keys PostgreSQL derives for partitions.

    A foreign key on, or referencing, a partitioned table is cloned per partition; the clones
    come and go with the parent key (pg_dump does not list them). migra would drop or add them
    one by one, which PostgreSQL refuses.
    """
    derived = {(r[0], r[1], r[2]) for r in conn.execute(_DERIVED_FOREIGN_KEYS)}
    if not derived:
        return
    for key, con in list(inspector.constraints.items()):
        if (con.schema, con.table_name, con.name) in derived:
            del inspector.constraints[key]
            inspector.relations[con.quoted_full_table_name].constraints.pop(key, None)


def inspect(conn: Connection, schemas: Sequence[str]) -> Inspector:
    """Inspect the whole database once, then keep only objects of ``schemas``."""
    inspector = get_inspector(conn)
    _forget_derived_foreign_keys(conn, inspector)
    keep = set(schemas)
    for prop in PROPS.split():
        objects = getattr(inspector, prop)
        setattr(inspector, prop, {k: v for k, v in objects.items() if getattr(v, "schema", None) in keep})
    return inspector


def existing_schemas(conn: Connection) -> set[str]:
    rows = conn.execute(sa.text("SELECT nspname FROM pg_namespace"))
    return {r[0] for r in rows}


def check_schemas(schemas: Sequence[str], conn: Connection, label: str) -> list[str]:
    """The requested schema names, deduplicated in order; each must exist in the source."""
    if isinstance(schemas, str) or not schemas:
        raise InvalidInput(f"schemas must be a non-empty list of schema names, got {schemas!r}")
    wanted = list(dict.fromkeys(schemas))
    bad = [s for s in wanted if not isinstance(s, str) or not s]
    if bad:
        raise InvalidInput(f"schema names must be non-empty strings, got {bad!r}")
    missing = [s for s in wanted if s not in existing_schemas(conn)]
    if missing:
        raise InvalidInput(
            f"schema(s) {', '.join(missing)} not found in the {label}; expected existing schemas"
        )
    return wanted


@dataclass(frozen=True)
class Plan:
    statements: list[str]
    unchanged_views: frozenset[Key]  # views defined the same way on both sides


def _keep_enum_columns_when_values_are_only_added(
    source_inspector: Inspector, target_inspector: Inspector
) -> None:
    """Stop migra re-casting every column of an enum that only gained values.

    migra re-casts each column of a changed enum (``ALTER COLUMN .. TYPE e USING c::text::e``,
    with its default dropped and re-added): a table rewrite per column, for nothing, when the
    enum is altered in place with ``ADD VALUE``. Such columns are marked unchanged here; the
    ``ADD VALUE`` statements still come from the enum diff.
    """
    for name, table in source_inspector.tables.items():
        before = target_inspector.tables.get(name)
        if before is None:
            continue
        for col_name, col in table.columns.items():
            old = before.columns.get(col_name)
            if (
                old is not None
                and col.is_enum
                and old.is_enum
                and col.dbtypestr == old.dbtypestr
                and col.enum != old.enum
                and old.enum.can_be_changed_to(col.enum)
            ):
                col.enum = old.enum


def _leave_partition_attachments_to_the_plan_layer(
    source_inspector: Inspector, target_inspector: Inspector
) -> None:
    """Stop migra attaching/detaching partitions (its statement is broken); :mod:`complete` does it.

    A table that is a partition on one side and a plain table on the other is given the same
    parent on both, so migra diffs only its columns and constraints.
    """
    for name, table in source_inspector.tables.items():
        before = target_inspector.tables.get(name)
        if before is None or before.relationtype != "r" or table.relationtype != "r":
            continue
        if before.parent_table != table.parent_table or before.partition_def != table.partition_def:
            before.parent_table, before.partition_def = table.parent_table, table.partition_def


def _object_in_traceback(exc: BaseException) -> str:
    """The name of the object the diff library was working on when it failed, if it can be told."""
    tb, name = exc.__traceback__, "an object it could not name"
    while tb is not None:
        candidate = tb.tb_frame.f_locals.get("self")
        full = getattr(candidate, "quoted_full_name", None) or getattr(candidate, "name", None)
        if isinstance(full, str):
            name = full
        tb = tb.tb_next
    return name


def plan_statements(source: Connection, target: Connection, schemas: Sequence[str]) -> Plan:
    """Statements that make ``target`` match ``source`` in ``schemas``, in the order to run them."""
    source_inspector, target_inspector = inspect(source, schemas), inspect(target, schemas)
    _keep_enum_columns_when_values_are_only_added(source_inspector, target_inspector)
    _leave_partition_attachments_to_the_plan_layer(source_inspector, target_inspector)
    migration = Migration(target_inspector, source_inspector)
    migration.set_safety(False)  # classification is ours, per statement
    try:
        migration.add_all_changes()
    except Exception as exc:  # the library's own bugs: say so, name the object
        raise SchemaSyncError(
            f"the diff library (migradiff) failed on {_object_in_traceback(exc)}: {type(exc).__name__}: {exc}"
        ) from exc
    unchanged = frozenset(
        relation(view.schema, view.name)
        for views in (source_inspector.views, source_inspector.materialized_views)
        for name, view in views.items()
        if name in target_inspector.relations and target_inspector.relations[name] == view
    )
    return Plan([str(s).strip() for s in migration.statements if str(s).strip()], unchanged)


class CatalogFacts:
    """:class:`~baseline_guard.schema.classify.TargetFacts` read from the target's catalog."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def column_type(self, schema: str, table: str, column: str) -> str | None:
        return self.conn.execute(
            sa.text(
                "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :s AND c.relname = :t AND a.attname = :c AND a.attnum > 0 "
                "AND NOT a.attisdropped"
            ),
            {"s": schema, "t": table, "c": column},
        ).scalar()

    def column_not_null(self, schema: str, table: str, column: str) -> bool:
        return bool(
            self.conn.execute(
                sa.text(
                    "SELECT a.attnotnull FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s AND c.relname = :t "
                    "AND a.attname = :c AND a.attnum > 0 AND NOT a.attisdropped"
                ),
                {"s": schema, "t": table, "c": column},
            ).scalar()
        )

    def table_has_rows(self, schema: str, table: str) -> bool:
        exists = self.conn.execute(
            sa.text("SELECT to_regclass(format('%I.%I', CAST(:s AS text), CAST(:t AS text))) IS NOT NULL"),
            {"s": schema, "t": table},
        ).scalar()
        if not exists:
            return False
        quote = self.conn.dialect.identifier_preparer.quote
        return bool(
            self.conn.execute(
                sa.text(f"SELECT EXISTS (SELECT 1 FROM {quote(schema)}.{quote(table)})")
            ).scalar()
        )

    def constraint_of_index(self, schema: str, index: str) -> str | None:
        return self.conn.execute(
            sa.text(
                "SELECT con.conname FROM pg_constraint con JOIN pg_class i ON i.oid = con.conindid "
                "JOIN pg_namespace n ON n.oid = i.relnamespace WHERE n.nspname = :s AND i.relname = :i "
                "AND con.contype IN ('p', 'u', 'x') LIMIT 1"
            ),
            {"s": schema, "i": index},
        ).scalar()

    def index_is_unique(self, schema: str, index: str) -> bool:
        return bool(
            self.conn.execute(
                sa.text(
                    "SELECT x.indisunique FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                    "JOIN pg_namespace n ON n.oid = i.relnamespace WHERE n.nspname = :s AND i.relname = :i"
                ),
                {"s": schema, "i": index},
            ).scalar()
        )

    def constraint_kind(self, schema: str, table: str, name: str) -> str | None:
        return self.conn.execute(
            sa.text(
                "SELECT c.contype FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
                "JOIN pg_namespace n ON n.oid = t.relnamespace "
                "WHERE n.nspname = :s AND t.relname = :t AND c.conname = :c"
            ),
            {"s": schema, "t": table, "c": name},
        ).scalar()
