"""Names read from the baseline's schema dump go into DDL quoted, never as SQL text (issue 20).

The kinds the diff library does not inspect (collations, text search objects, statistics, range
types, aggregates, operators, conversions) are dropped from what the dump says; the name must
come back as one identifier however it is spelled.
"""

from __future__ import annotations

import pytest
from baseline_guard.schema import diff_schemas, sync_schema

EVIL = "x; GRANT ALL ON ALL TABLES IN SCHEMA public TO PUBLIC; --"


@pytest.mark.parametrize(
    ("ddl", "drop"),
    [
        (
            f"CREATE COLLATION public.\"{EVIL}\" (provider = libc, locale = 'C');",
            f'DROP COLLATION public."{EVIL}";',
        ),
        (
            'CREATE COLLATION public."a""b" (provider = libc, locale = \'C\');',
            'DROP COLLATION public."a""b";',
        ),
        (
            'CREATE TEXT SEARCH CONFIGURATION public."Mixed" (PARSER = pg_catalog."default");',
            'DROP TEXT SEARCH CONFIGURATION public."Mixed";',
        ),
        (
            'CREATE TEXT SEARCH DICTIONARY "Odd Schema"."Dict" (TEMPLATE = pg_catalog.simple);',
            'DROP TEXT SEARCH DICTIONARY "Odd Schema"."Dict";',
        ),
        ('CREATE STATISTICS public."select" ON a, b FROM public.t;', 'DROP STATISTICS public."select";'),
        ('CREATE TYPE public."Rng" AS RANGE (subtype = integer);', 'DROP TYPE public."Rng";'),
        (
            "CREATE CONVERSION public.\"Conv\" FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8;",
            'DROP CONVERSION public."Conv";',
        ),
        (
            'CREATE AGGREGATE public."Sum Up"(integer, text) (SFUNC = f, STYPE = integer);',
            'DROP AGGREGATE public."Sum Up" (integer, text);',
        ),
        ("CREATE AGGREGATE public.n(*) (SFUNC = f, STYPE = integer);", "DROP AGGREGATE public.n (*);"),
        (
            'CREATE OPERATOR "My Ops".=== (FUNCTION = f, LEFTARG = integer, RIGHTARG = "My Ops"."T");',
            'DROP OPERATOR "My Ops".=== (integer, "My Ops"."T");',
        ),
        (
            "CREATE OPERATOR public.!!! (FUNCTION = f, RIGHTARG = bigint);",
            "DROP OPERATOR public.!!! (NONE, bigint);",
        ),
    ],
)
def test_drop_of_definition_quotes_every_name(ddl: str, drop: str) -> None:
    from baseline_guard.schema.complete import drop_of_definition

    assert drop_of_definition(ddl) == drop


_OBJECTS = """
SELECT 'collation ' || collname FROM pg_collation WHERE collnamespace = 'public'::regnamespace
UNION ALL SELECT 'ts config ' || cfgname FROM pg_ts_config WHERE cfgnamespace = 'public'::regnamespace
UNION ALL SELECT 'statistics ' || stxname FROM pg_statistic_ext WHERE stxnamespace = 'public'::regnamespace
UNION ALL SELECT 'range ' || typname FROM pg_type WHERE typtype = 'r' AND typnamespace = 'public'::regnamespace
ORDER BY 1;
"""
_PUBLIC_GRANTS = (
    "SELECT count(*) FROM pg_class c, aclexplode(c.relacl) a WHERE c.relname = 't' AND a.grantee = 0;"
)


def test_baseline_objects_with_hostile_and_mixed_case_names_are_dropped_as_named(dbs):
    """A baseline collation named like SQL drops that collation only; mixed-case names drop at all."""
    dbs.both(
        "CREATE TABLE t (a int, b int); INSERT INTO t VALUES (1, 2);"
        "CREATE COLLATION x (provider = libc, locale = 'C');"
    )
    dbs.target(
        f"CREATE COLLATION \"{EVIL}\" (provider = libc, locale = 'C');"
        'CREATE TEXT SEARCH CONFIGURATION "Mixed" (PARSER = pg_catalog."default");'
        'CREATE STATISTICS "St" ON a, b FROM t;'
        'CREATE TYPE "Rng" AS RANGE (subtype = integer);'
    )

    hourly = sync_schema(dbs.source_dsn, dbs.target_dsn)
    assert hourly.applied == []
    # the four drops (the diff library plans the collation's too, "if exists")
    assert len(hourly.held) >= 4 and all(s.sql.upper().startswith("DROP ") for s in hourly.held)
    approved = sync_schema(
        dbs.source_dsn, dbs.target_dsn, apply_destructive=True, approved=[s.sql for s in hourly.held]
    )

    assert approved.held == [] and approved.not_synced == []
    assert dbs.target(_OBJECTS).strip().split("\n") == ["collation x"]  # production's own collation stays
    assert dbs.target(_PUBLIC_GRANTS).strip() == "0"  # and nothing was granted
    assert dbs.target("SELECT count(*) FROM t;").strip() == "1"
    assert diff_schemas(dbs.source_dsn, dbs.target_dsn).statements == []
