"""Diff + classification against real PostgreSQL: one test per kind of object."""

from __future__ import annotations

from baseline_guard.schema import ClassifiedStatement, SchemaDiff, diff_schemas
from baseline_guard.schema.classify import classify
from baseline_guard.schema.connect import Database
from baseline_guard.schema.diff import CatalogFacts


def plan(dbs) -> SchemaDiff:
    return diff_schemas(dbs.source_dsn, dbs.target_dsn, ["public"])


def find(diff: SchemaDiff, *fragments: str) -> ClassifiedStatement:
    """The one statement whose SQL (lower case, one line) contains every fragment."""
    wanted = [f.lower() for f in fragments]
    hits = [s for s in diff.statements if all(f in " ".join(s.sql.lower().split()) for f in wanted)]
    assert len(hits) == 1, f"{fragments} matched {len(hits)} of {[s.sql for s in diff.statements]}"
    return hits[0]


def test_identical_schemas_give_an_empty_plan(dbs):
    dbs.both("CREATE TABLE t (id int PRIMARY KEY, name text); CREATE VIEW v AS SELECT id FROM t;")
    assert diff_schemas(dbs.source_dsn, dbs.target_dsn).statements == []


def test_tables_added_are_safe_and_dropped_are_destructive(dbs):
    dbs.source("CREATE TABLE fresh (id int, note text);")
    dbs.target("CREATE TABLE gone (id int); INSERT INTO gone VALUES (1);")
    diff = plan(dbs)
    assert find(diff, "create table", "fresh").safe
    dropped = find(diff, "drop table", "gone")
    assert not dropped.safe
    assert "drops table public.gone" in dropped.reason


def test_columns(dbs):
    dbs.source(
        "CREATE TABLE t (id int, note text, qty int DEFAULT 0, must text NOT NULL, wide varchar(100), "
        "freeform text, narrow varchar(10), count int, big bigint, tags text);"
    )
    dbs.target(
        "CREATE TABLE t (id int, old text, wide varchar(50), freeform varchar(20), narrow varchar(100), "
        "count text, big int, tags text[]); INSERT INTO t (id) VALUES (1);"
    )
    diff = plan(dbs)
    assert find(diff, 'add column "note"').safe
    assert find(diff, 'add column "qty"').safe
    must = find(diff, 'add column "must"')
    assert not must.safe and "NOT NULL" in must.reason and "non-empty" in must.reason
    assert not find(diff, 'drop column "old"').safe
    assert find(diff, '"wide" set data type').safe  # varchar(50) -> varchar(100): widening
    assert find(diff, '"freeform" set data type').safe  # varchar(20) -> text
    narrow = find(diff, '"narrow" set data type')
    assert not narrow.safe and "varchar(100) to varchar(10)" in narrow.reason
    assert not find(diff, '"count" set data type').safe  # text -> int
    big = find(diff, '"big" set data type')
    assert not big.safe and "rewrites" in big.reason  # int -> bigint: lossless but a rewrite
    assert not find(diff, '"tags" set data type').safe  # text[] -> text: a conversion, not a widening


def test_not_null_column_on_an_empty_table_is_safe(dbs):
    dbs.source("CREATE TABLE t (id int, must text NOT NULL); CREATE TABLE u (id int NOT NULL);")
    dbs.target("CREATE TABLE t (id int); CREATE TABLE u (id int);")
    diff = plan(dbs)
    assert find(diff, 'add column "must"').safe
    assert find(diff, '"u"', "set not null").safe


def test_defaults(dbs):
    dbs.source("CREATE TABLE t (a int DEFAULT 7, b int);")
    dbs.target("CREATE TABLE t (a int, b int DEFAULT 3); INSERT INTO t VALUES (1, 1);")
    diff = plan(dbs)
    assert find(diff, '"a" set default 7').safe
    assert find(diff, '"b" drop default').safe


def test_nullability(dbs):
    dbs.source("CREATE TABLE t (a int NOT NULL, b int);")
    dbs.target("CREATE TABLE t (a int, b int NOT NULL); INSERT INTO t VALUES (1, 1);")
    diff = plan(dbs)
    set_not_null = find(diff, '"a" set not null')
    assert not set_not_null.safe and "non-empty" in set_not_null.reason
    assert find(diff, '"b" drop not null').safe


def test_indexes(dbs):
    dbs.source("CREATE TABLE t (a int, b int, c int); CREATE INDEX t_a_idx ON t (a);")
    dbs.target(
        "CREATE TABLE t (a int, b int, c int CONSTRAINT t_c_key UNIQUE); CREATE INDEX t_b_idx ON t (b);"
    )
    diff = plan(dbs)
    assert find(diff, "create index t_a_idx").safe
    assert find(diff, "drop index", "t_b_idx").safe
    backing = find(diff, "drop index", "t_c_key")
    assert not backing.safe and "backs constraint t_c_key" in backing.reason


def test_constraints(dbs):
    dbs.source(
        "CREATE TABLE p (id int PRIMARY KEY, code text UNIQUE, n int CHECK (n > 0));"
        "CREATE TABLE c (id int, p_id int REFERENCES p (id));"
        "CREATE TABLE q (id int);"
    )
    dbs.target(
        "CREATE TABLE p (id int, code text, n int);"
        "CREATE TABLE c (id int, p_id int);"
        "CREATE TABLE q2 (id int PRIMARY KEY);"
        "CREATE TABLE q (id int CONSTRAINT q_id_check CHECK (id > 0) REFERENCES q2 (id));"
    )
    diff = plan(dbs)
    assert "primary key" in find(diff, 'add constraint "p_pkey" primary key').reason
    assert find(diff, 'add constraint "p_pkey"').safe
    assert find(diff, 'add constraint "p_code_key" unique').safe
    assert find(diff, 'add constraint "p_n_check" check').safe
    assert find(diff, 'add constraint "c_p_id_fkey" foreign key').safe
    assert find(diff, 'validate constraint "c_p_id_fkey"').safe
    assert not find(diff, 'drop constraint "q_id_check"').safe
    assert not find(diff, 'drop constraint "q_id_fkey"').safe


def test_sequences(dbs):
    dbs.source("CREATE SEQUENCE invoice_no START 1000; CREATE TABLE t (id serial);")
    dbs.target("CREATE SEQUENCE legacy_no; SELECT nextval('legacy_no');")
    diff = plan(dbs)
    assert find(diff, "create sequence", "invoice_no").safe
    assert find(diff, "create sequence", "t_id_seq").safe
    assert find(diff, "create table", '"t"').safe
    dropped = find(diff, "drop sequence", "legacy_no")
    assert not dropped.safe and "current value" in dropped.reason


def test_enum_value_added_is_safe(dbs):
    dbs.source("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); CREATE TABLE t (m mood);")
    dbs.target(
        "CREATE TYPE mood AS ENUM ('sad', 'happy'); CREATE TABLE t (m mood); INSERT INTO t VALUES ('sad');"
    )
    diff = plan(dbs)
    # only the ADD VALUE: no re-cast of t.m, which would rewrite the table for nothing
    assert [s.sql for s in diff.statements] == ["alter type \"public\".\"mood\" add value 'ok' after 'sad';"]
    assert find(diff, "add value 'ok'").safe


def test_enum_value_removed_recreates_the_enum_and_is_held_whole(dbs):
    dbs.source("CREATE TYPE mood AS ENUM ('sad', 'happy'); CREATE TABLE t (m mood DEFAULT 'sad');")
    dbs.target(
        "CREATE TYPE mood AS ENUM ('sad', 'meh', 'happy'); CREATE TABLE t (m mood DEFAULT 'sad');"
        "INSERT INTO t VALUES ('meh');"
    )
    diff = plan(dbs)
    assert diff.statements and not diff.safe, diff.statements
    assert "removed or reordered" in find(diff, "rename to").reason
    assert not find(diff, "create type").safe
    assert not find(diff, "alter column m type").safe
    assert not find(diff, "drop type").safe


def test_views(dbs):
    dbs.both("CREATE TABLE t (id int, name text);")
    dbs.source(
        "CREATE VIEW fresh AS SELECT id FROM t;"
        "CREATE VIEW changed AS SELECT id, name FROM t;"
        "CREATE VIEW reshaped AS SELECT name FROM t;"
    )
    dbs.target(
        "CREATE VIEW changed AS SELECT id FROM t;"
        "CREATE VIEW reshaped AS SELECT id, name FROM t;"
        "CREATE VIEW gone AS SELECT id FROM t;"
    )
    diff = plan(dbs)
    assert find(diff, "create or replace view", '"fresh"').safe
    assert find(diff, "create or replace view", '"changed"').safe
    # a view whose columns change is dropped and re-created: safe, it holds no data
    assert "re-create" in find(diff, "drop view", '"reshaped"').reason
    assert find(diff, "drop view", '"reshaped"').safe
    gone = find(diff, "drop view", '"gone"')
    assert not gone.safe and "drops view public.gone" in gone.reason


def test_statements_nobody_listed_as_safe_are_held(dbs):
    dbs.target("CREATE TABLE t (id int);")
    target = Database.parse(dbs.target_dsn, "target")
    with target.connect(read_only=True) as conn:
        verdicts = classify(
            ["TRUNCATE t;", "ALTER TABLE t ENABLE ROW LEVEL SECURITY;", "this is not sql"], CatalogFacts(conn)
        )
    assert [v.safe for v in verdicts] == [False, False, False]
    assert "TruncateStmt" in verdicts[0].reason
    assert "could not be parsed" in verdicts[2].reason


def test_a_safe_statement_relying_on_a_held_one_is_held_with_a_reason(dbs):
    dbs.source(
        "CREATE TABLE t (n int, code text CONSTRAINT t_code_check CHECK (length(code) > 3)); CREATE INDEX t_n ON t (n);"
    )
    dbs.target(
        "CREATE TABLE t (n text, code text CONSTRAINT t_code_check CHECK (length(code) > 1)); INSERT INTO t VALUES ('1', 'ab');"
    )
    diff = plan(dbs)
    assert not find(diff, '"n" set data type').safe  # text -> int
    index = find(diff, "create index t_n")
    assert not index.safe and "relies on" in index.reason and "set data type" in index.reason
    assert not find(diff, 'drop constraint "t_code_check"').safe
    re_added = find(diff, 'add constraint "t_code_check"')
    assert not re_added.safe and "drop constraint" in re_added.reason


def test_classified_statement_shape(dbs):
    dbs.source("CREATE TABLE t (id int);")
    (only,) = plan(dbs).statements
    assert only.safe and only.required
    assert only.as_dict() == {"sql": only.sql, "reason": "creates table public.t (new, empty)"}
