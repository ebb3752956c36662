"""Applying a plan to a real target: one transaction, safe part only, source never written."""

from __future__ import annotations

import psycopg2
import pytest
from baseline_guard.errors import (
    DatabaseUnreachable,
    InvalidInput,
    ProductionWriteRefused,
    SchemaApplyFailed,
    SchemaSyncError,
)
from baseline_guard.schema import apply_statements, diff_schemas, sync_schema
from baseline_guard.schema.connect import Database
from local_stack.ports import free_port
from sqlalchemy import text
from sqlalchemy.exc import InternalError

SOURCE = """
CREATE TYPE status AS ENUM ('new', 'paid', 'shipped');
CREATE SEQUENCE invoice_no START 1000;
CREATE TABLE customer (id int PRIMARY KEY, email varchar(200) NOT NULL UNIQUE, note text);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customer (id),
    status status NOT NULL DEFAULT 'new',
    total numeric(12, 2) CHECK (total >= 0),
    placed_at timestamptz DEFAULT now()
);
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE VIEW open_orders AS SELECT id, customer_id, status FROM orders WHERE status <> 'shipped';
"""
TARGET = """
CREATE TYPE status AS ENUM ('new', 'shipped');
CREATE TABLE customer (id int PRIMARY KEY, email varchar(100) NOT NULL, legacy_flag boolean);
INSERT INTO customer VALUES (1, 'a@example.com', true), (2, 'b@example.com', false);
"""


def test_sync_applies_the_safe_part_holds_the_rest_and_a_second_run_applies_nothing(dbs):
    dbs.source(SOURCE)
    dbs.target(TARGET)
    source_before = dbs.dump_source()

    first = sync_schema(dbs.source_dsn, dbs.target_dsn, schemas=["public"])

    assert first.applied and all(s.safe for s in first.applied)
    assert [s.sql for s in first.held] == ['alter table "public"."customer" drop column "legacy_flag";']
    # the target now has what production has, data kept, and the held column still there
    rows = dbs.target(
        "INSERT INTO orders (customer_id, total) VALUES (1, 9.5) RETURNING status, id;"
        "SELECT email, legacy_flag FROM customer ORDER BY id;"
        "SELECT to_regclass('invoice_no') IS NOT NULL;"
        "SELECT count(*) FROM open_orders;"
    )
    assert rows.split() == ["new|1", "a@example.com|t", "b@example.com|f", "t", "1"]
    assert dbs.dump_source() == source_before  # production untouched

    second = sync_schema(dbs.source_dsn, dbs.target_dsn, schemas=["public"])
    assert second.applied == []
    assert [s.sql for s in second.held] == [s.sql for s in first.held]


def test_safe_only_differences_make_the_target_dump_equal_the_source_dump(dbs):
    # migradiff does not compare sequence options (START ...): a known limit, see docs/schema-sync.md
    dbs.source(SOURCE.replace(" START 1000", ""))
    dbs.target(
        "CREATE TYPE status AS ENUM ('new', 'paid');"  # gains a value
        "CREATE TABLE customer (id int PRIMARY KEY, email varchar(100) NOT NULL UNIQUE);"  # widened, new column
        "INSERT INTO customer VALUES (1, 'a@example.com');"
    )
    first = sync_schema(dbs.source_dsn, dbs.target_dsn, schemas=["public"])
    assert first.applied and all(s.safe for s in first.applied)
    # the view uses the new enum value: PostgreSQL refuses that in the adding transaction, so the next run
    assert [s.sql.split(" as ")[0] for s in first.held] == ['create or replace view "public"."open_orders"']
    second = sync_schema(dbs.source_dsn, dbs.target_dsn, schemas=["public"])
    assert second.held == [] and second.applied
    assert dbs.dump_target() == dbs.dump_source()
    assert dbs.target("SELECT email FROM customer;").strip() == "a@example.com"  # data kept


def test_apply_destructive_makes_the_target_match_the_source(dbs):
    dbs.source(SOURCE)
    dbs.target(TARGET)
    result = sync_schema(dbs.source_dsn, dbs.target_dsn, apply_destructive=True)
    assert result.held == [] and any(not s.safe for s in result.applied)
    assert diff_schemas(dbs.source_dsn, dbs.target_dsn).statements == []
    assert dbs.target("SELECT count(*) FROM customer;").strip() == "2"


def test_a_statement_postgresql_refuses_is_held_with_its_error_and_the_rest_applies(dbs):
    dbs.source("CREATE TABLE t (id int, code text UNIQUE, added int); CREATE TABLE fresh (id int);")
    dbs.target("CREATE TABLE t (id int, code text); INSERT INTO t VALUES (1, 'dup'), (2, 'dup');")
    plan = diff_schemas(dbs.source_dsn, dbs.target_dsn)
    assert len(plan.safe) >= 4  # create table, add column, unique index, constraint: all "safe"

    result = sync_schema(dbs.source_dsn, dbs.target_dsn)

    held = {" ".join(s.sql.split()): s.reason for s in result.held}
    index = "CREATE UNIQUE INDEX t_code_key ON public.t USING btree (code);"
    assert "PostgreSQL refused it" in held[index] and "could not create unique index" in held[index]
    constraint = next(sql for sql in held if "add constraint" in sql)
    assert "PostgreSQL refused it" in held[constraint] and "t_code_key" in held[constraint]
    assert all(not s.safe for s in result.held)
    # the rest is committed, and nothing of the refused unique key is left half-applied
    assert dbs.target(
        "SELECT to_regclass('fresh') IS NOT NULL, to_regclass('t_code_key') IS NULL;"
        "INSERT INTO t (id, code, added) VALUES (3, 'dup', 7) RETURNING added;"
    ).split() == ["t|t", "7"]
    assert any("t_code_key" in r.object for r in result.not_synced)  # reported as not synced


def test_lock_timeout_bounds_the_wait_and_rolls_everything_back(dbs):
    dbs.source("CREATE TABLE fresh (id int); CREATE TABLE busy (id int, added text);")
    dbs.target("CREATE TABLE busy (id int);")
    before = dbs.dump_target()
    locker = psycopg2.connect(dbs.target_dsn)
    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")  # a long transaction holds the table
            with pytest.raises(SchemaSyncError, match=r"(?i)lock"):
                sync_schema(dbs.source_dsn, dbs.target_dsn, lock_timeout_ms=200)
    finally:
        locker.rollback()
        locker.close()
    assert dbs.dump_target() == before
    assert [s.sql for s in sync_schema(dbs.source_dsn, dbs.target_dsn).applied]  # applies once free


def test_statement_timeout_is_set_for_the_transaction(dbs):
    with pytest.raises(SchemaApplyFailed, match="statement timeout"):
        apply_statements(dbs.target_dsn, ["SELECT pg_sleep(5)"], statement_timeout_ms=100)


def test_held_statements_do_not_break_the_order_of_the_safe_ones(dbs):
    # production re-typed n (text -> int, held) and indexed it; a view and a new table use other columns
    dbs.source(
        "CREATE TABLE t (n int, label text CONSTRAINT t_label_check CHECK (length(label) > 3), extra int);"
        "CREATE INDEX t_n_idx ON t (n); CREATE INDEX t_extra_idx ON t (extra);"
        "CREATE VIEW labels AS SELECT label FROM t; CREATE TABLE other (id int);"
    )
    dbs.target(
        "CREATE TABLE t (n text, label text CONSTRAINT t_label_check CHECK (length(label) > 1));"
        "INSERT INTO t VALUES ('1', 'abcd');"
    )
    result = sync_schema(dbs.source_dsn, dbs.target_dsn)
    held = {" ".join(s.sql.split()): s.reason for s in result.held}
    applied = [" ".join(s.sql.split()) for s in result.applied]
    assert 'alter table "public"."t" alter column "n" set data type integer using "n"::integer;' in held
    assert "relies on" in held["CREATE INDEX t_n_idx ON public.t USING btree (n);"]
    assert any("t_label_check" in sql and "add constraint" in sql for sql in held)
    assert "CREATE INDEX t_extra_idx ON public.t USING btree (extra);" in applied
    assert any("create or replace view" in sql for sql in applied)
    assert dbs.target("SELECT count(*) FROM labels; SELECT to_regclass('other') IS NOT NULL;").split() == [
        "1",
        "t",
    ]


def test_several_schemas_are_planned_together(dbs):
    dbs.source(
        "CREATE SCHEMA billing; CREATE TABLE billing.invoice (id int PRIMARY KEY); CREATE TABLE public.t (id int);"
    )
    dbs.target("CREATE TABLE public.t (id int); CREATE TABLE public.ignored_elsewhere (id int);")
    result = sync_schema(dbs.source_dsn, dbs.target_dsn, schemas=["public", "billing"])
    assert dbs.target("SELECT to_regclass('billing.invoice') IS NOT NULL;").strip() == "t"
    assert [s.sql for s in result.held] == ['drop table "public"."ignored_elsewhere";']


def test_the_source_session_is_read_only(dbs):
    source = Database.parse(dbs.source_dsn, "source")
    with source.connect(read_only=True) as conn, pytest.raises(InternalError, match="read-only transaction"):
        conn.execute(text("CREATE TABLE written_by_sync (id int)"))
    assert dbs.source("SELECT to_regclass('written_by_sync') IS NULL;").strip() == "t"


def test_production_target_is_refused_before_anything_is_touched(dbs):
    dbs.source("CREATE TABLE t (id int);")
    before = dbs.dump_target()
    with pytest.raises(ProductionWriteRefused):
        sync_schema(dbs.source_dsn, dbs.target_dsn, target_kind="production")
    # refused even when the databases are unreachable: nothing was contacted
    dead = f"postgresql://u:p@127.0.0.1:{free_port()}/x"
    with pytest.raises(ProductionWriteRefused):
        sync_schema(dead, dead.replace("/x", "/y"), target_kind="production")
    assert dbs.dump_target() == before


def test_unknown_schema_names_the_source_database(dbs):
    with pytest.raises(
        InvalidInput, match=r"schema\(s\) nope not found in the source database 'schema_src_\d+'"
    ):
        diff_schemas(dbs.source_dsn, dbs.target_dsn, ["public", "nope"])


def test_unreachable_database_is_named_and_the_password_never_shown(dbs, postgres):
    dead = f"postgresql://postgres:s3cret-pw@127.0.0.1:{free_port()}/gone"
    with pytest.raises(
        DatabaseUnreachable, match=r"cannot connect to target database 'gone' at 127\.0\.0\.1"
    ) as err:
        diff_schemas(dbs.source_dsn, dead)
    assert "s3cret-pw" not in str(err.value)

    wrong_password = dbs.source_dsn.replace(postgres.password, "wrong-pw-123")
    with pytest.raises(DatabaseUnreachable, match="source database") as err:
        sync_schema(wrong_password, dbs.target_dsn)
    assert "wrong-pw-123" not in str(err.value) and postgres.password not in str(err.value)
    assert "password authentication failed" in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"schemas": []}, "non-empty list"),
        ({"schemas": "public"}, "non-empty list"),
        ({"lock_timeout_ms": 0}, "lock_timeout_ms must be a positive"),
        ({"statement_timeout_ms": "5s"}, "statement_timeout_ms must be a positive"),
    ],
)
def test_bad_arguments_say_what_was_expected(dbs, kwargs, message):
    dbs.source("CREATE TABLE t (id int);")
    with pytest.raises(InvalidInput, match=message):
        sync_schema(dbs.source_dsn, dbs.target_dsn, **kwargs)
    assert dbs.target("SELECT to_regclass('t') IS NULL;").strip() == "t"


def test_malformed_or_identical_dsns_are_refused(dbs):
    with pytest.raises(InvalidInput, match="source DSN"):
        diff_schemas("host=127.0.0.1 dbname=x", dbs.target_dsn)
    with pytest.raises(InvalidInput, match="target DSN must be postgresql://"):
        diff_schemas(dbs.source_dsn, "mysql://u:p@h/db")
    with pytest.raises(InvalidInput, match="same database"):
        sync_schema(dbs.source_dsn, dbs.source_dsn)


def test_a_new_enum_value_is_used_only_from_the_next_run(dbs):
    # PostgreSQL refuses a value in the transaction that adds it ("unsafe use of new value")
    dbs.source(
        "CREATE TYPE st AS ENUM ('new', 'paid', 'shipped');"
        "CREATE TABLE o (id int, s st DEFAULT 'paid'); CREATE VIEW paid AS SELECT id FROM o WHERE s = 'paid';"
    )
    dbs.target("CREATE TYPE st AS ENUM ('new', 'shipped');")

    first = sync_schema(dbs.source_dsn, dbs.target_dsn)
    assert [s.sql for s in first.applied] == ["alter type \"public\".\"st\" add value 'paid' after 'new';"]
    assert len(first.held) == 2 and all("the next run applies it" in s.reason for s in first.held)

    second = sync_schema(dbs.source_dsn, dbs.target_dsn)
    assert len(second.applied) == 2 and second.held == []
    assert dbs.target("INSERT INTO o (id) VALUES (1); SELECT count(*) FROM paid;").strip() == "1"
