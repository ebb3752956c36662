"""What a person reads before approving held DDL: a summary by kind, and a digest that binds the plan.

:func:`summarize_held` counts the held statements of one database by kind (tables dropped,
columns dropped, types changed, constraints dropped, ...) with the objects named and why each
kind is held, in words; :func:`plan_digest` is the SHA-256 of the exact statements, shown with
the approval and checked again before anything is applied. No Airflow here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pglast import ast, parse_sql
from pglast.enums import AlterTableType, ObjectType
from pglast.parser import ParseError

from baseline_guard.schema import footprint as fp

DIGEST_PREFIX = "sha256:"
NAMES_SHOWN = 8  # objects named per kind; the rest are counted


@dataclass(frozen=True)
class Kind:
    """One kind of held change, with why it is held in words."""

    label: str
    why: str


TABLES_DROPPED = Kind("tables dropped", "every row in them is lost")
COLUMNS_DROPPED = Kind("columns dropped", "their values are lost")
TYPES_CHANGED = Kind("column types changed", "values may be rewritten, truncated or refused")
NOT_NULL_ADDED = Kind("NOT NULL added", "fails if a row holds NULL; inserts without a value are refused")
NOT_NULL_DROPPED = Kind("NOT NULL dropped", "NULLs are accepted from now on")
CONSTRAINTS_DROPPED = Kind("constraints dropped", "rows they would reject are accepted from now on")
CONSTRAINTS_ADDED = Kind(
    "constraints added or validated", "fails if a row breaks them; such rows are refused"
)
INDEXES_DROPPED = Kind(
    "indexes dropped", "queries using them slow down; a unique one stops refusing duplicates"
)
VIEWS_REPLACED = Kind("views dropped or re-created", "readers of the view fail while it is re-created")
FUNCTIONS_DROPPED = Kind("functions, procedures or aggregates dropped", "callers fail")
TYPES_DROPPED = Kind("types or domains dropped or changed", "columns using them must change with them")
SEQUENCES_CHANGED = Kind("sequences dropped or changed", "numbering of new rows changes")
REFUSED = Kind(
    "refused by PostgreSQL (or tied to a refused statement)", "the plan cannot apply them as they are"
)
OTHER = Kind("other changes", "not known to be safe")

_ORDER = (
    TABLES_DROPPED,
    COLUMNS_DROPPED,
    TYPES_CHANGED,
    NOT_NULL_ADDED,
    NOT_NULL_DROPPED,
    CONSTRAINTS_DROPPED,
    CONSTRAINTS_ADDED,
    INDEXES_DROPPED,
    VIEWS_REPLACED,
    FUNCTIONS_DROPPED,
    TYPES_DROPPED,
    SEQUENCES_CHANGED,
    REFUSED,
    OTHER,
)
_DROPPED_KIND = {
    ObjectType.OBJECT_TABLE: TABLES_DROPPED,
    ObjectType.OBJECT_INDEX: INDEXES_DROPPED,
    ObjectType.OBJECT_VIEW: VIEWS_REPLACED,
    ObjectType.OBJECT_MATVIEW: VIEWS_REPLACED,
    ObjectType.OBJECT_FUNCTION: FUNCTIONS_DROPPED,
    ObjectType.OBJECT_PROCEDURE: FUNCTIONS_DROPPED,
    ObjectType.OBJECT_AGGREGATE: FUNCTIONS_DROPPED,
    ObjectType.OBJECT_TYPE: TYPES_DROPPED,
    ObjectType.OBJECT_DOMAIN: TYPES_DROPPED,
    ObjectType.OBJECT_SEQUENCE: SEQUENCES_CHANGED,
}
_COMMAND_KIND = {
    AlterTableType.AT_DropColumn: COLUMNS_DROPPED,
    AlterTableType.AT_AlterColumnType: TYPES_CHANGED,
    AlterTableType.AT_SetNotNull: NOT_NULL_ADDED,
    AlterTableType.AT_DropNotNull: NOT_NULL_DROPPED,
    AlterTableType.AT_DropConstraint: CONSTRAINTS_DROPPED,
    AlterTableType.AT_AddConstraint: CONSTRAINTS_ADDED,
    AlterTableType.AT_ValidateConstraint: CONSTRAINTS_ADDED,
}


@dataclass
class KindSummary:
    """How many held statements of one kind, and the objects they touch (named, in plan order)."""

    kind: Kind
    count: int = 0
    objects: list[str] = field(default_factory=list)

    def line(self) -> str:
        shown = ", ".join(self.objects[:NAMES_SHOWN])
        more = len(self.objects) - NAMES_SHOWN
        named = f": {shown}" + (f" and {more} more" if more > 0 else "") if shown else ""
        return f"{self.count} {self.kind.label} ({self.kind.why}){named}"


def plan_digest(statements: Iterable[str]) -> str:
    """SHA-256 of the exact statements in order (NUL-separated): what an approval is bound to."""
    h = hashlib.sha256()
    for sql in statements:
        h.update(sql.encode())
        h.update(b"\0")
    return DIGEST_PREFIX + h.hexdigest()


def _name(parts: Sequence[str]) -> str:
    return ".".join(parts)


def _kinds_of(sql: str, reason: str, schema: str) -> list[tuple[Kind, str]]:
    """(kind, object named) for each change one held statement makes."""
    if reason.startswith(("PostgreSQL refused", "depends on a statement PostgreSQL refused")):
        return [(REFUSED, " ".join(sql.split())[:80])]
    try:
        stmts = [raw.stmt for raw in parse_sql(sql)]
    except ParseError:
        return [(OTHER, " ".join(sql.split())[:80])]
    found: list[tuple[Kind, str]] = []
    for stmt in stmts:
        if isinstance(stmt, ast.DropStmt):
            kind = OTHER if stmt.removeType is None else _DROPPED_KIND.get(stmt.removeType, OTHER)
            found += [(kind, _name(fp.object_names(o))) for o in stmt.objects or ()]
        elif isinstance(stmt, ast.AlterTableStmt):
            table = _name(fp.range_var(stmt.relation, schema))
            for cmd in stmt.cmds or ():
                kind = _COMMAND_KIND.get(cmd.subtype, OTHER)
                name = cmd.name or getattr(cmd.def_, "conname", None)
                found.append((kind, f"{table}.{name}" if name else table))
        elif isinstance(stmt, (ast.ViewStmt, ast.CreateTableAsStmt)):
            target = stmt.view if isinstance(stmt, ast.ViewStmt) else fp.present(stmt.into, "target").rel
            found.append((VIEWS_REPLACED, _name(fp.range_var(target, schema))))
        elif isinstance(stmt, (ast.AlterSeqStmt, ast.CreateSeqStmt)):
            found.append((SEQUENCES_CHANGED, _name(fp.range_var(stmt.sequence, schema))))
        elif isinstance(stmt, (ast.AlterDomainStmt, ast.AlterEnumStmt)):
            names = fp.names(stmt.typeName)
            found.append((TYPES_DROPPED, _name(names)))
        else:
            found.append((OTHER, " ".join(sql.split())[:80]))
    return found or [(OTHER, " ".join(sql.split())[:80])]


def summarize_held(held: Sequence[Mapping[str, str]], default_schema: str = "public") -> list[KindSummary]:
    """The held statements (``{"sql", "reason"}``) of one database counted by kind, most harmful first."""
    by_kind: dict[str, KindSummary] = {}
    for statement in held:
        seen: set[str] = set()
        for kind, name in _kinds_of(statement["sql"], statement.get("reason", ""), default_schema):
            summary = by_kind.setdefault(kind.label, KindSummary(kind))
            if kind.label not in seen:
                summary.count += 1
                seen.add(kind.label)
            if name not in summary.objects:
                summary.objects.append(name)
    return [by_kind[k.label] for k in _ORDER if k.label in by_kind]
