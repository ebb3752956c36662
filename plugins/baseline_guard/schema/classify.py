"""Sort DDL statements into safe (applied by the hourly sync) and destructive (held for a person).

Every statement is parsed with pglast; nothing is decided on the SQL text. The rules are a
list of what is known to be safe: anything the classifier does not recognise is held.
A safe statement that relies on a held one is then held too (:mod:`dependencies`), so the
safe subset still applies in a valid order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pglast import ast, parse_sql
from pglast.enums import AlterTableType, ConstrType, ObjectType
from pglast.parser import ParseError

from baseline_guard.schema import footprint as fp
from baseline_guard.schema.dependencies import RECREATABLE, Planned, hold_dependents, mark_unneeded_rebuilds
from baseline_guard.schema.models import ClassifiedStatement

OLD_ENUM_SUFFIX = "__old_version_to_be_dropped"  # migra renames an enum to this before re-creating it

# Functions whose value differs per row: a column added with such a default rewrites the table.
VOLATILE_FUNCTIONS = frozenset(
    {
        "random",
        "gen_random_uuid",
        "uuid_generate_v4",
        "uuid_generate_v1",
        "clock_timestamp",
        "timeofday",
        "nextval",
        "uuidv4",
        "uuidv7",
        "txid_current",
        "statement_timestamp",
    }
)
# Same-family changes PostgreSQL does without rewriting the table or converting a value.
_LENGTH_TYPES = frozenset({"varchar", "varbit"})
_TEXT_LIKE = frozenset({"varchar", "text"})
# Changes that never lose a value but rewrite the whole table.
_LOSSLESS_REWRITES = {
    "int2": {"int4", "int8", "numeric", "float8"},
    "int4": {"int8", "numeric", "float8"},
    "int8": {"numeric"},
    "float4": {"float8", "numeric"},
    "timestamp": {"timestamptz"},
}
_CONSTRAINT_KINDS = {
    ConstrType.CONSTR_PRIMARY: "primary key",
    ConstrType.CONSTR_UNIQUE: "unique",
    ConstrType.CONSTR_FOREIGN: "foreign key",
    ConstrType.CONSTR_CHECK: "check",
    ConstrType.CONSTR_EXCLUSION: "exclusion",
    ConstrType.CONSTR_NOTNULL: "not null",
}


class TargetFacts(Protocol):
    """What the classifier needs to know about the target database as it is now."""

    def column_type(self, schema: str, table: str, column: str) -> str | None:
        """``format_type`` of the column, or None if it does not exist."""

    def table_has_rows(self, schema: str, table: str) -> bool:
        """True if the table exists and holds at least one row."""

    def constraint_of_index(self, schema: str, index: str) -> str | None:
        """Name of the constraint the index backs, or None."""

    def index_is_unique(self, schema: str, index: str) -> bool:
        """True if the index exists and is unique."""

    def constraint_kind(self, schema: str, table: str, name: str) -> str | None:
        """``pg_constraint.contype`` of the table's constraint, or None if there is none by that name."""

    def column_not_null(self, schema: str, table: str, column: str) -> bool:
        """True if the column exists and is NOT NULL."""


@dataclass(frozen=True)
class _Verdict:
    safe: bool
    reason: str


def _safe(reason: str) -> _Verdict:
    return _Verdict(True, reason)


def _held(reason: str) -> _Verdict:
    return _Verdict(False, reason)


def _qname(schema: str, name: str) -> str:
    return f"{schema}.{name}"


@dataclass(frozen=True)
class _Type:
    schema: str | None
    name: str
    mods: tuple[int, ...]
    array: bool = False

    @classmethod
    def of(cls, tn: ast.TypeName) -> _Type:
        parts = fp.names(tn.names)
        mods = tuple(
            fp.present(m.val.ival, "type modifier")
            for m in tn.typmods or ()
            if isinstance(m, ast.A_Const) and isinstance(m.val, ast.Integer)
        )
        schema = parts[-2] if len(parts) >= 2 and parts[-2] != "pg_catalog" else None
        return cls(schema, parts[-1], mods, array=bool(tn.arrayBounds))

    @classmethod
    def parse(cls, text: str) -> _Type:
        select = fp.node_of(parse_sql(f"SELECT NULL::{text}")[0].stmt, ast.SelectStmt, "SELECT")
        target = fp.node_of(fp.present(select.targetList, "target list")[0], ast.ResTarget, "target")
        cast = fp.node_of(target.val, ast.TypeCast, "type cast")
        return cls.of(fp.present(cast.typeName, "type name"))

    def __str__(self) -> str:
        mods = f"({','.join(map(str, self.mods))})" if self.mods else ""
        return f"{self.name}{mods}{'[]' if self.array else ''}"


def _widens_in_place(old: _Type, new: _Type) -> bool:
    """True when PostgreSQL changes ``old`` to ``new`` without touching or rewriting stored values."""
    if old.array != new.array:
        return False
    if old.name in _LENGTH_TYPES and new.name == old.name:
        return not new.mods or (bool(old.mods) and new.mods[0] >= old.mods[0])
    if old.name in _TEXT_LIKE and new.name in _TEXT_LIKE:
        return new.name == "text" or not new.mods
    if old.name == new.name == "numeric":
        if not new.mods:
            return True
        old_scale = old.mods[1] if len(old.mods) > 1 else 0
        new_scale = new.mods[1] if len(new.mods) > 1 else 0
        return bool(old.mods) and new.mods[0] >= old.mods[0] and new_scale == old_scale
    return False


class _Classifier:
    def __init__(
        self, facts: TargetFacts, recreated_enums: set[tuple[str, str]], later_writes: frozenset[fp.Key]
    ):
        self.facts = facts
        self.recreated_enums = recreated_enums
        self.later_writes = later_writes

    def statement(self, stmt: ast.Node, schema: str) -> _Verdict:
        handler = getattr(self, f"_{type(stmt).__name__}", None)
        if handler is None:
            return _held(f"{type(stmt).__name__} is not a change the sync knows to be safe; a person decides")
        verdict: _Verdict = handler(stmt, schema)
        return verdict

    # --- creations: safe -------------------------------------------------------------------

    def _CreateSchemaStmt(self, stmt: ast.CreateSchemaStmt, schema: str) -> _Verdict:
        return _safe(f"creates schema {stmt.schemaname}")

    def _CreateExtensionStmt(self, stmt: ast.CreateExtensionStmt, schema: str) -> _Verdict:
        return _safe(f"creates extension {stmt.extname}")

    def _CreateStmt(self, stmt: ast.CreateStmt, schema: str) -> _Verdict:
        return _safe(f"creates table {_qname(*fp.range_var(stmt.relation, schema))} (new, empty)")

    def _CreateSeqStmt(self, stmt: ast.CreateSeqStmt, schema: str) -> _Verdict:
        return _safe(f"creates sequence {_qname(*fp.range_var(stmt.sequence, schema))}")

    def _AlterSeqStmt(self, stmt: ast.AlterSeqStmt, schema: str) -> _Verdict:
        name = _qname(*fp.range_var(stmt.sequence, schema))
        if any(opt.defname == "restart" for opt in stmt.options or ()):
            return _held(f"restarts sequence {name}: new rows could reuse existing ids")
        return _safe(f"changes options or owner of sequence {name} (its current value is kept)")

    def _IndexStmt(self, stmt: ast.IndexStmt, schema: str) -> _Verdict:
        table = _qname(*fp.range_var(stmt.relation, schema))
        kind = "unique index" if stmt.unique else "index"
        return _safe(f"creates {kind} {stmt.idxname} on {table} (no data changes)")

    def _ViewStmt(self, stmt: ast.ViewStmt, schema: str) -> _Verdict:
        verb = "creates or replaces" if stmt.replace else "creates"
        return _safe(f"{verb} view {_qname(*fp.range_var(stmt.view, schema))} (a view holds no data)")

    def _CreateTableAsStmt(self, stmt: ast.CreateTableAsStmt, schema: str) -> _Verdict:
        return _safe(
            f"creates materialized view {_qname(*fp.range_var(fp.present(stmt.into, 'INTO clause').rel, schema))}"
        )

    def _RefreshMatViewStmt(self, stmt: ast.RefreshMatViewStmt, schema: str) -> _Verdict:
        return _safe(
            f"fills materialized view {_qname(*fp.range_var(stmt.relation, schema))} again from its query "
            "(derived data: nothing stored is lost; costs the query's run)"
        )

    def _GrantStmt(self, stmt: ast.GrantStmt, schema: str) -> _Verdict:
        if not stmt.is_grant:
            return _held("revokes privileges: whoever used them is refused from now on")
        return _safe("grants the baseline's own privileges on an object it re-creates (no data changes)")

    def _CreateEnumStmt(self, stmt: ast.CreateEnumStmt, schema: str) -> _Verdict:
        name = fp.qualified(fp.names(stmt.typeName), schema)
        if name in self.recreated_enums:
            return _held(
                f"creates the new version of enum {_qname(*name)} (part of re-creating it, see the rename)"
            )
        return _safe(f"creates enum type {_qname(*name)}")

    def _AlterEnumStmt(self, stmt: ast.AlterEnumStmt, schema: str) -> _Verdict:
        name = _qname(*fp.qualified(fp.names(stmt.typeName), schema))
        if stmt.oldVal:
            return _held(f"renames value {stmt.oldVal!r} of enum {name}: rows and code using it would change")
        return _safe(f"adds value {stmt.newVal!r} to enum {name} (existing values are unchanged)")

    def _CreateDomainStmt(self, stmt: ast.CreateDomainStmt, schema: str) -> _Verdict:
        return _safe(f"creates domain {_qname(*fp.qualified(fp.names(stmt.domainname), schema))}")

    def _CompositeTypeStmt(self, stmt: ast.CompositeTypeStmt, schema: str) -> _Verdict:
        return _safe(f"creates composite type {_qname(*fp.range_var(stmt.typevar, schema))}")

    def _CreateFunctionStmt(self, stmt: ast.CreateFunctionStmt, schema: str) -> _Verdict:
        verb = "creates or replaces" if stmt.replace else "creates"
        return _safe(f"{verb} function {_qname(*fp.qualified(fp.names(stmt.funcname), schema))}")

    def _CreateTrigStmt(self, stmt: ast.CreateTrigStmt, schema: str) -> _Verdict:
        return _safe(f"creates trigger {stmt.trigname} on {_qname(*fp.range_var(stmt.relation, schema))}")

    def _CreatePolicyStmt(self, stmt: ast.CreatePolicyStmt, schema: str) -> _Verdict:
        return _safe(f"creates row security policy {stmt.policy_name}")

    def _CommentStmt(self, stmt: ast.CommentStmt, schema: str) -> _Verdict:
        return _safe("sets a comment (no data changes)")

    def _VariableSetStmt(self, stmt: ast.VariableSetStmt, schema: str) -> _Verdict:
        return _safe(f"sets {stmt.name} for the applying session only (nothing stored changes)")

    def _DefineStmt(self, stmt: ast.DefineStmt, schema: str) -> _Verdict:
        kind = fp.present(stmt.kind, "object kind").name.removeprefix("OBJECT_").lower().replace("_", " ")
        name = ".".join(fp.names(stmt.defnames))
        if stmt.replace:
            return _held(f"replaces {kind} {name}: whatever uses it changes behaviour")
        return _safe(f"creates {kind} {name}")

    def _AlterDomainStmt(self, stmt: ast.AlterDomainStmt, schema: str) -> _Verdict:
        name = _qname(*fp.qualified(fp.names(stmt.typeName), schema))
        match stmt.subtype:
            case "C":
                return _safe(
                    f"adds a constraint to domain {name} (checked against stored values: refused if one breaks it)"
                )
            case "X":
                return _held(f"drops constraint {stmt.name} of domain {name}: values it rejects are accepted")
            case "T":
                return _safe(f"sets the default of domain {name} (stored values are unchanged)")
            case "N":
                return _safe(f"allows NULL in domain {name}")
            case "O":
                return _held(f"adds NOT NULL to domain {name}: scans every column of that type")
        return _held(f"changes domain {name} in a way the sync does not know to be safe")

    # --- renames and drops ------------------------------------------------------------------

    def _RenameStmt(self, stmt: ast.RenameStmt, schema: str) -> _Verdict:
        if stmt.renameType == ObjectType.OBJECT_TYPE and fp.present(stmt.newname, "new name").endswith(
            OLD_ENUM_SUFFIX
        ):
            name = _qname(*fp.qualified(fp.names(stmt.object), schema))
            return _held(
                f"re-creates enum {name} because production removed or reordered values: "
                "rows holding a removed value would fail to convert"
            )
        if stmt.renameType == ObjectType.OBJECT_TABCONSTRAINT and stmt.relation is not None:
            table = fp.range_var(stmt.relation, schema)
            subname = fp.present(stmt.subname, "constraint name")
            kind = self.facts.constraint_kind(*table, subname)
            if kind == "n" or (kind is None and subname.endswith("_not_null")):
                return _safe(
                    f"renames NOT NULL constraint {subname} of {_qname(*table)} to production's name "
                    "(nothing refers to it)"
                )
        return _held(
            f"renames {fp.present(stmt.renameType, 'object type').name.removeprefix('OBJECT_').lower()}: "
            "code using the old name breaks"
        )

    def _DropStmt(self, stmt: ast.DropStmt, schema: str) -> _Verdict:
        kind = stmt.removeType
        objects = [fp.object_names(o) for o in stmt.objects or ()]
        label = ", ".join(".".join(o) for o in objects)
        if kind == ObjectType.OBJECT_INDEX:
            backing = [self.facts.constraint_of_index(*fp.qualified(o, schema)) for o in objects]
            if any(backing):
                return _held(
                    f"drops index {label}, which backs constraint {', '.join(filter(None, backing))}"
                )
            if any(self.facts.index_is_unique(*fp.qualified(o, schema)) for o in objects):
                return _held(
                    f"drops unique index {label}: duplicate rows it would reject are accepted from now on "
                    "(as when a UNIQUE constraint is dropped)"
                )
            return _safe(f"drops index {label} (holds no data and backs no constraint)")
        if kind in RECREATABLE:
            written = fp.footprint(stmt, schema).writes
            if written and written <= self.later_writes:
                return _safe(
                    f"drops {RECREATABLE[kind]} {label} to re-create it below with production's definition"
                )
            return _held(f"drops {RECREATABLE[kind]} {label}: whatever uses it breaks")
        if kind == ObjectType.OBJECT_TABLE:
            return _held(f"drops table {label} and all its rows")
        if kind == ObjectType.OBJECT_SEQUENCE:
            return _held(f"drops sequence {label} and its current value")
        if kind == ObjectType.OBJECT_TYPE and any(o[-1].endswith(OLD_ENUM_SUFFIX) for o in objects):
            return _held(f"drops the old version of a re-created enum ({label})")
        return _held(f"drops {fp.present(kind, 'object type').name.removeprefix('OBJECT_').lower()} {label}")

    # --- table changes ----------------------------------------------------------------------

    def _AlterTableStmt(self, stmt: ast.AlterTableStmt, schema: str) -> _Verdict:
        table = fp.range_var(stmt.relation, schema)
        if stmt.objtype == ObjectType.OBJECT_INDEX and all(
            cmd.subtype == AlterTableType.AT_AttachPartition for cmd in stmt.cmds or ()
        ):
            return _safe(
                f"attaches a partition's index to partitioned index {_qname(*table)} (no data changes)"
            )
        verdicts = [self._command(cmd, table) for cmd in stmt.cmds or ()]
        held = [v.reason for v in verdicts if not v.safe]
        if held:
            return _held("; ".join(held))
        return _safe("; ".join(v.reason for v in verdicts))

    def _command(self, cmd: ast.AlterTableCmd, table: tuple[str, str]) -> _Verdict:
        t = _qname(*table)
        col = f"{t}.{cmd.name}"
        match cmd.subtype:
            case AlterTableType.AT_AddColumn:
                return self._add_column(fp.node_of(cmd.def_, ast.ColumnDef, "column definition"), table)
            case AlterTableType.AT_DropColumn:
                return _held(f"drops column {col} and its data")
            case AlterTableType.AT_AlterColumnType:
                return self._column_type(cmd, table)
            case AlterTableType.AT_ColumnDefault:
                if cmd.def_ is not None and _calls(cmd.def_, "nextval") and self.facts.table_has_rows(*table):
                    return _held(
                        f"switches the default of {col} of a non-empty table to another sequence: its next "
                        "values may collide with the ids already stored (set the sequence with setval first)"
                    )
                if cmd.def_ is None and self.facts.column_not_null(*table, fp.present(cmd.name, "column")):
                    return _held(
                        f"drops the default of {col}, which is NOT NULL: inserts that leave it out are refused "
                        "from now on"
                    )
                verb = "sets" if cmd.def_ is not None else "drops"
                return _safe(f"{verb} the default of {col} (stored rows are unchanged)")
            case AlterTableType.AT_SetRelOptions | AlterTableType.AT_ResetRelOptions:
                return _safe(f"changes storage parameters of {t} (no rewrite; they apply to new writes)")
            case AlterTableType.AT_SetExpression:
                if self.facts.table_has_rows(*table):
                    return _held(
                        f"changes the expression of generated column {col} of a non-empty table: "
                        "a stored one is recomputed for every row under an exclusive lock"
                    )
                return _safe(f"changes the expression of generated column {col} (the table is empty)")
            case AlterTableType.AT_AttachPartition:
                return self._attach(cmd, table)
            case AlterTableType.AT_DetachPartition:
                return _held(f"detaches a partition from {t}: its rows no longer appear in {t}")
            case AlterTableType.AT_DropNotNull:
                return _safe(f"allows NULL in {col}")
            case AlterTableType.AT_SetNotNull:
                if self.facts.table_has_rows(*table):
                    return _held(
                        f"adds NOT NULL to {col} of a non-empty table: fails if a row holds NULL, "
                        "and scans the table under an exclusive lock"
                    )
                return _safe(f"adds NOT NULL to {col} (the table is empty)")
            case AlterTableType.AT_AddConstraint:
                con = fp.node_of(cmd.def_, ast.Constraint, "constraint")
                contype = fp.present(con.contype, "constraint type")
                kind = _CONSTRAINT_KINDS.get(contype, contype.name)
                checked = " (not validated yet)" if con.skip_validation else ""
                return _safe(f"adds {kind} constraint {con.conname} to {t}{checked}")
            case AlterTableType.AT_ValidateConstraint:
                return _safe(
                    f"validates constraint {cmd.name} of {t} (fails, and nothing applies, if a row breaks it)"
                )
            case AlterTableType.AT_DropConstraint:
                return _held(
                    f"drops constraint {cmd.name} of {t}: rows it would reject are accepted from now on"
                )
            case _:
                subtype = fp.present(cmd.subtype, "subcommand").name
                return _held(f"{subtype} on {t} is not a change the sync knows to be safe")

    def _attach(self, cmd: ast.AlterTableCmd, table: tuple[str, str]) -> _Verdict:
        part = fp.range_var(fp.node_of(cmd.def_, ast.PartitionCmd, "partition").name, table[0])
        if self.facts.table_has_rows(*part):
            return _held(
                f"attaches non-empty {_qname(*part)} to {_qname(*table)}: scans it under an exclusive lock"
            )
        return _safe(f"attaches empty {_qname(*part)} to {_qname(*table)} as a partition")

    def _add_column(self, col: ast.ColumnDef, table: tuple[str, str]) -> _Verdict:
        name = f"{_qname(*table)}.{col.colname}"
        constraints = list(col.constraints or ())
        kinds = {c.contype for c in constraints}
        default = next(
            (c.raw_expr for c in constraints if c.contype == ConstrType.CONSTR_DEFAULT), col.raw_default
        )
        rewrites = ConstrType.CONSTR_IDENTITY in kinds or ConstrType.CONSTR_GENERATED in kinds
        volatile = default is not None and any(
            isinstance(n, ast.FuncCall) and fp.names(n.funcname)[-1] in VOLATILE_FUNCTIONS
            for n in fp.walk(default)
        )
        not_null = col.is_not_null or ConstrType.CONSTR_NOTNULL in kinds or ConstrType.CONSTR_PRIMARY in kinds
        if (rewrites or volatile or (not_null and default is None)) and self.facts.table_has_rows(*table):
            if not_null and default is None and not rewrites:
                return _held(
                    f"adds NOT NULL column {name} without a default to a non-empty table: it would fail"
                )
            return _held(f"adds column {name} whose value is computed per row: rewrites the non-empty table")
        if default is not None:
            return _safe(f"adds column {name} with a default")
        return _safe(f"adds {'NOT NULL column to an empty table' if not_null else 'nullable column'} {name}")

    def _column_type(self, cmd: ast.AlterTableCmd, table: tuple[str, str]) -> _Verdict:
        name = f"{_qname(*table)}.{cmd.name}"
        column_def = fp.node_of(cmd.def_, ast.ColumnDef, "column definition")
        new = _Type.of(fp.present(column_def.typeName, "type name"))
        old_text = self.facts.column_type(*table, fp.present(cmd.name, "column name"))
        if old_text is None:
            return _held(f"changes the type of {name}, which the target does not have")
        try:
            old = _Type.parse(old_text)
        except ParseError:
            return _held(f"changes the type of {name} from {old_text}, a type the sync cannot read")
        if new.schema and (new.schema, new.name) in self.recreated_enums and old.name == new.name:
            return _held(
                f"converts {name} to the re-created enum {new.name}: rows holding a removed value would fail"
            )
        if _widens_in_place(old, new):
            return _safe(f"widens {name} from {old} to {new} (no rewrite, no value changes)")
        if new.name in _LOSSLESS_REWRITES.get(old.name, ()):
            return _held(
                f"widens {name} from {old} to {new} but rewrites the whole table under an exclusive lock"
            )
        return _held(
            f"changes {name} from {old} to {new}: values may fail to convert or lose data; rewrites the table"
        )


def _calls(expr: object, function: str) -> bool:
    return any(isinstance(n, ast.FuncCall) and fp.names(n.funcname)[-1] == function for n in fp.walk(expr))


def _parse(sql: str) -> tuple[ast.Node, ...] | None:
    try:
        return tuple(fp.present(raw.stmt, "statement") for raw in parse_sql(sql))
    except ParseError:
        return None


def _recreated_enums(parsed: Sequence[tuple[ast.Node, ...] | None], schema: str) -> set[tuple[str, str]]:
    names = set()
    for stmts in parsed:
        for stmt in stmts or ():
            if (
                isinstance(stmt, ast.RenameStmt)
                and stmt.renameType == ObjectType.OBJECT_TYPE
                and fp.present(stmt.newname, "new name").endswith(OLD_ENUM_SUFFIX)
            ):
                names.add(fp.qualified(fp.names(stmt.object), schema))
    return names


def _added_enum_values(parsed: Sequence[tuple[ast.Node, ...] | None]) -> dict[str, set[str]]:
    """Enum type name (unqualified) -> values the plan adds to it with ``ALTER TYPE .. ADD VALUE``."""
    added: dict[str, set[str]] = {}
    for stmts in parsed:
        for stmt in stmts or ():
            if isinstance(stmt, ast.AlterEnumStmt) and stmt.newVal and not stmt.oldVal:
                added.setdefault(fp.names(stmt.typeName)[-1], set()).add(stmt.newVal)
    return added


def _new_enum_value_used(stmts: tuple[ast.Node, ...], added: dict[str, set[str]]) -> str | None:
    """``'value'::enum`` in the statement for a value the same plan adds, as text, or None."""
    for node in fp.walk(stmts):
        if isinstance(node, ast.TypeCast) and isinstance(node.arg, ast.A_Const):
            enum = fp.names(fp.present(node.typeName, "type name").names)[-1]
            value = getattr(node.arg.val, "sval", None)
            if value in added.get(enum, ()):
                return f"{value!r}::{enum}"
    return None


def _footprint(stmts: tuple[ast.Node, ...], default_schema: str) -> fp.Footprint:
    parts = [fp.footprint(s, default_schema) for s in stmts]
    return fp.Footprint(
        writes=frozenset(k for p in parts for k in p.writes),
        reads=frozenset(k for p in parts for k in p.reads),
    )


def _plan(statements: Sequence[str], facts: TargetFacts, default_schema: str) -> list[Planned]:
    parsed = [_parse(sql) for sql in statements]
    recreated = _recreated_enums(parsed, default_schema)
    added_values = _added_enum_values(parsed)
    footprints = [_footprint(stmts or (), default_schema) for stmts in parsed]
    later_writes: list[frozenset[fp.Key]] = []
    seen: set[fp.Key] = set()
    for f in reversed(footprints):
        later_writes.append(frozenset(seen))
        seen |= f.writes
    later_writes.reverse()
    planned = []
    for i, (sql, stmts) in enumerate(zip(statements, parsed, strict=True)):
        if not stmts:
            verdict = _held("could not be parsed as PostgreSQL; a person decides")
        elif used := _new_enum_value_used(stmts, added_values):
            verdict = _held(
                f"uses {used}, a value this run adds: PostgreSQL cannot use an enum value in the "
                "transaction that adds it; the next run applies it"
            )
        else:
            classifier = _Classifier(facts, recreated, later_writes[i])
            verdicts = [classifier.statement(s, fp.statement_schema(s, default_schema)) for s in stmts]
            held = [v.reason for v in verdicts if not v.safe]
            verdict = _held("; ".join(held)) if held else _safe("; ".join(v.reason for v in verdicts))
        planned.append(Planned(sql, stmts or (), footprints[i], verdict.safe, verdict.reason))
    return planned


def classify(
    statements: Sequence[str],
    facts: TargetFacts,
    default_schema: str = "public",
    unchanged_views: set[fp.Key] | frozenset[fp.Key] = frozenset(),
) -> list[ClassifiedStatement]:
    """Classify a plan's statements (in plan order) as safe or destructive, each with a reason.

    :param unchanged_views: relation keys of views whose definition is the same on both sides
    """
    planned = _plan(statements, facts, default_schema)
    return mark_unneeded_rebuilds(planned, hold_dependents(planned), set(unchanged_views))
