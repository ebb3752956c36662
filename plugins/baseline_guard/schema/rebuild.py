"""Drop and re-create what depends on an object the plan drops or re-creates: views, defaults, checks.

PostgreSQL refuses to drop a function, aggregate, type, domain or view that a view or a
materialized view uses, and the diff library only plans the views it sees changing. For every
object the plan drops (or re-creates under a new name, as an enum whose values were removed),
the views and materialized views that depend on it in the baseline are found in ``pg_depend`` /
``pg_rewrite`` (transitively), dropped deepest first in the statement of the change (so they
are applied or held together with it), and re-created after the whole plan from production's own
DDL: the view, its indexes and its comments, the baseline's own grants on it, and a refresh when
the baseline's materialized view was populated.
A dependent production no longer has is only dropped. Column defaults and CHECK constraints that
use a dropped function or aggregate are dropped with it and put back as production has them.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from pglast import ast
from pglast.enums import AlterTableType, FunctionParameterMode, ObjectType
from pglast.stream import RawStream
from sqlalchemy.engine import Connection

from baseline_guard.schema import footprint as fp
from baseline_guard.schema.classify import OLD_ENUM_SUFFIX
from baseline_guard.schema.complete import Sides, _constraint_def, _parse, _qname, _quote
from baseline_guard.schema.snapshot import ObjectKey

# How the baseline's catalog resolves a dropped object's name, and the catalog its oid lives in.
_RESOLVERS = {
    ObjectType.OBJECT_FUNCTION: ("to_regprocedure", "pg_proc"),
    ObjectType.OBJECT_AGGREGATE: ("to_regprocedure", "pg_proc"),
    ObjectType.OBJECT_PROCEDURE: ("to_regprocedure", "pg_proc"),
    ObjectType.OBJECT_ROUTINE: ("to_regprocedure", "pg_proc"),
    ObjectType.OBJECT_TYPE: ("to_regtype", "pg_type"),
    ObjectType.OBJECT_DOMAIN: ("to_regtype", "pg_type"),
    ObjectType.OBJECT_VIEW: ("to_regclass", "pg_class"),
    ObjectType.OBJECT_MATVIEW: ("to_regclass", "pg_class"),
}

_DEPENDENT_VIEWS = """
WITH RECURSIVE changed AS (SELECT {resolver}(:ident)::oid AS oid),
dependents(oid, depth) AS (
    SELECT r.ev_class, 1 FROM changed JOIN pg_depend d ON d.refobjid = changed.oid
    JOIN pg_rewrite r ON r.oid = d.objid
    WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = '{catalog}'::regclass
      AND r.ev_class <> changed.oid
  UNION ALL
    SELECT r.ev_class, dependents.depth + 1 FROM dependents
    JOIN pg_depend d ON d.refobjid = dependents.oid AND d.refclassid = 'pg_class'::regclass
    JOIN pg_rewrite r ON r.oid = d.objid AND d.classid = 'pg_rewrite'::regclass
    WHERE r.ev_class <> dependents.oid AND dependents.depth < 100
)
SELECT n.nspname, c.relname, c.relkind = 'm', c.relispopulated, max(dependents.depth),
    coalesce((SELECT array_agg(format('GRANT %s ON TABLE %I.%I TO %s%s', a.privilege_type, n.nspname,
        c.relname, CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
        CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
        ORDER BY a.grantee, a.privilege_type)
        FROM aclexplode(c.relacl) a WHERE a.grantee <> c.relowner), '{{}}')
FROM dependents JOIN pg_class c ON c.oid = dependents.oid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') GROUP BY n.nspname, c.relname, c.relkind, c.relispopulated, c.relacl, c.relowner
"""

_INDEXES_OF = sa.text(
    "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
    "JOIN pg_class v ON v.oid = x.indrelid JOIN pg_namespace n ON n.oid = v.relnamespace "
    "WHERE n.nspname = :s AND v.relname = :v"
)


_ROUTINES = {ObjectType.OBJECT_FUNCTION, ObjectType.OBJECT_AGGREGATE, ObjectType.OBJECT_PROCEDURE}
# Column defaults and CHECK constraints (each partitioned table's own, not its partitions' copies).
_TABLE_DEPENDENTS = """
WITH changed AS (SELECT {resolver}(:ident)::oid AS oid)
SELECT 'default', n.nspname, c.relname, a.attname FROM changed
    JOIN pg_depend d ON d.refobjid = changed.oid AND d.classid = 'pg_attrdef'::regclass
    JOIN pg_attrdef ad ON ad.oid = d.objid JOIN pg_class c ON c.oid = ad.adrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
    WHERE d.refclassid = '{catalog}'::regclass AND a.attgenerated = ''
UNION
SELECT 'constraint', n.nspname, c.relname, con.conname FROM changed
    JOIN pg_depend d ON d.refobjid = changed.oid AND d.classid = 'pg_constraint'::regclass
    JOIN pg_constraint con ON con.oid = d.objid JOIN pg_class c ON c.oid = con.conrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE d.refclassid = '{catalog}'::regclass AND con.contype = 'c' AND con.conislocal
ORDER BY 1, 2, 3, 4
"""
_DEFAULT = sa.text(
    "SELECT pg_get_expr(ad.adbin, ad.adrelid) FROM pg_attrdef ad JOIN pg_class c ON c.oid = ad.adrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = ad.adrelid "
    "AND a.attnum = ad.adnum WHERE n.nspname = :s AND c.relname = :t AND a.attname = :c"
)


@dataclass(frozen=True)
class TableDependent:
    """A column default or CHECK constraint of the baseline that uses a changed routine."""

    kind: str  # "default" or "constraint"
    schema: str
    table: str
    name: str  # the column, or the constraint

    def drop(self) -> str:
        table = _qname(self.schema, self.table)
        if self.kind == "default":
            return f"ALTER TABLE {table} ALTER COLUMN {_quote(self.name)} DROP DEFAULT;"
        return f"ALTER TABLE {table} DROP CONSTRAINT {_quote(self.name)};"

    def production(self, source: Connection) -> str | None:
        """Production's default or constraint, as the statement that puts it back; None if it has none."""
        table = _qname(self.schema, self.table)
        if self.kind == "default":
            expr = source.execute(_DEFAULT, {"s": self.schema, "t": self.table, "c": self.name}).scalar()
            return (
                f"ALTER TABLE {table} ALTER COLUMN {_quote(self.name)} SET DEFAULT {expr};" if expr else None
            )
        definition = _constraint_def(source, (self.schema, self.table), self.name)
        return f"ALTER TABLE {table} ADD CONSTRAINT {_quote(self.name)} {definition};" if definition else None


def table_dependents(conn: Connection, kind: ObjectType, ident: str) -> list[TableDependent]:
    if kind not in _ROUTINES:
        return []  # the diff library re-casts the columns and defaults of a re-created type itself
    resolver, catalog = _RESOLVERS[kind]
    query = sa.text(_TABLE_DEPENDENTS.format(resolver=resolver, catalog=catalog))
    return [TableDependent(*row) for row in conn.execute(query, {"ident": ident})]


@dataclass(frozen=True)
class DependentView:
    """A view or materialized view of the baseline that uses a changed object."""

    schema: str
    name: str
    materialized: bool
    populated: bool
    depth: int
    grants: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str]:
        return (self.schema, self.name)

    @property
    def kind(self) -> str:
        return "MATERIALIZED VIEW" if self.materialized else "VIEW"


def _identity(kind: ObjectType, obj: ast.Node, schema: str) -> str:
    """The name the baseline's ``to_reg*`` functions resolve: ``"s"."f"(numeric)`` for a routine."""
    name = _qname(*fp.qualified(fp.object_names(obj), schema))
    if isinstance(obj, ast.ObjectWithArgs):
        return f"{name}({', '.join(RawStream()(t) for t in obj.objargs or ())})"
    return name


def changed_objects(stmts: list[ast.Node], schema: str) -> list[tuple[ObjectType, str]]:
    """(kind, baseline name) of each object the statement drops, or renames away to re-create it."""
    found = []
    for stmt in stmts:
        if isinstance(stmt, ast.DropStmt) and stmt.removeType in _RESOLVERS:
            found += [(stmt.removeType, _identity(stmt.removeType, o, schema)) for o in stmt.objects or ()]
        elif (
            isinstance(stmt, ast.RenameStmt)
            and stmt.renameType == ObjectType.OBJECT_TYPE
            and fp.present(stmt.newname, "new name").endswith(OLD_ENUM_SUFFIX)
        ):
            renamed = fp.present(stmt.object, "renamed type")
            found.append((ObjectType.OBJECT_TYPE, _identity(ObjectType.OBJECT_TYPE, renamed, schema)))
    return found


def dependent_views(conn: Connection, kind: ObjectType, ident: str) -> list[DependentView]:
    resolver, catalog = _RESOLVERS[kind]
    query = sa.text(_DEPENDENT_VIEWS.format(resolver=resolver, catalog=catalog))
    return [
        DependentView(row[0], row[1], row[2], row[3], row[4], grants=tuple(row[5]))
        for row in conn.execute(query, {"ident": ident})
    ]


_FUNCTION_SHAPE = sa.text(
    "SELECT pg_get_function_result(p), pg_get_function_arguments(p) FROM to_regprocedure(:sig) p "
    "WHERE p IS NOT NULL"
)
_NOT_IDENTITY = (FunctionParameterMode.FUNC_PARAM_OUT, FunctionParameterMode.FUNC_PARAM_TABLE)


def _signature(stmt: ast.CreateFunctionStmt, schema: str) -> str:
    name = _qname(*fp.qualified(fp.names(stmt.funcname), schema))
    args = [RawStream()(p.argType) for p in stmt.parameters or () if p.mode not in _NOT_IDENTITY]
    return f"{name}({', '.join(args)})"


def functions_replaced_by_drop(statements: list[str], sides: Sides) -> list[str]:
    """``DROP FUNCTION`` before a ``CREATE OR REPLACE`` that PostgreSQL cannot do in place.

    A function's result type, parameter names and defaults cannot be changed by replacing it;
    the diff library writes ``CREATE OR REPLACE`` anyway. The drop then lets the views that use
    the function be re-created around it (:func:`rebuild_dependents`).
    """
    dropped = {ident for sql in statements for _, ident in changed_objects(_parse(sql), sides.default_schema)}
    out = []
    for sql in statements:
        stmts = _parse(sql)
        if len(stmts) == 1 and isinstance(stmts[0], ast.CreateFunctionStmt) and stmts[0].replace:
            sig = _signature(stmts[0], sides.default_schema)
            if sig in dropped:
                out.append(sql)
                continue
            before = sides.target.execute(_FUNCTION_SHAPE, {"sig": sig}).first()
            after = sides.source.execute(_FUNCTION_SHAPE, {"sig": sig}).first()
            if before is not None and after is not None and tuple(before) != tuple(after):
                kind = "PROCEDURE" if stmts[0].is_procedure else "FUNCTION"
                out.append(f"DROP {kind} {sig};")
        out.append(sql)
    return out


def _about(stmt: ast.Node, views: set[tuple[str, str]], schema: str) -> bool:
    """True when the statement creates, drops, indexes or comments on one of ``views``."""
    if isinstance(stmt, ast.ViewStmt):
        return fp.range_var(stmt.view, schema) in views
    if isinstance(stmt, ast.CreateTableAsStmt):
        return fp.range_var(fp.present(stmt.into, "INTO clause").rel, schema) in views
    if isinstance(stmt, ast.IndexStmt):
        return fp.range_var(stmt.relation, schema) in views
    if isinstance(stmt, ast.DropStmt) and stmt.removeType in (
        ObjectType.OBJECT_VIEW,
        ObjectType.OBJECT_MATVIEW,
    ):
        return any(fp.qualified(fp.object_names(o), schema) in views for o in stmt.objects or ())
    if isinstance(stmt, ast.CommentStmt) and stmt.objtype in (
        ObjectType.OBJECT_VIEW,
        ObjectType.OBJECT_MATVIEW,
        ObjectType.OBJECT_COLUMN,
    ):
        parts = fp.names(stmt.object)
        parts = parts[:-1] if stmt.objtype == ObjectType.OBJECT_COLUMN else parts
        return len(parts) >= 1 and fp.qualified(parts, schema) in views
    return False


def _production_ddl(view: DependentView, sides: Sides) -> list[str]:
    """Production's definition of ``view`` with its indexes and comments, or [] if production has none."""
    source = sides.source_snapshot
    ddl = source.get(ObjectKey(view.kind, view.schema, view.name))
    if ddl is None:
        return []
    parts = [ddl]
    for key, text in sorted(source.items()):
        if key.kind in ("INDEX", "COMMENT") and key.schema == view.schema:
            stmts = _parse(text)
            if len(stmts) == 1 and _about(stmts[0], {view.key}, view.schema):
                parts.append(text)
    parts += [g + ";" for g in view.grants]
    if view.materialized and view.populated:
        parts.append(f"REFRESH MATERIALIZED VIEW {_qname(*view.key)};")
    return parts


@dataclass
class _Dependents:
    """What uses the objects a plan changes, and the first statement that changes one."""

    views: dict[tuple[str, str], DependentView]
    tables: list[TableDependent]
    first: int


def _dependents_in_plan(statements: list[str], sides: Sides) -> _Dependents:
    """The baseline's views, defaults and constraints that use an object the plan changes.

    The first statement is the first to change an object that is not itself one of those views
    (the diff library drops some of them itself).
    """
    views: dict[tuple[str, str], DependentView] = {}
    tables: dict[TableDependent, None] = {}
    causes: dict[int, set[str]] = {}
    for i, sql in enumerate(statements):
        for kind, ident in changed_objects(_parse(sql), sides.default_schema):
            for view in dependent_views(sides.target, kind, ident):
                causes.setdefault(i, set()).add(ident)
                known = views.get(view.key)
                if known is None or known.depth < view.depth:
                    views[view.key] = view
            for dependent in table_dependents(sides.target, kind, ident):
                causes.setdefault(i, set()).add(ident)
                tables[dependent] = None
    rebuilt = {_qname(*key) for key in views}
    first = min((i for i, idents in causes.items() if idents - rebuilt), default=min(causes, default=0))
    return _Dependents(views, list(tables), first)


def rebuild_dependents(statements: list[str], sides: Sides) -> list[str]:
    """Drop what uses a changed object in the statement of the change, re-create it after the plan."""
    statements = functions_replaced_by_drop(statements, sides)
    found = _dependents_in_plan(statements, sides)
    if not found.views and not found.tables:
        return statements
    views = found.views
    indexes = {
        (view.schema, name)
        for view in views.values()
        for (name,) in sides.target.execute(_INDEXES_OF, {"s": view.schema, "v": view.name})
    }
    constraints = {(d.schema, d.table, d.name) for d in found.tables if d.kind == "constraint"}
    deepest_first = sorted(views.values(), key=lambda v: (-v.depth, v.key))
    drops = [f"DROP {v.kind} {_qname(*v.key)};" for v in deepest_first] + [d.drop() for d in found.tables]
    out = []
    for i, sql in enumerate(statements):
        stmts = _parse(sql)
        replaced = any(_replaced(s, set(views), indexes, sides.default_schema) for s in stmts) or any(
            _constraint_step(s, constraints, sides.default_schema) for s in stmts
        )
        if i == found.first:  # one statement with the change: applied, or held, together
            out.append("\n".join(drops if replaced else [*drops, sql]))
        elif not replaced:
            out.append(sql)
    recreates = ["\n".join(ddl) for v in reversed(deepest_first) if (ddl := _production_ddl(v, sides))]
    restored = [put_back for d in found.tables if (put_back := d.production(sides.source))]
    return out + restored + recreates


def _constraint_step(stmt: ast.Node, constraints: set[tuple[str, str, str]], schema: str) -> bool:
    """True for the plan's own drop or addition of a constraint that is put back after the change."""
    if not isinstance(stmt, ast.AlterTableStmt):
        return False
    table = fp.range_var(stmt.relation, schema)
    names = [
        cmd.name if cmd.subtype == AlterTableType.AT_DropConstraint else getattr(cmd.def_, "conname", None)
        for cmd in stmt.cmds or ()
        if cmd.subtype in (AlterTableType.AT_DropConstraint, AlterTableType.AT_AddConstraint)
    ]
    return bool(names) and all((*table, name) in constraints for name in names)


def _replaced(
    stmt: ast.Node, views: set[tuple[str, str]], indexes: set[tuple[str, str]], schema: str
) -> bool:
    """True for the plan's own steps on a rebuilt view (its drop, creation, indexes, comments)."""
    if isinstance(stmt, ast.DropStmt) and stmt.removeType == ObjectType.OBJECT_INDEX:
        return all(fp.qualified(fp.object_names(o), schema) in indexes for o in stmt.objects or ())
    return _about(stmt, views, schema)
