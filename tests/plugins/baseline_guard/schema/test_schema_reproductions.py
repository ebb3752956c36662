"""The reproductions R1-R12 of issue 10, each on real PostgreSQL with data put in before the sync.

Every test: the hourly (safe) run applies or holds each statement with a reason; with what it
held approved, the baseline's schema dump equals production's; a further run plans nothing;
the rows put in before are still there and an insert after the sync works.
"""

from __future__ import annotations

from baseline_guard.schema import ClassifiedStatement, SyncResult, diff_schemas, sync_schema


def one_line(sql: str) -> str:
    return " ".join(sql.split())


def approve_all(dbs, first: SyncResult) -> SyncResult:
    """What an admin's Approve does: apply the plan with exactly the held statements approved."""
    return sync_schema(
        dbs.source_dsn, dbs.target_dsn, apply_destructive=True, approved=[s.sql for s in first.held]
    )


def assert_converged(dbs, result: SyncResult) -> None:
    assert result.held == [], [(s.sql, s.reason) for s in result.held]
    assert result.not_synced == [], [str(r) for r in result.not_synced]
    assert dbs.dump_target() == dbs.dump_source()
    again = diff_schemas(dbs.source_dsn, dbs.target_dsn)
    assert again.statements == [], [s.sql for s in again.statements]  # a second run plans nothing


def test_r1_renamed_primary_key_is_held_whole_not_half_applied(dbs):
    dbs.source("CREATE TABLE t (id int CONSTRAINT t_pkey PRIMARY KEY);")
    dbs.target("CREATE TABLE t (id int CONSTRAINT old_pkey PRIMARY KEY); INSERT INTO t VALUES (1), (2);")

    first = sync_schema(dbs.source_dsn, dbs.target_dsn)

    assert first.applied == []
    reasons = {one_line(s.sql): s.reason for s in first.held}
    add_key = next(sql for sql in reasons if 'add constraint "t_pkey"' in sql)
    assert "multiple primary keys" in reasons[add_key]  # PostgreSQL's own error as the reason
    new_index = "CREATE UNIQUE INDEX t_pkey ON public.t USING btree (id);"
    assert "depends on a statement PostgreSQL refused" in reasons[new_index]
    assert dbs.target("SELECT to_regclass('t_pkey') IS NULL;").strip() == "t"  # not half-applied
    assert {r.object for r in first.not_synced} == {
        "constraint public.t t_pkey",
        "constraint public.t old_pkey",
    }

    assert_converged(dbs, approve_all(dbs, first))
    assert dbs.target("INSERT INTO t VALUES (3); SELECT count(*) FROM t;").strip() == "3"


def test_r2_key_a_foreign_key_relies_on_is_replaced_with_the_foreign_key_dropped_and_re_added(dbs):
    dbs.source(
        "CREATE TABLE t (id int CONSTRAINT t_pkey PRIMARY KEY);"
        "CREATE TABLE c (t_id int CONSTRAINT c_fk REFERENCES t (id));"
    )
    dbs.target(
        "CREATE TABLE t (id int CONSTRAINT old_pkey PRIMARY KEY);"
        "CREATE TABLE c (t_id int CONSTRAINT c_fk REFERENCES t (id));"
        "INSERT INTO t VALUES (1); INSERT INTO c VALUES (1);"
    )
    first = sync_schema(dbs.source_dsn, dbs.target_dsn)
    held = [one_line(s.sql) for s in first.held]
    assert 'ALTER TABLE "public"."c" DROP CONSTRAINT "c_fk";' in held
    assert any(sql.startswith('ALTER TABLE "public"."c" ADD CONSTRAINT "c_fk"') for sql in held)

    assert_converged(dbs, approve_all(dbs, first))
    assert dbs.target("SELECT count(*) FROM c;").strip() == "1"
    assert "violates foreign key constraint" in _error(dbs, "INSERT INTO c VALUES (99);")


def test_r3_domain_created_before_the_table_that_uses_it(dbs):
    dbs.source("CREATE DOMAIN d AS int CHECK (VALUE > 0); CREATE TABLE t (x d);")

    first = sync_schema(dbs.source_dsn, dbs.target_dsn)

    assert first.held == [] and len(first.applied) == 2
    assert_converged(dbs, first)
    assert dbs.target("INSERT INTO t VALUES (5) RETURNING x;").strip() == "5"
    assert "violates check constraint" in _error(dbs, "INSERT INTO t VALUES (0);")


def test_r4_partitioned_table_with_a_primary_key_from_empty(dbs):
    dbs.source(
        "CREATE TABLE p (id int, d date, PRIMARY KEY (id, d)) PARTITION BY RANGE (d);"
        "CREATE TABLE p1 PARTITION OF p FOR VALUES FROM ('2022-01-01') TO ('2023-01-01');"
    )
    first = sync_schema(dbs.source_dsn, dbs.target_dsn)
    assert first.held == []
    assert_converged(dbs, first)
    dbs.target("INSERT INTO p VALUES (1, '2022-05-01');")
    assert "duplicate key" in _error(dbs, "INSERT INTO p VALUES (1, '2022-05-01');")


def test_r5_aggregate_is_synced_so_the_view_using_it_can_be_created(dbs):
    dbs.source(
        "CREATE FUNCTION cat(text, text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT $1 || $2';"
        "CREATE AGGREGATE agg(text) (SFUNC = cat, STYPE = text, INITCOND = '');"
        "CREATE TABLE t (s text); CREATE VIEW v AS SELECT agg(s) FROM t;"
    )
    first = sync_schema(dbs.source_dsn, dbs.target_dsn)
    assert first.held == []
    assert any("CREATE AGGREGATE public.agg(text)" in s.sql for s in first.applied)
    assert_converged(dbs, first)
    assert dbs.target("INSERT INTO t VALUES ('a'), ('b'); SELECT length(agg) FROM v;").strip() == "2"


def test_r6_detached_partition_is_attached_again(dbs):
    both = (
        "CREATE TABLE p (id int, d date) PARTITION BY RANGE (d);"
        "CREATE TABLE p_1 PARTITION OF p FOR VALUES FROM ('2022-01-01') TO ('2022-02-01');"
    )
    dbs.source(both)
    dbs.target(both + "ALTER TABLE p DETACH PARTITION p_1;")

    first = sync_schema(dbs.source_dsn, dbs.target_dsn)  # no AttributeError from the library

    assert [one_line(s.sql) for s in first.applied] == [
        "ALTER TABLE ONLY public.p ATTACH PARTITION public.p_1 FOR VALUES FROM ('2022-01-01') TO ('2022-02-01');"
    ]
    assert_converged(dbs, first)
    assert dbs.target("INSERT INTO p VALUES (1, '2022-01-15'); SELECT count(*) FROM p_1;").strip() == "1"


def test_r6_changed_partition_bound_is_detected_and_held(dbs):
    dbs.source(
        "CREATE TABLE p (id int, d date) PARTITION BY RANGE (d);"
        "CREATE TABLE p_1 PARTITION OF p FOR VALUES FROM ('2022-01-01') TO ('2022-03-01');"
    )
    dbs.target(
        "CREATE TABLE p (id int, d date) PARTITION BY RANGE (d);"
        "CREATE TABLE p_1 PARTITION OF p FOR VALUES FROM ('2022-01-01') TO ('2022-02-01');"
        "INSERT INTO p VALUES (1, '2022-01-10');"
    )
    first = sync_schema(dbs.source_dsn, dbs.target_dsn)
    held = {one_line(s.sql): s.reason for s in first.held}
    assert "detaches a partition" in held['ALTER TABLE "public"."p" DETACH PARTITION "public"."p_1";']
    assert [r.object for r in first.not_synced] == ["table attach public.p_1"]

    assert_converged(dbs, approve_all(dbs, first))
    assert dbs.target("INSERT INTO p VALUES (2, '2022-02-10'); SELECT count(*) FROM p;").strip() == "2"


def test_r7_virtual_generated_column_stays_virtual(dbs):
    dbs.source("CREATE TABLE t (a int, b int GENERATED ALWAYS AS (a * 2) VIRTUAL);")
    first = sync_schema(dbs.source_dsn, dbs.target_dsn)
    assert first.held == []
    assert_converged(dbs, first)
    assert (
        dbs.target(
            "SELECT attgenerated FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'b';"
        ).strip()
        == "v"
    )
    assert dbs.target("INSERT INTO t (a) VALUES (21) RETURNING b;").strip() == "42"


def test_r7_virtual_column_created_as_stored_is_reported_not_synced(dbs):
    dbs.source("CREATE TABLE t (a int, b int GENERATED ALWAYS AS (a * 2) VIRTUAL);")
    dbs.target("CREATE TABLE t (a int, b int GENERATED ALWAYS AS (a * 2) STORED);")
    result = sync_schema(dbs.source_dsn, dbs.target_dsn)
    assert [r.object for r in result.not_synced] == ["table public.t"]  # never silent


def test_r7_integer_sequence_keeps_its_type(dbs):
    dbs.source("CREATE SEQUENCE s AS integer; CREATE SEQUENCE moved AS integer INCREMENT BY 5;")
    dbs.target("CREATE SEQUENCE moved; SELECT nextval('moved');")
    first = sync_schema(dbs.source_dsn, dbs.target_dsn)
    assert first.held == []
    assert_converged(dbs, first)
    assert dbs.target("SELECT nextval('moved');").strip() == "6"  # its current value was kept


def test_r8_materialized_view_is_not_rebuilt_every_run_and_keeps_its_indexes(dbs):
    dbs.source(
        "CREATE TABLE t (id int, r int); CREATE MATERIALIZED VIEW mv AS SELECT id FROM t;"
        "CREATE UNIQUE INDEX mv_uq ON mv (id);"
    )
    dbs.target(
        "CREATE TABLE t (id int, r bigint); CREATE MATERIALIZED VIEW mv AS SELECT id FROM t;"
        "CREATE UNIQUE INDEX mv_uq ON mv (id); INSERT INTO t VALUES (1, 1);"
    )
    oid = dbs.target("SELECT 'mv'::regclass::oid;").strip()
    runs = [sync_schema(dbs.source_dsn, dbs.target_dsn) for _ in range(3)]
    assert all(r.applied == [] for r in runs)  # nothing dropped or re-created while r's change is held
    assert [one_line(s.sql) for s in runs[-1].held] == [
        'alter table "public"."t" alter column "r" set data type integer using "r"::integer;'
    ]
    assert dbs.target("SELECT 'mv'::regclass::oid;").strip() == oid

    assert_converged(dbs, approve_all(dbs, runs[-1]))
    assert dbs.target("SELECT count(*) FROM pg_indexes WHERE tablename = 'mv';").strip() == "1"
    assert dbs.target("INSERT INTO t VALUES (2, 2); SELECT count(*) FROM t;").strip() == "2"


def test_r9_changed_domain_check_is_altered_in_place(dbs):
    dbs.source("CREATE DOMAIN d AS int CONSTRAINT d_check CHECK (VALUE > 0); CREATE TABLE t (x d);")
    dbs.target(
        "CREATE DOMAIN d AS int CONSTRAINT d_check CHECK (VALUE > 1); CREATE TABLE t (x d);"
        "INSERT INTO t VALUES (5);"
    )
    first = sync_schema(dbs.source_dsn, dbs.target_dsn)
    (held,) = first.held
    assert "DROP CONSTRAINT" in held.sql and "drop domain" not in held.sql.lower()

    assert_converged(dbs, approve_all(dbs, first))
    assert dbs.target("INSERT INTO t VALUES (1); SELECT count(*) FROM t;").strip() == "2"


def test_r10_function_body_change_is_applied_and_the_session_setting_is_not_held(dbs):
    dbs.source("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';")
    dbs.target("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 2';")
    first = sync_schema(dbs.source_dsn, dbs.target_dsn)
    assert first.held == []
    assert any(one_line(s.sql) == "set check_function_bodies = off;" for s in first.applied)
    assert_converged(dbs, first)
    assert dbs.target("SELECT f();").strip() == "1"


def test_r10_a_session_setting_does_not_make_an_approval_changed(dbs):
    dbs.source("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'; CREATE TABLE t (id int);")
    dbs.target(
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 2'; CREATE TABLE t (id int, old int);"
    )
    first = sync_schema(dbs.source_dsn, dbs.target_dsn)
    assert [one_line(s.sql) for s in first.held] == ['alter table "public"."t" drop column "old";']
    assert_converged(dbs, approve_all(dbs, first))


def test_r11_default_switched_to_a_fresh_sequence_is_held(dbs):
    dbs.source("CREATE SEQUENCE t_new_seq; CREATE TABLE t (id int PRIMARY KEY DEFAULT nextval('t_new_seq'));")
    dbs.target(
        "CREATE SEQUENCE t_old_seq; CREATE TABLE t (id int PRIMARY KEY DEFAULT nextval('t_old_seq'));"
        "INSERT INTO t DEFAULT VALUES; INSERT INTO t DEFAULT VALUES; INSERT INTO t DEFAULT VALUES;"
    )
    first = sync_schema(dbs.source_dsn, dbs.target_dsn)
    default = next(s for s in first.held if "set default" in s.sql)
    assert "collide" in default.reason
    assert all("set default" not in s.sql for s in first.applied)
    # the insert after the hourly sync still works
    assert dbs.target("INSERT INTO t DEFAULT VALUES RETURNING id;").strip() == "4"


def test_r12_dropping_a_unique_index_is_held_like_dropping_a_unique_constraint(dbs):
    dbs.source("CREATE TABLE t (id int, a int); CREATE INDEX t_id_idx ON t (id);")
    dbs.target(
        "CREATE TABLE t (id int, a int); CREATE UNIQUE INDEX t_a_uq ON t (a); CREATE INDEX t_id_idx ON t (id);"
        "CREATE INDEX t_plain ON t (a); INSERT INTO t VALUES (1, 1);"
    )
    first = sync_schema(dbs.source_dsn, dbs.target_dsn)
    (held,) = first.held
    assert "t_a_uq" in held.sql and "duplicate rows" in held.reason
    assert [one_line(s.sql) for s in first.applied] == ['drop index if exists "public"."t_plain";']
    assert "duplicate key" in _error(dbs, "INSERT INTO t VALUES (2, 1);")

    assert_converged(dbs, approve_all(dbs, first))


# --- objects re-created with dependents (views, materialized views) and enums on partitions ----------

_FUNCTION_RETURNING_BIGINT = (
    "CREATE FUNCTION twice(x int) RETURNS bigint LANGUAGE sql IMMUTABLE AS 'SELECT 2 * x::bigint';"
)
_FUNCTION_RETURNING_INT = "CREATE FUNCTION twice(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 2 * x';"
_VIEWS_ON_TWICE = (
    "CREATE TABLE t (a int); CREATE VIEW v AS SELECT a, twice(a) AS doubled FROM t;"
    "CREATE VIEW v_top AS SELECT max(doubled) AS top FROM v; COMMENT ON VIEW v IS 'doubled values';"
    "GRANT SELECT ON v TO PUBLIC;"
)


def _oid(dbs, relation: str) -> str:
    return dbs.target(f"SELECT '{relation}'::regclass::oid;").strip()


def _converges_and_stays(dbs, first: SyncResult) -> None:
    """Converged after ``first``; a second run plans and applies nothing."""
    assert_converged(dbs, first)
    second = sync_schema(dbs.source_dsn, dbs.target_dsn)
    assert second.applied == [] and second.held == []


def _view_on_changed_function(dbs, source_function: str, target_function: str) -> None:
    dbs.source(source_function + _VIEWS_ON_TWICE)
    dbs.target(target_function + _VIEWS_ON_TWICE + "INSERT INTO t VALUES (1), (20);")

    first = sync_schema(dbs.source_dsn, dbs.target_dsn)

    assert first.held == [], [(s.sql, s.reason) for s in first.held]  # views hold no data: safe
    change = next(s.sql for s in first.applied if "DROP VIEW" in s.sql).splitlines()
    assert change == [
        'DROP VIEW "public"."v_top";',
        'DROP VIEW "public"."v";',
        'DROP FUNCTION "public"."twice"(integer);',
    ]
    _converges_and_stays(dbs, first)
    assert dbs.target("SELECT top FROM v_top;").strip() == "40"
    assert dbs.target("SELECT obj_description('v'::regclass);").strip() == "doubled values"


def test_view_on_a_function_whose_return_type_changed_is_dropped_and_re_created(dbs):
    _view_on_changed_function(dbs, _FUNCTION_RETURNING_BIGINT, _FUNCTION_RETURNING_INT)


def test_view_on_a_function_whose_return_type_changed_back_is_dropped_and_re_created(dbs):
    _view_on_changed_function(dbs, _FUNCTION_RETURNING_INT, _FUNCTION_RETURNING_BIGINT)


_PRODUCT = "CREATE AGGREGATE product(numeric) (SFUNC = numeric_mul, STYPE = numeric, INITCOND = '1'{});"
_MATVIEW_ON_PRODUCT = (
    "CREATE TABLE t (n numeric); CREATE MATERIALIZED VIEW mv AS SELECT product(n) AS p FROM t;"
    "CREATE UNIQUE INDEX mv_p ON mv (p); COMMENT ON MATERIALIZED VIEW mv IS 'product of n';"
)


def _matview_on_changed_aggregate(dbs, source_options: str, target_options: str) -> None:
    dbs.source(_PRODUCT.format(source_options) + _MATVIEW_ON_PRODUCT)
    dbs.target(
        _PRODUCT.format(target_options)
        + _MATVIEW_ON_PRODUCT
        + "INSERT INTO t VALUES (2), (3); REFRESH MATERIALIZED VIEW mv;"
    )
    oid = _oid(dbs, "mv")

    first = sync_schema(dbs.source_dsn, dbs.target_dsn)

    assert first.held == [], [(s.sql, s.reason) for s in first.held]
    rebuilt = next(s for s in first.applied if "CREATE MATERIALIZED VIEW" in s.sql)
    assert "CREATE UNIQUE INDEX mv_p" in rebuilt.sql and "REFRESH MATERIALIZED VIEW" in rebuilt.sql
    assert "costs the query's run" in rebuilt.reason
    assert _oid(dbs, "mv") != oid
    _converges_and_stays(dbs, first)
    assert _oid(dbs, "mv") != oid
    rebuilt_oid = _oid(dbs, "mv")
    sync_schema(dbs.source_dsn, dbs.target_dsn)
    assert _oid(dbs, "mv") == rebuilt_oid  # not re-created again by a later run
    assert dbs.target("SELECT p FROM mv;").strip() == "6"  # filled again: the baseline's was populated
    assert dbs.target("SELECT count(*) FROM pg_indexes WHERE indexname = 'mv_p';").strip() == "1"
    assert dbs.target("SELECT obj_description('mv'::regclass);").strip() == "product of n"


def test_materialized_view_with_an_index_on_a_changed_aggregate_is_rebuilt_once(dbs):
    _matview_on_changed_aggregate(dbs, ", PARALLEL = safe", "")


def test_materialized_view_with_an_index_on_an_aggregate_changed_back_is_rebuilt_once(dbs):
    _matview_on_changed_aggregate(dbs, "", ", PARALLEL = safe")


_ORDERS = (
    "CREATE TABLE o (id int, d date, s st NOT NULL DEFAULT 'new') PARTITION BY RANGE (d);"
    "CREATE TABLE o1 PARTITION OF o FOR VALUES FROM ('2022-01-01') TO ('2023-01-01');"
    "CREATE TABLE o2 PARTITION OF o FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');"
)


def _sync_orders(dbs, source_values: str, target_values: str) -> SyncResult:
    """A partitioned table of enum ``st``: production's values, the baseline's, two rows in."""
    dbs.source(f"CREATE TYPE st AS ENUM ({source_values});" + _ORDERS)
    dbs.target(
        f"CREATE TYPE st AS ENUM ({target_values});"
        + _ORDERS
        + "INSERT INTO o VALUES (1, '2022-05-01', 'paid'), (2, '2023-05-01', 'new');"
    )
    return sync_schema(dbs.source_dsn, dbs.target_dsn)


def test_enum_with_a_removed_value_is_re_cast_on_the_partitioned_parent_only(dbs):
    first = _sync_orders(dbs, "'new', 'paid'", "'new', 'paid', 'gone'")

    held = [one_line(s.sql) for s in first.held]
    assert any("rows holding a removed value" in s.reason for s in first.held)
    assert not any(f'"{p}" alter column s type' in sql for p in ("o1", "o2") for sql in held)
    retype = next(sql for sql in held if '"o" alter column s type' in sql)
    assert '"o1" alter column "s" drop default' in retype and '"o2" alter column "s" set default' in retype

    assert_converged(dbs, approve_all(dbs, first))
    assert dbs.target("SELECT string_agg(s::text, ',' ORDER BY id) FROM o;").strip() == "paid,new"
    assert dbs.target("INSERT INTO o (id, d) VALUES (3, '2023-06-01') RETURNING s;").strip() == "new"


def test_enum_that_gained_a_value_used_by_a_partitioned_table_is_altered_in_place(dbs):
    first = _sync_orders(dbs, "'new', 'paid', 'gone'", "'new', 'paid'")

    assert [one_line(s.sql) for s in first.applied] == [
        "alter type \"public\".\"st\" add value 'gone' after 'paid';"
    ]
    _converges_and_stays(dbs, first)
    assert (
        dbs.target("INSERT INTO o VALUES (3, '2023-05-01', 'gone'); SELECT count(*) FROM o;").strip() == "3"
    )


def _sync_table_on_changed_function(
    dbs, source_function: str, target_function: str, table: str
) -> SyncResult:
    """Production has ``source_function``, the baseline ``target_function``; ``table`` uses it, one row in."""
    dbs.source(source_function + table)
    dbs.target(target_function + table + "INSERT INTO t (id) VALUES (1);")
    return sync_schema(dbs.source_dsn, dbs.target_dsn)


def _change(statements: list) -> ClassifiedStatement:
    return next(s for s in statements if "drop function" in s.sql.lower())


def test_column_default_on_a_function_whose_return_type_changed_is_dropped_and_put_back(dbs):
    first = _sync_table_on_changed_function(
        dbs,
        "CREATE FUNCTION code() RETURNS bigint LANGUAGE sql AS 'SELECT 7::bigint';",
        "CREATE FUNCTION code() RETURNS int LANGUAGE sql AS 'SELECT 7';",
        "CREATE TABLE t (id int, c bigint DEFAULT code());",
    )
    assert first.held == [], [(s.sql, s.reason) for s in first.held]
    assert _change(first.applied).sql.startswith('ALTER TABLE "public"."t" ALTER COLUMN "c" DROP DEFAULT;')
    _converges_and_stays(dbs, first)
    assert (
        dbs.target("INSERT INTO t (id) VALUES (2); SELECT string_agg(c::text, ',') FROM t;").strip() == "7,7"
    )


def test_check_constraint_on_a_function_whose_parameter_changed_is_held_and_put_back_on_approval(dbs):
    first = _sync_table_on_changed_function(
        dbs,
        "CREATE FUNCTION is_small(v int) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT v < 100';",
        "CREATE FUNCTION is_small(x int) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT x < 100';",
        "CREATE TABLE t (id int CONSTRAINT t_small CHECK (is_small(id)));",
    )
    change = _change(first.held)
    assert 'DROP CONSTRAINT "t_small"' in change.sql and "rows it would reject" in change.reason
    assert_converged(dbs, approve_all(dbs, first))
    assert dbs.target("SELECT count(*) FROM t;").strip() == "1"
    assert "violates check constraint" in _error(dbs, "INSERT INTO t VALUES (500);")


def _error(dbs, sql: str) -> str:
    """PostgreSQL's error for ``sql`` on the target (which must fail)."""
    import psycopg2

    conn = psycopg2.connect(dbs.target_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    except psycopg2.Error as exc:
        return str(exc)
    finally:
        conn.rollback()
        conn.close()
    raise AssertionError(f"{sql} succeeded")


def test_not_null_named_after_a_schema_wide_clash_converges(dbs):
    """Airflow's ``dag.bundle_name`` (issue 22): PostgreSQL names its new NOT NULL ``..._not_null1``.

    ``dag_bundle.name`` already holds ``dag_bundle_name_not_null`` in the same schema, so
    ``SET NOT NULL`` on ``dag.bundle_name`` gets ``dag_bundle_name_not_null1``, as in production:
    no rename is due (a rename from the unsuffixed name is refused and held everything on ``dag``).
    """
    dbs.both("CREATE TABLE dag_bundle (name text NOT NULL);")
    dbs.source("CREATE TABLE dag (id int, bundle_name text NOT NULL);")
    dbs.target("CREATE TABLE dag (id int, bundle_name text); INSERT INTO dag VALUES (1, 'b');")
    assert "dag_bundle_name_not_null1" in dbs.dump_source()

    first = sync_schema(dbs.source_dsn, dbs.target_dsn)

    assert not any("RENAME CONSTRAINT" in s.sql for s in first.applied + first.held)
    assert_converged(dbs, approve_all(dbs, first))
    assert dbs.target("SELECT count(*) FROM dag;").strip() == "1"


def test_sequence_widened_to_bigint_converges(dbs):
    """FAB's ``ab_*_seq`` (issue 22): ``AS integer`` in the baseline, bigint (pg_dump omits it) in production."""
    dbs.source("CREATE SEQUENCE s;")
    dbs.target("CREATE SEQUENCE s AS integer; SELECT nextval('s');")

    first = sync_schema(dbs.source_dsn, dbs.target_dsn)

    assert [s.sql for s in first.applied + first.held if "SEQUENCE" in s.sql.upper()]
    assert_converged(dbs, approve_all(dbs, first))
    assert dbs.target("SELECT nextval('s');").strip() == "2"


def test_default_dropped_from_a_not_null_column_is_held(dbs):
    """FAB's ``ab_user_role.id`` (issue 22): production's has no default; dropping the baseline's
    makes every insert that leaves the id out fail, so it waits for a person."""
    dbs.source("CREATE SEQUENCE t_id_seq; CREATE TABLE t (id int NOT NULL, v text);")
    dbs.target(
        "CREATE SEQUENCE t_id_seq; CREATE TABLE t (id int NOT NULL DEFAULT nextval('t_id_seq'), v text);"
        "INSERT INTO t (v) VALUES ('a');"
    )

    first = sync_schema(dbs.source_dsn, dbs.target_dsn)

    [held] = first.held
    assert "drop default" in held.sql.lower() and "inserts that leave it out are refused" in held.reason
    assert dbs.target("INSERT INTO t (v) VALUES ('b'); SELECT count(*) FROM t;").strip() == "2"
    assert_converged(dbs, approve_all(dbs, first))


def test_types_postgres_has_no_cast_for_are_converted(dbs):
    """Airflow 3's ``xcom.value`` bytea -> jsonb and ``deadline_alert.interval`` double -> json (issue 22)."""
    dbs.source("CREATE TABLE x (value jsonb, interval json, note bytea);")
    dbs.target(
        "CREATE TABLE x (value bytea, interval double precision, note text);"
        "INSERT INTO x VALUES (convert_to('{\"a\": 1}', 'UTF8'), 2.5, 'hi');"
    )

    first = sync_schema(dbs.source_dsn, dbs.target_dsn)
    assert_converged(dbs, approve_all(dbs, first))

    assert (
        dbs.target("SELECT value->>'a', interval::text, convert_from(note, 'UTF8') FROM x;").strip()
        == "1|2.5|hi"
    )
