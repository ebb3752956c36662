"""The reproductions R1-R12 of issue 10 as (production DDL, baseline DDL), for the engine comparison."""

from __future__ import annotations

REPRODUCTIONS: dict[str, tuple[str, str]] = {
    "R1": (
        "CREATE TABLE t (id int CONSTRAINT t_pkey PRIMARY KEY);",
        "CREATE TABLE t (id int CONSTRAINT old_pkey PRIMARY KEY); INSERT INTO t VALUES (1),(2);",
    ),
    "R2": (
        "CREATE TABLE t (id int CONSTRAINT t_pkey PRIMARY KEY); CREATE TABLE c (t_id int CONSTRAINT c_fk REFERENCES t(id));",
        "CREATE TABLE t (id int CONSTRAINT old_pkey PRIMARY KEY); CREATE TABLE c (t_id int CONSTRAINT c_fk REFERENCES t(id)); INSERT INTO t VALUES (1); INSERT INTO c VALUES (1);",
    ),
    "R3": ("CREATE DOMAIN d AS int CHECK (VALUE > 0); CREATE TABLE t (x d);", ""),
    "R4": (
        "CREATE TABLE p (id int, d date, PRIMARY KEY (id, d)) PARTITION BY RANGE (d); CREATE TABLE p1 PARTITION OF p FOR VALUES FROM ('2022-01-01') TO ('2023-01-01');",
        "",
    ),
    "R5": (
        "CREATE FUNCTION cat(text, text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT $1 || $2'; CREATE AGGREGATE agg(text) (SFUNC = cat, STYPE = text); CREATE TABLE t (s text); CREATE VIEW v AS SELECT agg(s) FROM t;",
        "",
    ),
    "R6": (
        "CREATE TABLE p (id int, d date) PARTITION BY RANGE (d); CREATE TABLE p_1 PARTITION OF p FOR VALUES FROM ('2022-01-01') TO ('2022-02-01');",
        "CREATE TABLE p (id int, d date) PARTITION BY RANGE (d); CREATE TABLE p_1 PARTITION OF p FOR VALUES FROM ('2022-01-01') TO ('2022-02-01'); ALTER TABLE p DETACH PARTITION p_1;",
    ),
    "R7": ("CREATE TABLE t (a int, b int GENERATED ALWAYS AS (a * 2) VIRTUAL);", ""),
    "R8": (
        "CREATE TABLE t (id int, r int); CREATE MATERIALIZED VIEW mv AS SELECT id FROM t; CREATE UNIQUE INDEX mv_uq ON mv (id);",
        "CREATE TABLE t (id int, r bigint); CREATE MATERIALIZED VIEW mv AS SELECT id FROM t; CREATE UNIQUE INDEX mv_uq ON mv (id); INSERT INTO t VALUES (1, 1);",
    ),
    "R9": (
        "CREATE DOMAIN d AS int CONSTRAINT d_check CHECK (VALUE > 0); CREATE TABLE t (x d);",
        "CREATE DOMAIN d AS int CONSTRAINT d_check CHECK (VALUE > 1); CREATE TABLE t (x d); INSERT INTO t VALUES (5);",
    ),
    "R10": (
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 2';",
    ),
    "R11": (
        "CREATE SEQUENCE t_new_seq; CREATE TABLE t (id int PRIMARY KEY DEFAULT nextval('t_new_seq'));",
        "CREATE SEQUENCE t_old_seq; CREATE TABLE t (id int PRIMARY KEY DEFAULT nextval('t_old_seq')); INSERT INTO t DEFAULT VALUES; INSERT INTO t DEFAULT VALUES; INSERT INTO t DEFAULT VALUES;",
    ),
    "R12": (
        "CREATE TABLE t (id int, a int);",
        "CREATE TABLE t (id int, a int); CREATE UNIQUE INDEX t_a_uq ON t (a);",
    ),
}
