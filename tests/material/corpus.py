"""The corpus of real PostgreSQL schemas (issue 10): where the files are, which pairs to sync, how to load.

``schemas/<project>/<version>.sql`` are ``pg_dump --schema-only`` texts (see ``schemas/README.md``)
that load with a plain ``cursor.execute`` into an empty database. Versions sort naturally by
file name: numbers compare as numbers (``2.10.1`` < ``3.1.1``), ``4.1.0-drift`` comes right after
``4.1.0``, ``v1`` before ``v2``. No Airflow here: engines and benches use it too.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CORPUS_DIR: Path = Path(__file__).resolve().parent / "schemas"

# Session settings a pg_dump file changes (search_path is emptied): load() puts them back.
_DUMP_SETTINGS = (
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "transaction_timeout",
    "search_path",
    "check_function_bodies",
    "xmloption",
    "client_min_messages",
    "row_security",
    "default_tablespace",
    "default_table_access_method",
)


@dataclass(frozen=True)
class SchemaPair:
    """One sync to run: make ``target`` look like ``source``; ``None`` is an empty database."""

    name: str
    source: Path | None
    target: Path | None


def version_key(path: Path) -> tuple[tuple[int, int | str], ...]:
    """Natural order of a version file name: ``2.10.1`` < ``3.1.1`` < ``4.1.0`` < ``4.1.0-drift``."""
    tokens = re.findall(r"\d+|[^\d.]+", path.stem)
    return tuple((0, int(t)) if t.isdigit() else (1, t) for t in tokens)


def projects() -> dict[str, list[Path]]:
    """Every project in the corpus with its version files, oldest first."""
    return {
        d.name: sorted(d.glob("*.sql"), key=version_key)
        for d in sorted(CORPUS_DIR.iterdir())
        if d.is_dir() and any(d.glob("*.sql"))
    }


# Wider jumps than consecutive versions, both directions: (project, older version, newer version).
SPANS: tuple[tuple[str, str, str], ...] = (("airflow", "3.0.0", "3.3.2"),)


def pairs() -> list[SchemaPair]:
    """Each consecutive version pair and each of :data:`SPANS` both ways, then empty -> full per version."""
    found: list[SchemaPair] = []
    for project, versions in projects().items():
        by_name = {v.stem: v for v in versions}
        spans = [
            (by_name[o], by_name[n]) for p, o, n in SPANS if p == project and o in by_name and n in by_name
        ]
        for old, new in [*itertools.pairwise(versions), *spans]:
            found.append(SchemaPair(f"{project}:{old.stem}->{new.stem}", source=new, target=old))
            found.append(SchemaPair(f"{project}:{new.stem}->{old.stem}", source=old, target=new))
        for version in versions:
            found.append(SchemaPair(f"{project}:empty->{version.stem}", source=version, target=None))
    return found


def load(cursor: Any, path: Path) -> None:
    """Execute one corpus file with ``cursor`` (psycopg2 or psycopg), keeping the session's settings.

    The file sets session settings as pg_dump does (an empty ``search_path`` among them); they are
    restored afterwards so the connection can be used as before.
    """
    saved = {}
    for name in _DUMP_SETTINGS:
        cursor.execute("SELECT current_setting(%s, true)", (name,))
        saved[name] = cursor.fetchone()[0]
    cursor.execute(path.read_text())
    for name, value in saved.items():
        if value is not None:
            cursor.execute("SELECT set_config(%s, %s, false)", (name, value))


_CATALOG_COUNTS = """
WITH user_ns AS (
    SELECT oid FROM pg_namespace
     WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND nspname NOT LIKE 'pg_temp%'
), ext_objects AS (
    SELECT objid FROM pg_depend WHERE deptype = 'e'
)
SELECT 'tables', count(*) FROM pg_class WHERE relnamespace IN (SELECT oid FROM user_ns)
   AND relkind IN ('r', 'p') AND NOT relispartition
UNION ALL SELECT 'partitions', count(*) FROM pg_class
 WHERE relnamespace IN (SELECT oid FROM user_ns) AND relispartition AND relkind IN ('r', 'p')
UNION ALL SELECT 'views', count(*) FROM pg_class WHERE relnamespace IN (SELECT oid FROM user_ns)
   AND relkind = 'v' AND oid NOT IN (SELECT objid FROM ext_objects)
UNION ALL SELECT 'materialized views', count(*) FROM pg_class
 WHERE relnamespace IN (SELECT oid FROM user_ns) AND relkind = 'm'
UNION ALL SELECT 'indexes', count(*) FROM pg_class WHERE relnamespace IN (SELECT oid FROM user_ns)
   AND relkind IN ('i', 'I')
UNION ALL SELECT 'sequences', count(*) FROM pg_class WHERE relnamespace IN (SELECT oid FROM user_ns)
   AND relkind = 'S'
UNION ALL SELECT 'constraints', count(*) FROM pg_constraint WHERE connamespace IN (SELECT oid FROM user_ns)
   AND oid NOT IN (SELECT objid FROM ext_objects)
UNION ALL SELECT 'functions', count(*) FROM pg_proc WHERE pronamespace IN (SELECT oid FROM user_ns)
   AND prokind IN ('f', 'p') AND oid NOT IN (SELECT objid FROM ext_objects)
UNION ALL SELECT 'aggregates', count(*) FROM pg_proc WHERE pronamespace IN (SELECT oid FROM user_ns)
   AND prokind = 'a' AND oid NOT IN (SELECT objid FROM ext_objects)
UNION ALL SELECT 'types', count(*) FROM pg_type WHERE typnamespace IN (SELECT oid FROM user_ns)
   AND oid NOT IN (SELECT objid FROM ext_objects)
   AND (typtype IN ('e', 'd', 'r') OR (typtype = 'c' AND typrelid IN (SELECT oid FROM pg_class WHERE relkind = 'c')))
UNION ALL SELECT 'triggers', count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace IN (SELECT oid FROM user_ns) AND NOT t.tgisinternal
UNION ALL SELECT 'policies', count(*) FROM pg_policy
UNION ALL SELECT 'extensions', count(*) FROM pg_extension WHERE extname <> 'plpgsql'
"""


def catalog_counts(cursor: Any) -> dict[str, int]:
    """How many objects of each kind the connected database holds outside the system schemas."""
    cursor.execute(_CATALOG_COUNTS)
    return {kind: int(n) for kind, n in cursor.fetchall()}
