"""What a DDL statement creates, changes or drops, and what it relies on, read from its pglast parse tree.

Objects are keys (tuples). A key that is a prefix of another covers it: dropping table
``("rel", "public", "a")`` touches column ``("rel", "public", "a", "col", "x")``. A reference to
a relation as a whole (``FROM a``) is the key ``("rel", schema, a, "")``: it is covered by a drop
or re-creation of ``a`` but not by a change to one of ``a``'s columns.

The classifier uses footprints to hold statements that rely on a held statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType

from baseline_guard.errors import SchemaSyncError

Key = tuple[str, ...]
_T = TypeVar("_T")
_N = TypeVar("_N", bound=ast.Node)

_RELATION_DROPS = {
    ObjectType.OBJECT_TABLE,
    ObjectType.OBJECT_VIEW,
    ObjectType.OBJECT_MATVIEW,
    ObjectType.OBJECT_SEQUENCE,
    ObjectType.OBJECT_INDEX,
    ObjectType.OBJECT_FOREIGN_TABLE,
}
_TYPE_DROPS = {ObjectType.OBJECT_TYPE, ObjectType.OBJECT_DOMAIN}
_FUNCTION_DROPS = {
    ObjectType.OBJECT_FUNCTION,
    ObjectType.OBJECT_PROCEDURE,
    ObjectType.OBJECT_ROUTINE,
    ObjectType.OBJECT_AGGREGATE,
}
_TABLE_MEMBER_DROPS = {
    ObjectType.OBJECT_TRIGGER: "trigger",
    ObjectType.OBJECT_POLICY: "policy",
    ObjectType.OBJECT_RULE: "rule",
}
_COLUMN_COMMANDS = {
    AlterTableType.AT_AddColumn,
    AlterTableType.AT_DropColumn,
    AlterTableType.AT_AlterColumnType,
    AlterTableType.AT_ColumnDefault,
    AlterTableType.AT_SetNotNull,
    AlterTableType.AT_DropNotNull,
    AlterTableType.AT_AddIdentity,
    AlterTableType.AT_SetIdentity,
    AlterTableType.AT_DropIdentity,
    AlterTableType.AT_DropExpression,
    AlterTableType.AT_SetStatistics,
    AlterTableType.AT_SetStorage,
    AlterTableType.AT_SetCompression,
}

# Column changes that leave the column's existence and type alone: a held one of these does not
# stop later statements that merely use the column.
_COLUMN_ASPECTS = {
    AlterTableType.AT_ColumnDefault: "default",
    AlterTableType.AT_SetNotNull: "notnull",
    AlterTableType.AT_DropNotNull: "notnull",
    AlterTableType.AT_SetStatistics: "storage",
    AlterTableType.AT_SetStorage: "storage",
    AlterTableType.AT_SetCompression: "storage",
}


def relation(schema: str, name: str) -> Key:
    return ("rel", schema, name)


def relation_exists(schema: str, name: str) -> Key:
    return ("rel", schema, name, "")


def column(schema: str, table: str, name: str) -> Key:
    return ("rel", schema, table, "col", name)


def constraint(schema: str, table: str, name: str) -> Key:
    return ("rel", schema, table, "con", name)


def type_(schema: str, name: str) -> Key:
    return ("type", schema, name)


def function(schema: str, name: str) -> Key:
    return ("func", schema, name)


def covers(outer: Key, inner: Key) -> bool:
    """True when a change to ``outer`` affects ``inner`` (same object, or a part of it)."""
    return inner[: len(outer)] == outer


@dataclass(frozen=True)
class Footprint:
    writes: frozenset[Key]
    reads: frozenset[Key]

    def touches(self, written: Iterable[Key]) -> bool:
        """True when this statement reads or writes anything a change to ``written`` affects."""
        mine = self.writes | self.reads
        return any(covers(w, k) for w in written for k in mine)

    def touches_any(self, keys: Iterable[Key]) -> bool:
        """True when this statement's writes affect any of ``keys``."""
        return any(covers(w, k) for w in self.writes for k in keys)


def walk(node: object) -> Iterator[ast.Node]:
    """Every node below ``node`` (depth first, ``node`` included)."""
    if isinstance(node, ast.Node):
        yield node
        for attr in node:
            yield from walk(getattr(node, attr))
    elif isinstance(node, (tuple, list)):
        for item in node:
            yield from walk(item)


def present(value: _T | None, what: str) -> _T:
    """A field PostgreSQL's parser always fills for this statement (pglast types every field optional)."""
    if value is None:
        raise SchemaSyncError(f"the parsed statement has no {what}: expected PostgreSQL's parser to fill it")
    return value


def node_of(value: object, kind: type[_N], what: str) -> _N:
    """``value`` as the node type PostgreSQL's parser puts there (pglast types it as any node)."""
    if not isinstance(value, kind):
        raise SchemaSyncError(f"the parsed {what} is a {type(value).__name__}: expected {kind.__name__}")
    return value


def names(items: Iterable[object] | None) -> list[str]:
    """The string values of a pglast name list (``(String('public'), String('a'))``)."""
    return [present(item.sval, "name") for item in items or () if isinstance(item, ast.String)]


def object_names(obj: object) -> list[str]:
    """Name parts of one object of a DROP: a name list, a TypeName, an ObjectWithArgs or a bare String."""
    if isinstance(obj, ast.String):
        return [present(obj.sval, "name")]
    if isinstance(obj, ast.TypeName):
        return names(obj.names)
    if isinstance(obj, ast.ObjectWithArgs):
        return names(obj.objname)
    return names(obj) if isinstance(obj, (list, tuple)) else []


def qualified(parts: list[str], default_schema: str) -> tuple[str, str]:
    return (parts[-2], parts[-1]) if len(parts) >= 2 else (default_schema, parts[-1])


def range_var(rv: ast.RangeVar | None, default_schema: str) -> tuple[str, str]:
    """(schema, name) of a relation the statement names."""
    rv = present(rv, "relation")
    return (rv.schemaname or default_schema, present(rv.relname, "relation name"))


def statement_schema(stmt: ast.Node, fallback: str) -> str:
    """The schema the statement is about, used for its unqualified names."""
    for node in walk(stmt):
        if isinstance(node, ast.RangeVar) and node.schemaname:
            return node.schemaname
    return fallback


class _Reads:
    """Collects what expressions inside a statement refer to: columns, relations, types."""

    def __init__(self, default_schema: str) -> None:
        self.default_schema = default_schema
        self.keys: set[Key] = set()

    def type_name(self, tn: ast.TypeName) -> None:
        parts = names(tn.names)
        if parts and parts[0] != "pg_catalog":
            self.keys.add(type_(*qualified(parts, self.default_schema)))

    def expression(self, expr: object, tables: list[tuple[str, str]]) -> None:
        """Column references in ``expr`` resolved against ``tables`` (all of them when ambiguous)."""
        aliases: dict[str, tuple[str, str]] = {}
        tables = list(tables)
        for node in walk(expr):
            if isinstance(node, ast.RangeVar):
                table = range_var(node, self.default_schema)
                tables.append(table)
                aliases[node.alias.aliasname if node.alias and node.alias.aliasname else table[1]] = table
                self.keys.add(relation_exists(*table))
            elif isinstance(node, ast.TypeName):
                self.type_name(node)
            elif isinstance(node, ast.FuncCall):
                parts = names(node.funcname)
                if len(parts) >= 2 and parts[0] != "pg_catalog":
                    self.keys.add(function(*qualified(parts, self.default_schema)))
        for table in tables:
            aliases.setdefault(table[1], table)
        for node in walk(expr):
            if isinstance(node, ast.ColumnRef):
                parts = names(node.fields)
                if not parts or len(parts) < len(node.fields or ()):  # "a.*" or "*"
                    self.keys.update(relation_exists(*t) for t in tables)
                    continue
                owner = aliases.get(parts[-2]) if len(parts) >= 2 else None
                for table in [owner] if owner else tables:
                    self.keys.add(column(*table, parts[-1]))

    def columns(self, table: tuple[str, str], cols: Iterable[str]) -> None:
        self.keys.update(column(*table, c) for c in cols)


def _constraint(con: ast.Constraint, table: tuple[str, str], writes: set[Key], reads: _Reads) -> None:
    schema = table[0]
    if con.conname:
        writes.add(constraint(*table, con.conname))
        if con.contype in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_EXCLUSION):
            writes.add(relation(schema, con.conname))
    if con.indexname:
        reads.keys.add(relation_exists(schema, con.indexname))
    reads.columns(table, names(con.keys))
    reads.columns(table, names(con.fk_attrs))
    if con.pktable is not None:
        pktable = range_var(con.pktable, reads.default_schema)
        reads.keys.add(relation_exists(*pktable))
        reads.columns(pktable, names(con.pk_attrs))
    if con.raw_expr is not None:
        reads.expression(con.raw_expr, [table])


def _alter_table(stmt: ast.AlterTableStmt, writes: set[Key], reads: _Reads) -> None:
    table = range_var(stmt.relation, reads.default_schema)
    reads.keys.add(relation_exists(*table))
    for cmd in stmt.cmds or ():
        if cmd.subtype in _COLUMN_COMMANDS:
            name = cmd.name or (cmd.def_.colname if isinstance(cmd.def_, ast.ColumnDef) else None)
            aspect = _COLUMN_ASPECTS.get(cmd.subtype)
            if name is None:
                writes.add(relation(*table))
            else:
                writes.add((*column(*table, name), aspect) if aspect else column(*table, name))
            if isinstance(cmd.def_, ast.ColumnDef):
                _column_def(cmd.def_, table, writes, reads)
            elif cmd.def_ is not None:
                reads.expression(cmd.def_, [table])
        elif cmd.subtype == AlterTableType.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
            _constraint(cmd.def_, table, writes, reads)
        elif cmd.subtype == AlterTableType.AT_DropConstraint:
            writes.add(constraint(*table, cmd.name))
            writes.add(relation(table[0], cmd.name))
        elif cmd.subtype == AlterTableType.AT_ValidateConstraint:
            reads.keys.add(constraint(*table, cmd.name))
        else:
            writes.add(relation(*table))


def _column_def(col: ast.ColumnDef, table: tuple[str, str], writes: set[Key], reads: _Reads) -> None:
    if col.typeName is not None:
        reads.type_name(col.typeName)
    if col.raw_default is not None:
        reads.expression(col.raw_default, [table])
    for con in col.constraints or ():
        if con.contype == ConstrType.CONSTR_FOREIGN:
            _constraint(con, table, writes, reads)
        elif con.raw_expr is not None:
            reads.expression(con.raw_expr, [table])


def _drop(stmt: ast.DropStmt, writes: set[Key], schema: str) -> None:
    for obj in stmt.objects or ():
        parts = object_names(obj)
        if not parts:
            continue
        if stmt.removeType in _RELATION_DROPS:
            writes.add(relation(*qualified(parts, schema)))
        elif stmt.removeType in _TYPE_DROPS:
            writes.add(type_(*qualified(parts, schema)))
        elif stmt.removeType in _FUNCTION_DROPS:
            writes.add(function(*qualified(parts, schema)))
        elif stmt.removeType in _TABLE_MEMBER_DROPS:
            table = qualified(parts[:-1], schema)
            writes.add((*relation(*table), _TABLE_MEMBER_DROPS[stmt.removeType], parts[-1]))
        elif stmt.removeType == ObjectType.OBJECT_SCHEMA:
            writes.add(("schema", parts[-1]))
        else:
            writes.add((present(stmt.removeType, "object type").name, *parts))


def footprint(stmt: ast.Node, default_schema: str = "public") -> Footprint:
    """The keys ``stmt`` writes (creates, changes, drops) and reads (relies on)."""
    schema = statement_schema(stmt, default_schema)
    writes: set[Key] = set()
    reads = _Reads(schema)
    if isinstance(stmt, ast.CreateStmt):
        table = range_var(stmt.relation, schema)
        writes.add(relation(*table))
        for elt in stmt.tableElts or ():
            if isinstance(elt, ast.ColumnDef):
                _column_def(elt, table, writes, reads)
            elif isinstance(elt, ast.Constraint):
                _constraint(elt, table, writes, reads)
        for parent in stmt.inhRelations or ():
            reads.keys.add(relation_exists(*range_var(parent, schema)))
    elif isinstance(stmt, ast.AlterTableStmt):
        _alter_table(stmt, writes, reads)
    elif isinstance(stmt, ast.IndexStmt):
        table = range_var(stmt.relation, schema)
        writes.add(relation(table[0], stmt.idxname or ""))
        reads.keys.add(relation_exists(*table))
        for elem in (*(stmt.indexParams or ()), *(stmt.indexIncludingParams or ())):
            if elem.name:
                reads.columns(table, [elem.name])
            if elem.expr is not None:
                reads.expression(elem.expr, [table])
        if stmt.whereClause is not None:
            reads.expression(stmt.whereClause, [table])
    elif isinstance(stmt, (ast.ViewStmt, ast.CreateTableAsStmt)):
        target = stmt.view if isinstance(stmt, ast.ViewStmt) else present(stmt.into, "INTO clause").rel
        writes.add(relation(*range_var(target, schema)))
        reads.expression(stmt.query, [])
    elif isinstance(stmt, (ast.CreateSeqStmt, ast.AlterSeqStmt)):
        writes.add(relation(*range_var(stmt.sequence, schema)))
        for opt in stmt.options or ():
            if opt.defname == "owned_by":
                parts = names(opt.arg)
                if len(parts) >= 2 and parts[-1] != "none":
                    reads.columns(qualified(parts[:-1], schema), [parts[-1]])
    elif isinstance(stmt, (ast.CreateEnumStmt, ast.AlterEnumStmt)):
        writes.add(type_(*qualified(names(stmt.typeName), schema)))
    elif isinstance(stmt, (ast.CreateDomainStmt, ast.CompositeTypeStmt)):
        if isinstance(stmt, ast.CreateDomainStmt):
            writes.add(type_(*qualified(names(stmt.domainname), schema)))
        else:
            writes.add(type_(*range_var(stmt.typevar, schema)))
    elif isinstance(stmt, ast.RenameStmt):
        if stmt.renameType == ObjectType.OBJECT_TYPE:
            old = qualified(names(stmt.object), schema)
            writes.update({type_(*old), type_(old[0], present(stmt.newname, "new name"))})
        elif stmt.relation is not None:
            table = range_var(stmt.relation, schema)
            writes.update({relation(*table), relation(table[0], present(stmt.newname, "new name"))})
    elif isinstance(stmt, ast.DropStmt):
        _drop(stmt, writes, schema)
    elif isinstance(stmt, ast.CreateFunctionStmt):
        writes.add(function(*qualified(names(stmt.funcname), schema)))
    elif isinstance(stmt, ast.DefineStmt):
        writes.add(function(*qualified(names(stmt.defnames), schema)))
    elif isinstance(stmt, ast.AlterDomainStmt):
        domain = type_(*qualified(names(stmt.typeName), schema))
        writes.add((*domain, "con", stmt.name) if stmt.name else (*domain, present(stmt.subtype, "subtype")))
        if isinstance(stmt.def_, ast.Constraint) and stmt.def_.conname:
            writes.add((*domain, "con", stmt.def_.conname))
    elif isinstance(stmt, ast.CreateTrigStmt):
        table = range_var(stmt.relation, schema)
        writes.add((*relation(*table), "trigger", present(stmt.trigname, "trigger name")))
        reads.keys.add(function(*qualified(names(stmt.funcname), schema)))
    elif isinstance(stmt, ast.CreatePolicyStmt):
        table = range_var(stmt.table, schema)
        writes.add((*relation(*table), "policy", present(stmt.policy_name, "policy name")))
        for expr in (stmt.qual, stmt.with_check):
            if expr is not None:
                reads.expression(expr, [table])
    elif isinstance(stmt, ast.CreateSchemaStmt):
        writes.add(("schema", stmt.schemaname or ""))  # CREATE SCHEMA AUTHORIZATION r names none
    elif isinstance(stmt, ast.CommentStmt):
        parts = names(stmt.object) if isinstance(stmt.object, (list, tuple)) else []
        if stmt.objtype == ObjectType.OBJECT_COLUMN and len(parts) >= 2:
            reads.columns(qualified(parts[:-1], schema), [parts[-1]])
        elif parts:
            reads.keys.add(relation_exists(*qualified(parts, schema)))
    else:
        for node in walk(stmt):
            if isinstance(node, ast.RangeVar):
                writes.add(relation(*range_var(node, schema)))
    return Footprint(writes=frozenset(writes), reads=frozenset(reads.keys - writes))


@lru_cache(maxsize=8192)
def of_sql(sql: str, default_schema: str = "public") -> Footprint:
    """The footprint of every statement in ``sql``; empty when it does not parse."""
    from pglast import parse_sql
    from pglast.parser import ParseError

    try:
        parts = [footprint(present(raw.stmt, "statement"), default_schema) for raw in parse_sql(sql)]
    except ParseError:
        return Footprint(writes=frozenset(), reads=frozenset())
    return Footprint(
        writes=frozenset(k for p in parts for k in p.writes),
        reads=frozenset(k for p in parts for k in p.reads),
    )
