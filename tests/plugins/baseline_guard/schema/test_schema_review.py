"""The summary a person reads before approving held DDL, and the digest an approval is bound to."""

from __future__ import annotations

from baseline_guard.schema.review import plan_digest, summarize_held


def _held(*sqls: str, reason: str = "held") -> list[dict[str, str]]:
    return [{"sql": sql, "reason": reason} for sql in sqls]


def test_held_statements_are_counted_by_kind_most_harmful_first_with_objects_named() -> None:
    held = _held(
        'alter table "public"."t" drop column "a";',
        'alter table "public"."t" drop column "b";',
        'drop table "public"."old";',
        'alter table "public"."t" alter column "c" set data type integer using "c"::integer;',
        'alter table "public"."t" drop constraint "t_c_check";',
        'alter table "public"."t" alter column "d" set not null;',
        'drop index if exists "public"."t_idx";',
        'drop view if exists "public"."v";',
    ) + _held(
        'ALTER TABLE "public"."dag" RENAME CONSTRAINT "x" TO "y";',
        reason='PostgreSQL refused it: ERROR:  constraint "x" does not exist',
    )

    lines = [k.line() for k in summarize_held(held)]

    assert lines == [
        "1 tables dropped (every row in them is lost): public.old",
        "2 columns dropped (their values are lost): public.t.a, public.t.b",
        "1 column types changed (values may be rewritten, truncated or refused): public.t.c",
        "1 NOT NULL added (fails if a row holds NULL; inserts without a value are refused): public.t.d",
        "1 constraints dropped (rows they would reject are accepted from now on): public.t.t_c_check",
        "1 indexes dropped (queries using them slow down; a unique one stops refusing duplicates): public.t_idx",
        "1 views dropped or re-created (readers of the view fail while it is re-created): public.v",
        "1 refused by PostgreSQL (or tied to a refused statement) (the plan cannot apply them as they are): "
        'ALTER TABLE "public"."dag" RENAME CONSTRAINT "x" TO "y";',
    ]


def test_many_objects_are_named_up_to_a_limit_then_counted() -> None:
    held = _held(*(f'drop table "public"."t{i:03d}";' for i in range(500)))
    [tables] = summarize_held(held)
    assert tables.count == 500
    assert tables.line().endswith("public.t007 and 492 more")


def test_digest_is_bound_to_the_exact_statements_and_their_order() -> None:
    a, b = "drop table a;", "drop table b;"
    assert plan_digest([a, b]).startswith("sha256:") and len(plan_digest([a, b])) == 7 + 64
    assert plan_digest([a, b]) == plan_digest(iter([a, b]))
    assert plan_digest([a, b]) != plan_digest([b, a])
    assert plan_digest([a + b]) != plan_digest([a, b])  # statement boundaries count
    assert plan_digest([a, b]) != plan_digest([a, b + " "])
