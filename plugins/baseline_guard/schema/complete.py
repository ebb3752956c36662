"""The plan layer over the diff library: correct its statements and add the kinds it does not cover.

migradiff plans tables, columns, constraints, indexes, views, functions, enums, domains and
sequences, but it has blind spots and a few wrong statements. This module fixes them from
production's own catalog and ``pg_dump`` output, for schemas in general:

- kinds it does not inspect (aggregates, operators, collations, text search objects, ...),
  partition attachments and bounds, index attachments of partitioned indexes: production's
  per-object DDL from its schema dump (:mod:`snapshot`), dropped/detached when only the baseline
  has them;
- sequences: created with production's exact options (``AS integer``...), altered when they differ;
- a primary/unique key on a partitioned table: added by definition (an ``ON ONLY`` index cannot back it);
- generated columns: ``VIRTUAL`` kept virtual (the library writes ``STORED``);
- a domain whose constraint or default changed: altered in place (``ALTER DOMAIN``), never dropped;
- a constraint or unique index that foreign keys rely on: those foreign keys are dropped just
  before and re-added after (PostgreSQL refuses the drop otherwise);
- a materialized view that is re-created: its indexes are re-created with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pglast import ast, parse_sql
from pglast.enums import AlterTableType, ConstrType, DefElemAction, DropBehavior, ObjectType
from pglast.parser import ParseError
from pglast.stream import RawStream, maybe_double_quote_name
from sqlalchemy.engine import Connection

from baseline_guard.schema import footprint as fp
from baseline_guard.schema.snapshot import ObjectKey, Snapshot

# pg_dump object kinds the diff library does not plan: taken from production's dump as they are.
DUMP_ONLY_KINDS = frozenset(
    {
        "AGGREGATE",
        "OPERATOR",
        "COLLATION",
        "CONVERSION",
        "TEXT SEARCH CONFIGURATION",
        "TEXT SEARCH DICTIONARY",
        "INDEX ATTACH",
        "TABLE ATTACH",
        "COMMENT",
        "STATISTICS",
    }
)


def _dump_only(key: ObjectKey, ddl: str | None) -> bool:
    """True for objects the library does not plan: the kinds above, and range types."""
    return key.kind in DUMP_ONLY_KINDS or (key.kind == "TYPE" and ddl is not None and " AS RANGE (" in ddl)


def _parse(sql: str) -> list[ast.Node]:
    try:
        return [fp.present(raw.stmt, "statement") for raw in parse_sql(sql)]
    except ParseError:
        return []


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _qname(schema: str, name: str) -> str:
    return f"{_quote(schema)}.{_quote(name)}"


@dataclass
class Sides:
    """What the plan layer reads: both catalogs (read-only sessions) and both schema snapshots."""

    source: Connection
    target: Connection
    source_snapshot: Snapshot
    target_snapshot: Snapshot
    schemas: list[str]

    @property
    def default_schema(self) -> str:
        return self.schemas[0]


# --- kinds the library does not cover ---------------------------------------------------------


def _drop_dump_object(key: ObjectKey, ddl: str) -> str | None:
    """SQL that removes what one dump entry created (only for the dump-only kinds)."""
    if key.kind == "COMMENT":
        stmts = _parse(ddl)
        if len(stmts) != 1 or not isinstance(stmts[0], ast.CommentStmt):
            return None
        stmts[0].comment = None
        return RawStream()(stmts[0]) + ";"
    if key.kind in ("TABLE ATTACH", "INDEX ATTACH"):
        stmts = _parse(ddl)
        if not stmts or not isinstance(stmts[0], ast.AlterTableStmt):
            return None
        stmt = stmts[0]
        cmd = fp.present(stmt.cmds, "commands")[0]
        if not isinstance(cmd.def_, ast.PartitionCmd):
            return None
        parent = _qname(*fp.range_var(stmt.relation, key.schema))
        child = _qname(*fp.range_var(cmd.def_.name, key.schema))
        if key.kind == "TABLE ATTACH":
            return f"ALTER TABLE {parent} DETACH PARTITION {child};"
        return None  # an index attachment goes away with the index
    return drop_of_definition(ddl)


def _drop(kind: ObjectType, obj: ast.Node | tuple[ast.Node, ...]) -> str:
    stmt = ast.DropStmt(
        objects=(obj,),
        removeType=kind,
        behavior=DropBehavior.DROP_RESTRICT,
        missing_ok=False,
        concurrent=False,
    )
    return RawStream()(stmt) + ";"


def _type_list(types: list[ast.TypeName | None]) -> str:
    return ", ".join("NONE" if t is None else RawStream()(t) for t in types)


def drop_of_definition(ddl: str) -> str | None:
    """``DROP`` of the object that ``ddl`` (a dump entry's ``CREATE``) defines, or None if unknown.

    The name comes from the parsed definition, never from the dump's ``-- Name:`` header (which
    pg_dump writes unquoted and with newlines flattened), and is written back by pglast, which
    quotes identifiers by PostgreSQL's own ``quote_identifier`` rules: a name like
    ``x; GRANT ... --`` stays one identifier, and ``Mixed`` keeps its case.
    """
    stmts = _parse(ddl)
    if not stmts:
        return None
    stmt = stmts[0]
    if isinstance(stmt, ast.DefineStmt) and stmt.kind == ObjectType.OBJECT_AGGREGATE:
        params = stmt.args[0] if stmt.args else None
        args = None if params is None else tuple(p.argType for p in params)
        return _drop(stmt.kind, ast.ObjectWithArgs(objname=stmt.defnames, objargs=args))
    if isinstance(stmt, ast.DefineStmt) and stmt.kind == ObjectType.OBJECT_OPERATOR:
        sides = {d.defname.lower(): d.arg for d in stmt.definition or ()}
        *schema, operator = fp.names(stmt.defnames)  # an operator name is symbols only
        prefix = "".join(maybe_double_quote_name(part) + "." for part in schema)
        types = _type_list([sides.get("leftarg"), sides.get("rightarg")])
        return f"DROP OPERATOR {prefix}{operator} ({types});"
    if isinstance(stmt, ast.DefineStmt) and stmt.kind in (
        ObjectType.OBJECT_COLLATION,
        ObjectType.OBJECT_TSCONFIGURATION,
        ObjectType.OBJECT_TSDICTIONARY,
    ):
        return _drop(stmt.kind, fp.present(stmt.defnames, "name"))
    if isinstance(stmt, ast.CreateStatsStmt):
        return _drop(ObjectType.OBJECT_STATISTIC_EXT, fp.present(stmt.defnames, "name"))
    if isinstance(stmt, ast.CreateConversionStmt):
        return _drop(ObjectType.OBJECT_CONVERSION, fp.present(stmt.conversion_name, "name"))
    if isinstance(stmt, ast.CreateRangeStmt):
        return _drop(ObjectType.OBJECT_TYPE, ast.TypeName(names=stmt.typeName, typemod=-1))
    return None


def dump_only_objects(sides: Sides, created_tables: set[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """(statements to run first, statements to run last) for the kinds only the dump shows."""
    first, last = [], []
    src, tgt = sides.source_snapshot, sides.target_snapshot
    for key in sorted(src.keys() | tgt.keys()):
        if not _dump_only(key, src.get(key) or tgt.get(key)) or src.get(key) == tgt.get(key):
            continue
        if key.kind == "TABLE ATTACH" and (key.schema, key.name) in created_tables:
            continue  # the library creates it as a partition already
        if key in tgt and not (key.kind == "COMMENT" and key in src):  # a comment is replaced
            drop = _drop_dump_object(key, tgt[key])
            if drop:
                first.append(drop)
        if key in src:
            last.append(src[key])
    return first, last


# --- sequences ---------------------------------------------------------------------------------


def _sequence_ddl(snapshot: Snapshot, schema: str, name: str) -> str | None:
    ddl = snapshot.get(ObjectKey("SEQUENCE", schema, name))
    return ddl if ddl and ddl.startswith("CREATE SEQUENCE") else None


def _alter_sequence(create: str) -> str:
    """``ALTER SEQUENCE`` to production's options; ``AS bigint`` spelled out (pg_dump omits the default)."""
    first, _, options = create.partition("\n")
    if not any(line.strip().startswith("AS ") for line in options.splitlines()):
        options = "    AS bigint\n" + options
    return "ALTER" + first.removeprefix("CREATE") + "\n" + options


def sequences(statements: list[str], sides: Sides) -> tuple[list[str], list[str]]:
    """Statements with the library's CREATE SEQUENCE replaced by production's, plus ALTERs of changed ones."""
    out = []
    created = set()
    for sql in statements:
        stmts = _parse(sql)
        if len(stmts) == 1 and isinstance(stmts[0], ast.CreateSeqStmt):
            schema, name = fp.range_var(stmts[0].sequence, sides.default_schema)
            exact = _sequence_ddl(sides.source_snapshot, schema, name)
            if exact:
                created.add((schema, name))
                out.append(exact)
                continue
        out.append(sql)
    altered = []
    for key in sorted(sides.source_snapshot):
        if key.kind != "SEQUENCE" or (key.schema, key.name) in created:
            continue
        before = _sequence_ddl(sides.target_snapshot, key.schema, key.name)
        now = _sequence_ddl(sides.source_snapshot, key.schema, key.name)
        if before and now and before != now:
            altered.append(_alter_sequence(now))
    return out, altered


# --- keys on partitioned tables, generated columns ---------------------------------------------


def partitioned_keys(statements: list[str], sides: Sides) -> list[str]:
    """Add a key by its definition where ``CREATE UNIQUE INDEX`` + ``ADD CONSTRAINT .. USING INDEX`` cannot work.

    That is a key on a partitioned table (its ``ON ONLY`` index is invalid until every partition's
    is attached) and a temporal key (``WITHOUT OVERLAPS``: its GiST index cannot be unique alone).
    """
    indexes = {}
    for i, sql in enumerate(statements):
        stmts = _parse(sql)
        if len(stmts) == 1 and isinstance(stmts[0], ast.IndexStmt):
            relation = fp.present(stmts[0].relation, "indexed table")
            schema = relation.schemaname or sides.default_schema
            indexes[(schema, stmts[0].idxname)] = (i, not relation.inh)
    out = list(statements)
    keys = []
    for i, sql in enumerate(statements):
        stmts = _parse(sql)
        if len(stmts) != 1 or not isinstance(stmts[0], ast.AlterTableStmt):
            continue
        table = fp.range_var(stmts[0].relation, sides.default_schema)
        cmd = fp.present(stmts[0].cmds, "commands")[0]
        con = cmd.def_ if cmd.subtype == AlterTableType.AT_AddConstraint else None
        if not isinstance(con, ast.Constraint) or not con.indexname or not con.conname:
            continue  # (an unnamed constraint has no definition to look up)
        index, on_only = indexes.get((table[0], con.indexname), (None, False))
        definition = _constraint_def(sides.source, table, con.conname)
        if index is None or definition is None or not (on_only or "WITHOUT OVERLAPS" in definition):
            continue  # a temporal key's GiST index cannot be created UNIQUE on its own
        out[index] = out[i] = ""
        # after the partitions' own keys, which it then adopts instead of creating a second one
        keys.append(f"ALTER TABLE {_qname(*table)} ADD CONSTRAINT {_quote(con.conname)} {definition};")
    return [s for s in out if s] + keys


def _constraint_def(conn: Connection, table: tuple[str, str], name: str) -> str | None:
    return conn.execute(
        sa.text(
            "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
            "JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = :s AND t.relname = :t "
            "AND c.conname = :c"
        ),
        {"s": table[0], "t": table[1], "c": name},
    ).scalar()


def _virtual_columns(conn: Connection, schemas: Sequence[str]) -> set[tuple[str, str, str]]:
    try:
        rows = conn.execute(
            sa.text(
                "SELECT n.nspname, c.relname, a.attname FROM pg_attribute a "
                "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE a.attgenerated = 'v' AND NOT a.attisdropped AND n.nspname = ANY(:schemas)"
            ),
            {"schemas": list(schemas)},
        )
    except sa.exc.DBAPIError:  # before PostgreSQL 18 there are no virtual columns
        conn.rollback()
        return set()
    return {tuple(r) for r in rows}


def virtual_columns(statements: list[str], sides: Sides) -> list[str]:
    """Make generated columns the library writes as ``STORED`` virtual where production's are."""
    virtual = _virtual_columns(sides.source, sides.schemas)
    if not virtual:
        return statements
    out = []
    for sql in statements:
        stmts = _parse(sql)
        changed = False
        for stmt in stmts:
            for node in fp.walk(stmt):
                if isinstance(node, (ast.CreateStmt, ast.AlterTableStmt)):
                    table = fp.range_var(node.relation, sides.default_schema)
                    changed |= _mark_virtual(node, table, virtual)
        out.append(";\n".join(RawStream()(s) for s in stmts) + ";" if changed else sql)
    return out


def _mark_virtual(node: ast.Node, table: tuple[str, str], virtual: set[tuple[str, str, str]]) -> bool:
    changed = False
    for col in fp.walk(node):
        if isinstance(col, ast.ColumnDef) and (*table, col.colname) in virtual:
            for con in col.constraints or ():
                if con.contype == ConstrType.CONSTR_GENERATED and con.generated_kind != "v":
                    con.generated_kind = "v"
                    changed = True
    return changed


_IDENTITY_SEQUENCES = sa.text(
    "SELECT n.nspname, c.relname, a.attname, sn.nspname, s.relname FROM pg_attribute a "
    "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_depend d ON d.refobjid = c.oid AND d.refobjsubid = a.attnum AND d.deptype = 'i' "
    "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' JOIN pg_namespace sn ON sn.oid = s.relnamespace "
    "WHERE a.attidentity <> '' AND n.nspname = ANY(:schemas)"
)


def identity_sequence_names(statements: list[str], sides: Sides) -> list[str]:
    """Create identity columns with production's sequence name (kept, e.g., when a table was renamed)."""
    names = {
        (r[0], r[1], r[2]): (r[3], r[4])
        for r in sides.source.execute(_IDENTITY_SEQUENCES, {"schemas": sides.schemas})
    }
    unusual = {k: v for k, v in names.items() if v != (k[0], default_constraint_name(k[1], k[2], "seq"))}
    if not unusual:
        return statements
    out = []
    for sql in statements:
        stmts = _parse(sql)
        changed = False
        for stmt in stmts:
            if isinstance(stmt, (ast.CreateStmt, ast.AlterTableStmt)):
                table = fp.range_var(stmt.relation, sides.default_schema)
                changed |= _name_identity_sequences(stmt, table, unusual)
        out.append(";\n".join(RawStream()(s) for s in stmts) + ";" if changed else sql)
    return out


def _name_identity_sequences(
    node: ast.Node, table: tuple[str, str], unusual: dict[tuple[str, str, str], tuple[str, str]]
) -> bool:
    changed = False
    for col in fp.walk(node):
        if not (isinstance(col, ast.ColumnDef) and (*table, col.colname) in unusual):
            continue
        for con in col.constraints or ():
            options = list(con.options or ())
            if con.contype == ConstrType.CONSTR_IDENTITY and not any(
                o.defname == "sequence_name" for o in options
            ):
                column = fp.present(col.colname, "column name")
                name = tuple(ast.String(sval=part) for part in unusual[(*table, column)])
                option = ast.DefElem(
                    defname="sequence_name", arg=name, defaction=DefElemAction.DEFELEM_UNSPEC
                )
                con.options = (option, *options)
                changed = True
    return changed


# --- domains -----------------------------------------------------------------------------------

_DOMAIN = sa.text(
    "SELECT format_type(t.typbasetype, t.typtypmod), t.typdefault, t.typnotnull, "
    "coalesce((SELECT json_object_agg(c.conname, pg_get_constraintdef(c.oid)) FROM pg_constraint c "
    "WHERE c.contypid = t.oid AND c.contype = 'c'), '{}') "
    "FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
    "WHERE t.typtype = 'd' AND n.nspname = :s AND t.typname = :n"
)


def _domain(conn: Connection, schema: str, name: str) -> tuple[Any, ...] | None:
    row = conn.execute(_DOMAIN, {"s": schema, "n": name}).first()
    return tuple(row) if row else None


def domains(statements: list[str], sides: Sides) -> list[str]:
    """Turn the library's drop + re-create of a domain into ``ALTER DOMAIN`` when its base type is unchanged."""
    drops = {}
    for i, sql in enumerate(statements):
        stmts = _parse(sql)
        if (
            len(stmts) == 1
            and isinstance(stmts[0], ast.DropStmt)
            and stmts[0].removeType == ObjectType.OBJECT_DOMAIN
        ):
            for obj in stmts[0].objects or ():
                drops[fp.qualified(fp.object_names(obj), sides.default_schema)] = i
    out = list(statements)
    for i, sql in enumerate(statements):
        stmts = _parse(sql)
        if not (len(stmts) == 1 and isinstance(stmts[0], ast.CreateDomainStmt)):
            continue
        name = fp.qualified(fp.names(stmts[0].domainname), sides.default_schema)
        if name not in drops:
            continue
        before, after = _domain(sides.target, *name), _domain(sides.source, *name)
        if before is None or after is None or before[0] != after[0]:
            continue  # a new base type needs the re-creation (held: the drop)
        out[drops[name]] = ""
        out[i] = "\n".join(_alter_domain(_qname(*name), before, after)) or ""
    return [s for s in out if s]


def _alter_domain(domain: str, before: tuple[Any, ...], after: tuple[Any, ...]) -> list[str]:
    _, old_default, old_notnull, old_checks = before
    _, new_default, new_notnull, new_checks = after
    alters = []
    for con, definition in old_checks.items():
        if new_checks.get(con) != definition:
            alters.append(f"ALTER DOMAIN {domain} DROP CONSTRAINT {_quote(con)};")
    for con, definition in new_checks.items():
        if old_checks.get(con) != definition:
            alters.append(f"ALTER DOMAIN {domain} ADD CONSTRAINT {_quote(con)} {definition};")
    if old_default != new_default:
        alters.append(
            f"ALTER DOMAIN {domain} SET DEFAULT {new_default};"
            if new_default is not None
            else f"ALTER DOMAIN {domain} DROP DEFAULT;"
        )
    if old_notnull != new_notnull:
        alters.append(f"ALTER DOMAIN {domain} {'SET' if new_notnull else 'DROP'} NOT NULL;")
    return alters


# --- column types of partitions -----------------------------------------------------------------

_INHERITED_COLUMN_PARENT = sa.text(
    "SELECT pn.nspname, p.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_class p ON p.oid = i.inhparent "
    "JOIN pg_namespace pn ON pn.oid = p.relnamespace "
    "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = :c AND NOT a.attislocal "
    "WHERE c.relispartition AND n.nspname = :s AND c.relname = :t"
)


def _column_command(sql: str, schema: str) -> tuple[tuple[str, str], int, str] | None:
    """(table, command, column) of a statement that is one ``ALTER TABLE .. ALTER COLUMN``, else None."""
    stmts = _parse(sql)
    if len(stmts) != 1 or not isinstance(stmts[0], ast.AlterTableStmt) or len(stmts[0].cmds or ()) != 1:
        return None
    cmd = fp.present(stmts[0].cmds, "commands")[0]
    return (fp.range_var(stmts[0].relation, schema), cmd.subtype, cmd.name) if cmd.name else None


def _detached(statements: list[str], schema: str) -> set[tuple[str, str]]:
    """Partitions the plan detaches (they no longer follow their parent's column changes)."""
    found = set()
    for sql in statements:
        for stmt in _parse(sql):
            if isinstance(stmt, ast.AlterTableStmt):
                found |= {
                    fp.range_var(cmd.def_.name, schema)
                    for cmd in stmt.cmds or ()
                    if cmd.subtype == AlterTableType.AT_DetachPartition
                }
    return found


def partition_column_types(statements: list[str], sides: Sides) -> list[str]:
    """Change an inherited column's type on the partitioned parent only, never per partition.

    PostgreSQL changes the partitions' column with the parent's and refuses to change it on a
    partition alone. The partitions' own defaults, which the diff library drops before the type
    change and sets after it, go into the parent's statement, so they are applied (or held) with it.
    """
    commands = [_column_command(sql, sides.default_schema) for sql in statements]
    retyped = {
        (*c[0], c[2]): i for i, c in enumerate(commands) if c and c[1] == AlterTableType.AT_AlterColumnType
    }
    detached = _detached(statements, sides.default_schema)
    before: dict[int, list[str]] = {}
    after: dict[int, list[str]] = {}
    left_out = set()
    for i, command in enumerate(commands):
        if command is None or command[0] in detached:
            continue
        table, subtype, column = command
        if subtype not in (AlterTableType.AT_AlterColumnType, AlterTableType.AT_ColumnDefault):
            continue
        anchor = None
        parent = _parent_of_inherited(sides, *table, column)
        while parent is not None and (*parent, column) in retyped:
            anchor = retyped[(*parent, column)]
            parent = _parent_of_inherited(sides, *parent, column)
        if anchor is None:
            continue
        left_out.add(i)
        if subtype == AlterTableType.AT_ColumnDefault:
            (before if i < anchor else after).setdefault(anchor, []).append(statements[i])
    return [
        "\n".join([*before.get(i, []), sql, *after.get(i, [])])
        for i, sql in enumerate(statements)
        if i not in left_out
    ]


def _parent_of_inherited(sides: Sides, schema: str, table: str, column: str) -> tuple[str, str] | None:
    """The partitioned parent of ``table`` in the baseline when ``column`` is inherited from it."""
    row = sides.target.execute(_INHERITED_COLUMN_PARENT, {"s": schema, "t": table, "c": column}).first()
    return (row[0], row[1]) if row else None


# --- foreign keys around a dropped key, indexes of re-created materialized views --------------

_FKS_ON_INDEX = sa.text(
    "SELECT fn.nspname, ft.relname, fk.conname, pg_get_constraintdef(fk.oid) "
    "FROM pg_constraint fk JOIN pg_class ft ON ft.oid = fk.conrelid "
    "JOIN pg_namespace fn ON fn.oid = ft.relnamespace "
    "JOIN pg_class i ON i.oid = fk.conindid JOIN pg_namespace n ON n.oid = i.relnamespace "
    "WHERE fk.contype = 'f' AND fk.conparentid = 0 AND n.nspname = :s AND i.relname = :i ORDER BY 1, 2, 3"
)
_CONSTRAINT_INDEX = sa.text(
    "SELECT i.relname FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
    "JOIN pg_namespace n ON n.oid = t.relnamespace JOIN pg_class i ON i.oid = c.conindid "
    "WHERE n.nspname = :s AND t.relname = :t AND c.conname = :c"
)


def _dropped_indexes(stmts: list[ast.Node], sides: Sides) -> list[tuple[str, str]]:
    """(schema, index name) of each index or key constraint the statement drops, in the target."""
    found = []
    for stmt in stmts:
        if isinstance(stmt, ast.DropStmt) and stmt.removeType == ObjectType.OBJECT_INDEX:
            found += [fp.qualified(fp.object_names(o), sides.default_schema) for o in stmt.objects or ()]
        elif isinstance(stmt, ast.AlterTableStmt):
            table = fp.range_var(stmt.relation, sides.default_schema)
            for cmd in stmt.cmds or ():
                if cmd.subtype == AlterTableType.AT_DropConstraint:
                    index = sides.target.execute(
                        _CONSTRAINT_INDEX, {"s": table[0], "t": table[1], "c": cmd.name}
                    ).scalar()
                    if index:
                        found.append((table[0], index))
    return found


def foreign_keys_around_dropped_keys(statements: list[str], sides: Sides) -> list[str]:
    """Drop the foreign keys that rely on a key the plan drops just before it, re-add them at the end."""
    out: list[str] = []
    readd: list[str] = []
    handled: set[tuple[str, str, str]] = set()
    already_dropped = {
        fp.footprint(s, sides.default_schema).writes for sql in statements for s in _parse(sql)
    }
    dropped_keys = frozenset(k for w in already_dropped for k in w)
    for sql in statements:
        for schema, index in _dropped_indexes(_parse(sql), sides):
            for fk_schema, table, name, definition in sides.target.execute(
                _FKS_ON_INDEX, {"s": schema, "i": index}
            ):
                if (fk_schema, table, name) in handled or fp.constraint(
                    fk_schema, table, name
                ) in dropped_keys:
                    continue
                handled.add((fk_schema, table, name))
                out.append(f"ALTER TABLE {_qname(fk_schema, table)} DROP CONSTRAINT {_quote(name)};")
                readd.append(
                    f"ALTER TABLE {_qname(fk_schema, table)} ADD CONSTRAINT {_quote(name)} {definition};"
                )
        out.append(sql)
    return out + readd


_MATVIEW_INDEXES = sa.text(
    "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class v ON v.oid = i.indrelid "
    "JOIN pg_namespace n ON n.oid = v.relnamespace WHERE n.nspname = :s AND v.relname = :v "
    "AND v.relkind = 'm' ORDER BY 1"
)


def matview_indexes(statements: list[str], sides: Sides) -> list[str]:
    """Re-create production's indexes of a materialized view in the statement that (re-)creates it."""
    planned_indexes = set()
    for sql in statements:
        for stmt in _parse(sql):
            if isinstance(stmt, ast.IndexStmt):
                planned_indexes.add(" ".join(RawStream()(stmt).split()))
    out = []
    for sql in statements:
        stmts = _parse(sql)
        if len(stmts) == 1 and isinstance(stmts[0], ast.CreateTableAsStmt):
            view = fp.range_var(fp.present(stmts[0].into, "INTO clause").rel, sides.default_schema)
            extra = [
                d + ";"
                for (d,) in sides.source.execute(_MATVIEW_INDEXES, {"s": view[0], "v": view[1]})
                if " ".join(RawStream()(_parse(d)[0]).split()) not in planned_indexes
            ]
            if extra:
                sql = "\n".join([sql.rstrip().rstrip(";") + ";", *extra])
        out.append(sql)
    return out


# --- partitions created standalone, names of NOT NULL constraints ------------------------------


def partitions_as_dumped(
    statements: list[str], sides: Sides
) -> tuple[list[str], set[tuple[str, str]], set[tuple[str, str]]]:
    """Create new partitions as pg_dump does (a table, attached afterwards), not ``PARTITION OF``.

    A partition created ``PARTITION OF`` its parent inherits the parent's NOT NULL constraint
    names and cannot rename them; production's partition may carry its own. The attachment
    comes from production's dump (``TABLE ATTACH``). Returns the statements, the partitions
    created from the dump, and those still created ``PARTITION OF`` (no dump entry for them).
    """
    out, from_dump, still_partition_of = [], set(), set()
    for sql in statements:
        stmts = _parse(sql)
        if len(stmts) == 1 and isinstance(stmts[0], ast.CreateStmt) and stmts[0].partbound is not None:
            table = fp.range_var(stmts[0].relation, sides.default_schema)
            ddl = sides.source_snapshot.get(ObjectKey("TABLE", *table))
            if ddl:
                out.append(ddl)
                from_dump.add(table)
                continue
            still_partition_of.add(table)
        out.append(sql)
    return out, from_dump, still_partition_of


_NOT_NULLS = sa.text(
    "SELECT n.nspname, c.relname, a.attname, con.conname, con.conislocal FROM pg_constraint con "
    "JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = con.conkey[1] "
    "WHERE con.contype = 'n' AND n.nspname = ANY(:schemas)"
)
NAME_MAX = 63  # NAMEDATALEN - 1


def default_constraint_name(table: str, column: str, label: str) -> str:
    """The name PostgreSQL gives a constraint it names itself (``makeObjectName``), before de-duplication."""
    available = NAME_MAX - (len(label) + 1) - 1
    t, c = len(table), len(column)
    while t + c > available:
        if t > c:
            t -= 1
        else:
            c -= 1
    return f"{table[:t]}_{column[:c]}_{label}"


def chosen_constraint_name(table: str, column: str, label: str, taken: set[str]) -> str:
    """The name PostgreSQL gives (``ChooseConstraintName``): the default, else ``label1``, ``label2``...

    A name is taken when any constraint of the schema has it (not only one of the same table):
    ``dag.bundle_name``'s NOT NULL is ``dag_bundle_name_not_null1`` next to ``dag_bundle.name``'s.
    """
    name, attempt = default_constraint_name(table, column, label), 0
    while name in taken:
        attempt += 1
        name = default_constraint_name(table, column, f"{label}{attempt}")
    return name


_CONSTRAINT_NAMES = sa.text(
    "SELECT n.nspname, con.conname FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace "
    "WHERE n.nspname = ANY(:schemas)"
)


def not_null_names(sides: Sides, skipped: set[tuple[str, str]]) -> list[str]:
    """Rename NOT NULL constraints (named since PostgreSQL 18) to production's names.

    A NOT NULL the plan creates (``SET NOT NULL``, a new column) gets the name PostgreSQL will
    choose, judged from the baseline's constraint names now; it is renamed only if production's differs.
    """
    source = {(r[0], r[1], r[2]): r[3] for r in sides.source.execute(_NOT_NULLS, {"schemas": sides.schemas})}
    target = {
        (r[0], r[1], r[2]): (r[3], r[4]) for r in sides.target.execute(_NOT_NULLS, {"schemas": sides.schemas})
    }
    taken: dict[str, set[str]] = {}
    for schema, name in sides.target.execute(_CONSTRAINT_NAMES, {"schemas": sides.schemas}):
        taken.setdefault(schema, set()).add(name)
    renames = []
    for (schema, table, column), wanted in sorted(source.items()):
        if (schema, table) in skipped:
            continue  # created from production's own DDL (names included), or inheriting its names
        if (schema, table, column) in target:
            current, local = target[(schema, table, column)]
        else:
            names = taken.setdefault(schema, set())
            current, local = chosen_constraint_name(table, column, "not_null", names), True
            names.add(current)
        if current != wanted and local:
            renames.append(
                f"ALTER TABLE {_qname(schema, table)} RENAME CONSTRAINT {_quote(current)} TO {_quote(wanted)};"
            )
    return renames


def _attached_to(ddl: str, schema: str) -> tuple[str, str] | None:
    """The parent index of an ``ALTER INDEX parent ATTACH PARTITION child`` (names as parsed, not as text)."""
    stmts = _parse(ddl)
    if len(stmts) != 1 or not isinstance(stmts[0], ast.AlterTableStmt):
        return None
    return fp.range_var(stmts[0].relation, schema)


def changed_indexes(plan: list[str], sides: Sides) -> tuple[list[str], list[str]]:
    """Re-create indexes whose dumped definition differs (options, operator classes) and the library left alone."""
    planned = {k for sql in plan for k in fp.of_sql(sql, sides.default_schema).writes}
    drops, creates = [], []
    src, tgt = sides.source_snapshot, sides.target_snapshot
    for key in sorted(src.keys() & tgt.keys()):
        if key.kind != "INDEX" or src[key] == tgt[key] or fp.relation(key.schema, key.name) in planned:
            continue
        drops.append(f"DROP INDEX IF EXISTS {_qname(key.schema, key.name)};")
        creates.append(src[key])
        creates += [
            ddl
            for k, ddl in sorted(src.items())
            if k.kind == "INDEX ATTACH" and _attached_to(ddl, key.schema) == (key.schema, key.name)
        ]
    return drops, creates


_RELOPTIONS = sa.text(
    "SELECT n.nspname, c.relname, coalesce(c.reloptions, '{}') FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'm') "
    "AND n.nspname = ANY(:schemas)"
)


def storage_parameters(sides: Sides) -> list[str]:
    """``ALTER TABLE .. SET/RESET (fillfactor ...)`` where production's storage parameters differ."""
    source = {
        (r[0], r[1]): dict(o.split("=", 1) for o in r[2])
        for r in sides.source.execute(_RELOPTIONS, {"schemas": sides.schemas})
    }
    target = {
        (r[0], r[1]): dict(o.split("=", 1) for o in r[2])
        for r in sides.target.execute(_RELOPTIONS, {"schemas": sides.schemas})
    }
    out = []
    for table, wanted in sorted(source.items()):
        current = target.get(table, {})
        changed = {k: v for k, v in wanted.items() if current.get(k) != v}
        gone = sorted(set(current) - set(wanted))
        if changed:
            params = ", ".join(f"{k} = '{v}'" for k, v in sorted(changed.items()))
            out.append(f"ALTER TABLE {_qname(*table)} SET ({params});")
        if gone and table in target:
            out.append(f"ALTER TABLE {_qname(*table)} RESET ({', '.join(gone)});")
    return out


_FORCED_RLS = sa.text(
    "SELECT n.nspname, c.relname, c.relforcerowsecurity FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(:schemas)"
)


def forced_row_security(sides: Sides) -> list[str]:
    """``FORCE ROW LEVEL SECURITY`` (the library syncs only ``ENABLE``) where production's differs."""
    source = {(r[0], r[1]): r[2] for r in sides.source.execute(_FORCED_RLS, {"schemas": sides.schemas})}
    target = {(r[0], r[1]): r[2] for r in sides.target.execute(_FORCED_RLS, {"schemas": sides.schemas})}
    return [
        f"ALTER TABLE {_qname(*table)} {'' if forced else 'NO '}FORCE ROW LEVEL SECURITY;"
        for table, forced in sorted(source.items())
        if forced != target.get(table, False)
    ]


_GENERATED = sa.text(
    "SELECT n.nspname, c.relname, a.attname, pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a "
    "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
    "WHERE a.attgenerated <> '' AND NOT a.attisdropped AND n.nspname = ANY(:schemas)"
)


def generation_expressions(statements: list[str], sides: Sides) -> list[str]:
    """A generated column's new expression is ``SET EXPRESSION``, not ``SET DEFAULT`` (which PostgreSQL refuses)."""
    source = {(r[0], r[1], r[2]): r[3] for r in sides.source.execute(_GENERATED, {"schemas": sides.schemas})}
    target = {(r[0], r[1], r[2]) for r in sides.target.execute(_GENERATED, {"schemas": sides.schemas})}
    out = []
    for sql in statements:
        stmts = _parse(sql)
        if (
            len(stmts) == 1
            and isinstance(stmts[0], ast.AlterTableStmt)
            and len(cmds := stmts[0].cmds or ()) == 1
        ):
            cmd = cmds[0]
            key = (*fp.range_var(stmts[0].relation, sides.default_schema), cmd.name)
            if cmd.subtype == AlterTableType.AT_ColumnDefault and key in target and key in source:
                sql = f"ALTER TABLE {_qname(*key[:2])} ALTER COLUMN {_quote(key[2])} SET EXPRESSION AS ({source[key]});"
        out.append(sql)
    return out


_COLUMN_TYPE = sa.text(
    "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s AND c.relname = :t "
    "AND a.attname = :c AND NOT a.attisdropped"
)
_FROM_BYTES = frozenset({"json", "jsonb", "text", "varchar"})
_TEXT_TYPES = frozenset({"json", "jsonb", "text", "character varying"})


def casts_postgres_lacks(statements: list[str], sides: Sides) -> list[str]:
    """Type changes PostgreSQL has no cast for, written with a conversion (the library writes ``col::type``).

    ``bytea`` to text or JSON is decoded as UTF-8 and back; a scalar (number, boolean...) becomes a
    JSON value with ``to_json``, and a JSON scalar's text is cast to the scalar type.

    Airflow 3 turned ``xcom.value`` and ``dag_run.conf`` from ``bytea`` into ``jsonb``; the library
    writes ``USING col::jsonb``, which PostgreSQL refuses for ``bytea``. Decoded, the change applies
    where the bytes are UTF-8 text (JSON for ``jsonb``) and fails, held with PostgreSQL's error, where not.
    """
    out = []
    for sql in statements:
        stmts = _parse(sql)
        if len(stmts) == 1 and isinstance(stmts[0], ast.AlterTableStmt) and len(stmts[0].cmds or ()) == 1:
            cmd = fp.present(stmts[0].cmds, "commands")[0]
            table = fp.range_var(stmts[0].relation, sides.default_schema)
            if cmd.subtype == AlterTableType.AT_AlterColumnType:
                new_type = fp.names(cmd.def_.typeName.names)[-1]
                old_type = sides.target.execute(
                    _COLUMN_TYPE, {"s": table[0], "t": table[1], "c": cmd.name}
                ).scalar()
                column, target = _quote(cmd.name), RawStream()(cmd.def_.typeName)
                using = None
                if old_type == "bytea" and new_type in _FROM_BYTES:
                    using = f"convert_from({column}, 'UTF8')::{target}"
                elif new_type == "bytea" and old_type and old_type.split("(")[0] in _TEXT_TYPES:
                    using = f"convert_to({column}::text, 'UTF8')"
                elif new_type in ("json", "jsonb") and old_type and old_type.split("(")[0] not in _TEXT_TYPES:
                    using = f"to_{new_type}({column})"  # a number, boolean, timestamp... as a JSON value
                elif old_type in ("json", "jsonb") and new_type not in _FROM_BYTES:
                    using = f"({column} #>> '{{}}')::{target}"  # a JSON scalar's text, then cast
                if using:
                    sql = f"ALTER TABLE {_qname(*table)} ALTER COLUMN {column} SET DATA TYPE {target} USING {using};"
        out.append(sql)
    return out


def complete(statements: list[str], sides: Sides) -> list[str]:
    """The library's plan, corrected and completed (see the module docstring)."""
    plan, from_dump, partition_of = partitions_as_dumped(statements, sides)
    first, last = dump_only_objects(sides, partition_of)
    plan, altered_sequences = sequences(plan, sides)
    plan = partitioned_keys(plan, sides)
    plan = virtual_columns(plan, sides)
    plan = identity_sequence_names(plan, sides)
    plan = domains(plan, sides)
    plan = foreign_keys_around_dropped_keys(plan, sides)
    plan = matview_indexes(plan, sides)
    plan = casts_postgres_lacks(generation_expressions(plan, sides), sides)
    plan += storage_parameters(sides) + forced_row_security(sides)
    index_drops, index_creates = changed_indexes(plan, sides)
    first, last = first + index_drops, index_creates + last
    plan = first + plan + altered_sequences + last + not_null_names(sides, from_dump | partition_of)
    return partition_column_types(plan, sides)
