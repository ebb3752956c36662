"""Database names and libpq connection targets: one rule for the dump and the restore side.

A database name is data, never a connection string: it must match :data:`DATABASE_PATTERN`
(checked whole, so a trailing newline does not slip through), and every connection target a
client tool gets is built here in libpq's keyword form with each value quoted.
"""

from __future__ import annotations

import hashlib
import re

from baseline_guard.errors import InvalidInput

DATABASE_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$"
MAX_NAME_BYTES = 63
NAME_HASH_CHARS = 8
_DATABASE_RE = re.compile(DATABASE_PATTERN.removeprefix("^").removesuffix("$"))


def check_database_name(name: object, what: str = "database") -> str:
    """``name`` if it is a plain database name, else :class:`InvalidInput` saying what is expected."""
    if not isinstance(name, str) or _DATABASE_RE.fullmatch(name) is None:
        shown = repr(name) if not isinstance(name, str) or len(name) <= 80 else repr(name[:80]) + "..."
        raise InvalidInput(
            f"{what} name {shown}: expected 1-63 characters of letters, digits, _ . - "
            "(not starting with . or -); a name is never read as a connection string"
        )
    return name


def conninfo_value(value: str) -> str:
    """``value`` quoted for a libpq keyword/value connection string: ``'it''s'`` -> ``'it\\'s'``."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def dbname_target(database: str) -> str:
    """The ``--dbname`` argument naming exactly ``database``: ``dbname='<name>'`` (validated, quoted)."""
    return f"dbname={conninfo_value(check_database_name(database))}"


def derived_name(database: str, tag: str, short_id: str) -> str:
    """``<db>__<tag>_<id>``, fitting PostgreSQL's 63 bytes; a longer name is shortened *and* tagged.

    A name too long for the suffix keeps its first part plus ``_<8 hex of the SHA-256 of the whole
    name>``, so two databases that share their first characters still get distinct names. The cut
    is made in bytes on a character boundary (names are ASCII by :data:`DATABASE_PATTERN`, so
    bytes and characters agree today).
    """
    suffix = f"__{tag}_{short_id}"
    base = check_database_name(database)
    if len((base + suffix).encode()) <= MAX_NAME_BYTES:
        return check_database_name(base + suffix)
    digest = "_" + hashlib.sha256(database.encode()).hexdigest()[:NAME_HASH_CHARS]
    room = MAX_NAME_BYTES - len(suffix.encode()) - len(digest)
    if room < 1:
        raise InvalidInput(f"tag {tag!r} and id {short_id!r} leave no room for a database name")
    shortened = base.encode()[:room].decode("utf-8", errors="ignore")
    return check_database_name(shortened + digest + suffix)
