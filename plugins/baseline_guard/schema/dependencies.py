"""Keep the safe subset of a plan runnable: hold what relies on held statements, skip no-op view rebuilds.

Works on statements already judged one by one (:mod:`classify`), using their
:mod:`footprint` (what each writes and reads).
"""

from __future__ import annotations

from dataclasses import dataclass

from pglast import ast
from pglast.enums import AlterTableType, ObjectType

from baseline_guard.schema import footprint as fp
from baseline_guard.schema.models import ClassifiedStatement

# Objects that hold no data: dropping one is safe when the plan re-creates it.
RECREATABLE = {
    ObjectType.OBJECT_VIEW: "view",
    ObjectType.OBJECT_MATVIEW: "materialized view",
    ObjectType.OBJECT_FUNCTION: "function",
    ObjectType.OBJECT_PROCEDURE: "procedure",
    ObjectType.OBJECT_AGGREGATE: "aggregate",
    ObjectType.OBJECT_TRIGGER: "trigger",
    ObjectType.OBJECT_POLICY: "policy",
}


@dataclass(frozen=True)
class Planned:
    """One statement of the plan with its parse trees, footprint and own verdict."""

    sql: str
    stmts: tuple[ast.Node, ...]
    footprint: fp.Footprint
    safe: bool
    reason: str


def _short(sql: str, limit: int = 90) -> str:
    one_line = " ".join(sql.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 3] + "..."


def _column_type_change(p: Planned) -> set[fp.Key]:
    """Columns whose type the statement changes."""
    keys = set()
    for stmt in p.stmts:
        if isinstance(stmt, ast.AlterTableStmt):
            for cmd in stmt.cmds or ():
                if cmd.subtype == AlterTableType.AT_AlterColumnType:
                    keys |= {k for k in p.footprint.writes if k[-2:] == ("col", cmd.name)}
    return keys


def hold_dependents(planned: list[Planned]) -> list[ClassifiedStatement]:
    """Hold every safe statement that relies on a held one, until nothing changes."""
    reasons: dict[int, str] = {i: p.reason for i, p in enumerate(planned)}
    held = {i for i, p in enumerate(planned) if not p.safe}
    changed = True
    while changed:
        changed = False
        for i, p in enumerate(planned):
            if i in held:
                continue
            cause = next(
                (j for j in sorted(held) if j < i and p.footprint.touches(planned[j].footprint.writes)), None
            )
            if cause is None:
                cause = _companion_cause(i, planned, held)
            if cause is not None:
                held.add(i)
                reasons[i] = (
                    f"held with statement {cause + 1} ({_short(planned[cause].sql)}), which is held and "
                    f"which it relies on or belongs with; on its own it {p.reason}"
                )
                changed = True
    return [
        ClassifiedStatement(sql=p.sql, safe=i not in held, reason=reasons[i]) for i, p in enumerate(planned)
    ]


def _companion_cause(i: int, planned: list[Planned], held: set[int]) -> int | None:
    """A held statement that statement ``i`` only makes sense with, even though it comes later.

    - any change to a column whose type change is held (e.g. migra drops a default before re-casting);
    - a drop of a view/function that is re-created by a held statement.
    """
    mine = planned[i].footprint.writes
    for j in sorted(held):
        retyped = _column_type_change(planned[j])
        if any(fp.covers(r, k) for r in retyped for k in mine):
            return j
        drops = [s for s in planned[i].stmts if isinstance(s, ast.DropStmt) and s.removeType in RECREATABLE]
        if drops and j > i and mine & planned[j].footprint.writes:
            return j
    return None


def _view_rebuilds(planned: list[Planned]) -> dict[int, int]:
    """Drop-of-view statement index -> index of the later statement that re-creates that view."""
    pairs = {}
    for i, p in enumerate(planned):
        if any(isinstance(s, ast.DropStmt) and s.removeType in RECREATABLE for s in p.stmts):
            later = (
                j for j in range(i + 1, len(planned)) if p.footprint.writes & planned[j].footprint.writes
            )
            creator = next(later, None)
            if creator is not None and any(
                isinstance(s, (ast.ViewStmt, ast.CreateTableAsStmt)) for s in planned[creator].stmts
            ):
                pairs[i] = creator
    return pairs


def _views_created(p: Planned) -> set[fp.Key]:
    """Relation keys of the views and materialized views the statement creates (not their indexes).

    The diff library and pg_dump always qualify these names, so the default schema does not matter.
    """
    return {
        key
        for s in p.stmts
        if isinstance(s, (ast.ViewStmt, ast.CreateTableAsStmt))
        for key in fp.footprint(s).writes
    }


def mark_unneeded_rebuilds(
    planned: list[Planned], result: list[ClassifiedStatement], unchanged_views: set[fp.Key]
) -> list[ClassifiedStatement]:
    """Mark drop+re-create of an unchanged view as not required when no applied statement needs it.

    migra drops every view on a table it changes and re-creates it. When the change that needed
    that is held, the re-creation is a no-op that would repeat every hour; it is kept only when a
    statement the safe subset applies changes something the view reads (PostgreSQL refuses to
    change the type of a column a view uses).
    """
    pairs = _view_rebuilds(planned)
    in_pairs = set(pairs) | set(pairs.values())
    needed = {i for i, j in pairs.items() if not (_views_created(planned[j]) <= unchanged_views)}
    changed = True
    while changed:
        changed = False
        for i, j in pairs.items():
            if i in needed:
                continue
            view_reads = planned[j].footprint.reads
            causes = [k for k in range(i + 1, j) if result[k].safe and (k not in in_pairs or k in needed)]
            if any(planned[k].footprint.touches_any(view_reads) for k in causes):
                needed.add(i)
                changed = True
    unneeded = {k for i, j in pairs.items() if i not in needed for k in (i, j)}
    return [
        ClassifiedStatement(
            s.sql,
            s.safe,
            f"{s.reason}; not needed now: the view is unchanged and only re-built for held changes",
            required=False,
        )
        if k in unneeded and s.safe
        else s
        for k, s in enumerate(result)
    ]
