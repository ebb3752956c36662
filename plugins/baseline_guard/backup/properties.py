"""Database-level properties that ``pg_dump`` archives do not carry into a restore under another name.

ACL (who may connect, create, use temp), ``ALTER DATABASE ... SET`` settings (per database and
per role in the database), the comment and the connection limit. Read from the source at backup
time into the manifest, applied to the restored copy before it is swapped in.
"""

from __future__ import annotations

import re

from psycopg2 import sql
from psycopg2.extensions import connection as PgConnection
from pydantic import BaseModel, Field

from baseline_guard.backup.pgtools import fetch_value
from baseline_guard.errors import BackupError

# Settings whose value is a list of names (pg_dump's GUC_LIST_QUOTE set): each element is its own literal.
_LIST_SETTINGS = frozenset(
    {"search_path", "temp_tablespaces", "session_preload_libraries", "local_preload_libraries"}
)
_ACL_ITEM = re.compile(r'^("(?:[^"]|"")*"|[^=]*)=([A-Za-z*]*)/.*$')
_PRIVILEGES = {"C": "CREATE", "T": "TEMPORARY", "c": "CONNECT"}


class DatabaseSetting(BaseModel):
    """One ``ALTER [ROLE r IN] DATABASE ... SET name = value``; ``role`` None: for every role."""

    role: str | None = None
    name: str
    value: str


class DatabaseProperties(BaseModel):
    """A database's own properties. ``acl`` None: the default (PUBLIC may connect)."""

    acl: list[str] | None = None
    settings: list[DatabaseSetting] = Field(default_factory=list)
    comment: str | None = None
    connection_limit: int = -1


_READ_SQL = """
SELECT d.datacl::text[], d.datconnlimit, shobj_description(d.oid, 'pg_database'),
       coalesce((SELECT json_agg(json_build_array(
                   CASE WHEN s.setrole = 0 THEN NULL ELSE pg_get_userbyid(s.setrole) END, s.setconfig)
                 ORDER BY s.setrole)
                 FROM pg_db_role_setting s WHERE s.setdatabase = d.oid), '[]'::json)
FROM pg_database d WHERE d.datname = %s
"""


def read_properties(admin: PgConnection, database: str) -> DatabaseProperties | None:
    """The properties of ``database`` as its server holds them; None when it does not exist."""
    with admin.cursor() as cur:
        cur.execute(_READ_SQL, (database,))
        row = cur.fetchone()
    if row is None:
        return None
    acl, limit, comment, role_settings = row
    settings = [
        DatabaseSetting(role=role, name=name, value=value)
        for role, config in role_settings
        for name, _, value in (item.partition("=") for item in config or [])
    ]
    return DatabaseProperties(acl=acl, settings=settings, comment=comment, connection_limit=limit)


def apply_properties(admin: PgConnection, database: str, props: DatabaseProperties) -> None:
    """Give ``database`` (a fresh copy) exactly ``props``: ACL, settings, comment, connection limit."""
    db = sql.Identifier(database)
    statements: list[sql.Composable] = []
    if props.acl is not None:
        statements += _acl_statements(admin, db, props.acl)
    for setting in props.settings:
        target = (
            sql.SQL("ALTER ROLE {} IN DATABASE {}").format(sql.Identifier(setting.role), db)
            if setting.role
            else sql.SQL("ALTER DATABASE {}").format(db)
        )
        statements.append(
            target + sql.SQL(" SET {} TO {}").format(sql.Identifier(setting.name), _setting_value(setting))
        )
    if props.comment is not None:
        statements.append(sql.SQL("COMMENT ON DATABASE {} IS {}").format(db, sql.Literal(props.comment)))
    if props.connection_limit != -1:
        statements.append(
            sql.SQL("ALTER DATABASE {} CONNECTION LIMIT {}").format(db, sql.Literal(props.connection_limit))
        )
    with admin.cursor() as cur:
        for statement in statements:
            try:
                cur.execute(statement)
            except Exception as err:
                raise BackupError(
                    f"could not give the restored copy {database} the database's properties "
                    f"({statement.as_string(admin)}): {str(err).strip()}"
                ) from None


def _acl_statements(admin: PgConnection, db: sql.Identifier, acl: list[str]) -> list[sql.Composable]:
    with admin.cursor() as cur:
        cur.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (db.strings[0],))
        owner = fetch_value(cur)
    statements: list[sql.Composable] = [
        sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db),
        sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(db, sql.Identifier(owner)),
    ]
    for item in acl:
        match = _ACL_ITEM.match(item)
        if match is None:
            raise BackupError(f"ACL item {item!r} is not understood: expected grantee=privileges/grantor")
        grantee, privileges = _role_name(match.group(1)), match.group(2)
        plain = [
            _PRIVILEGES[p]
            for i, p in enumerate(privileges)
            if p in _PRIVILEGES and not _grantable(privileges, i)
        ]
        grantable = [
            _PRIVILEGES[p] for i, p in enumerate(privileges) if p in _PRIVILEGES and _grantable(privileges, i)
        ]
        to = sql.SQL("PUBLIC") if grantee == "" else sql.Identifier(grantee)
        for privs, option in ((plain, ""), (grantable, " WITH GRANT OPTION")):
            if privs:
                statements.append(
                    sql.SQL("GRANT {} ON DATABASE {} TO {}{}").format(
                        sql.SQL(", ").join(sql.SQL(p) for p in privs), db, to, sql.SQL(option)
                    )
                )
    return statements


def _grantable(privileges: str, index: int) -> bool:
    return index + 1 < len(privileges) and privileges[index + 1] == "*"


def _role_name(text: str) -> str:
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1].replace('""', '"')
    return text


def _setting_value(setting: DatabaseSetting) -> sql.Composable:
    if setting.name not in _LIST_SETTINGS:
        return sql.Literal(setting.value)
    return sql.SQL(", ").join(sql.Literal(element) for element in _split_list(setting.value))


def _split_list(value: str) -> list[str]:
    """``app, "My Schema", public`` -> ``['app', 'My Schema', 'public']`` (as PostgreSQL's SplitGUCList)."""
    elements: list[str] = []
    for raw in re.findall(r'\s*("(?:[^"]|"")*"|[^,]+)\s*(?:,|$)', value):
        raw = raw.strip()
        elements.append(raw[1:-1].replace('""', '"') if raw.startswith('"') else raw)
    return [e for e in elements if e != ""] or [""]
