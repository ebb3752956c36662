"""SchemaSyncOperator with connections from AIRFLOW_CONN_* against real PostgreSQL."""

from __future__ import annotations

import json
import secrets

import pytest
from baseline_guard.errors import InvalidInput, ProductionWriteRefused
from baseline_guard.operators.schema_sync import SchemaSyncOperator
from local_stack.postgres import LocalPostgres

PRODUCTION_SQL = """
CREATE TABLE hotel (id int PRIMARY KEY, name varchar(120) NOT NULL, stars int DEFAULT 3);
CREATE INDEX hotel_name_idx ON hotel (name);
CREATE TABLE room (id int PRIMARY KEY, hotel_id int NOT NULL REFERENCES hotel (id), price numeric(8, 2));
"""
BASELINE_SQL = """
CREATE TABLE hotel (id int PRIMARY KEY, name varchar(80) NOT NULL, retired_flag boolean);
INSERT INTO hotel VALUES (1, 'Seaside', false);
"""


@pytest.fixture
def conns(postgres: LocalPostgres, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    tag = secrets.token_hex(4)
    names = {"source": f"op_prod_{tag}", "target": f"op_base_{tag}"}
    for role, sql in (("source", PRODUCTION_SQL), ("target", BASELINE_SQL)):
        postgres.create_database(names[role])
        postgres.psql(sql, names[role])
    monkeypatch.setenv(
        "AIRFLOW_CONN_BG_SCHEMA_PROD", json.dumps(postgres.airflow_connection(names["source"]))
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_BG_SCHEMA_BASE", json.dumps(postgres.airflow_connection(names["target"]))
    )
    yield names
    for name in names.values():
        postgres.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')


def _operator(**kwargs: object) -> SchemaSyncOperator:
    return SchemaSyncOperator(
        task_id="schema_sync", source_conn_id="bg_schema_prod", target_conn_id="bg_schema_base", **kwargs
    )


def test_applies_safe_changes_holds_destructive_and_logs_no_password(
    postgres: LocalPostgres,
    conns: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    result = _operator().execute(context={})

    assert result["source_conn_id"] == "bg_schema_prod" and result["target_conn_id"] == "bg_schema_base"
    assert result["held"] == [
        {
            "sql": 'alter table "public"."hotel" drop column "retired_flag";',
            "reason": "drops column public.hotel.retired_flag and its data",
        }
    ]
    assert any("create table" in sql and '"room"' in sql for sql in result["applied"])
    assert any("varchar(120)" in sql or "character varying(120)" in sql for sql in result["applied"])
    rows = postgres.psql(
        "INSERT INTO room VALUES (10, 1, 99.5); SELECT name, stars, retired_flag FROM hotel;", conns["target"]
    )
    assert rows.split() == ["Seaside|3|f"]  # data kept, new column filled by its default, held column kept

    logs = "".join(capsys.readouterr()) + caplog.text
    assert "applied" in logs and "held" in logs and "retired_flag" in logs
    assert postgres.password not in logs

    again = _operator().execute(context={})
    assert again["applied"] == [] and again["held"] == result["held"]


def test_apply_destructive_applies_the_held_statements(
    postgres: LocalPostgres, conns: dict[str, str]
) -> None:
    result = _operator(apply_destructive=True, schemas=["public"]).execute(context={})
    assert result["held"] == []
    assert 'alter table "public"."hotel" drop column "retired_flag";' in result["applied"]
    columns = postgres.psql(
        "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns "
        "WHERE table_name = 'hotel'",
        conns["target"],
    )
    assert columns.strip() == "id,name,stars"


def test_production_target_environment_is_refused_before_any_database_is_contacted(
    postgres: LocalPostgres, conns: dict[str, str], env_api: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    # connections that could not work: a refusal must come before any attempt to use them
    monkeypatch.setenv(
        "AIRFLOW_CONN_BG_SCHEMA_BASE", json.dumps({"conn_type": "postgres", "host": "no.such.host"})
    )
    with pytest.raises(ProductionWriteRefused):
        _operator(target_environment="production").execute(context={})


def test_baseline_target_environment_is_allowed(
    postgres: LocalPostgres, conns: dict[str, str], env_api: object
) -> None:
    result = _operator(target_environment="baseline").execute(context={})
    assert result["applied"]
    assert postgres.psql("SELECT to_regclass('room') IS NOT NULL;", conns["target"]).strip() == "t"


def test_approved_destructive_plan_applies_only_when_unchanged(
    postgres: LocalPostgres, conns: dict[str, str]
) -> None:
    held = [h["sql"] for h in _operator().execute(context={})["held"]]
    assert held, "the fixture must hold something for a person"

    postgres.psql("ALTER TABLE hotel ADD COLUMN legacy_code text;", conns["target"])  # a new drop appears
    with pytest.raises(InvalidInput, match="no longer the ones approved"):
        _operator(apply_destructive=True, expected_destructive=held).execute(context={})
    assert "legacy_code" in postgres.psql(
        "SELECT string_agg(column_name, ',') FROM information_schema.columns WHERE table_name = 'hotel'",
        conns["target"],
    )

    postgres.psql("ALTER TABLE hotel DROP COLUMN legacy_code;", conns["target"])
    result = _operator(apply_destructive=True, expected_destructive=held).execute(context={})
    assert set(held) <= set(result["applied"]) and result["held"] == []


def test_a_refused_statement_is_held_with_its_error_and_residuals_are_returned(
    postgres: LocalPostgres, conns: dict[str, str]
) -> None:
    # production has a unique key the baseline's rows break: PostgreSQL refuses it, the rest applies
    postgres.psql("CREATE UNIQUE INDEX hotel_name_uq ON hotel (name);", conns["source"])
    postgres.psql("INSERT INTO hotel VALUES (2, 'Seaside', true);", conns["target"])

    result = _operator().execute(context={})

    refused = [h for h in result["held"] if "hotel_name_uq" in h["sql"]]
    assert refused and "could not create unique index" in refused[0]["reason"]
    assert any('"room"' in sql for sql in result["applied"])  # the rest applied
    objects = {n["object"] for n in result["not_synced"]}
    assert "index public.hotel_name_uq" in objects and "table public.hotel" in objects
    assert postgres.psql("SELECT to_regclass('room') IS NOT NULL;", conns["target"]).strip() == "t"


def test_approved_apply_is_refused_when_the_statements_are_not_the_ones_whose_digest_was_shown(
    postgres: LocalPostgres, conns: dict[str, str]
) -> None:
    from baseline_guard.schema.review import plan_digest

    held = [h["sql"] for h in _operator().execute(context={})["held"]]
    shown = plan_digest(held)

    with pytest.raises(InvalidInput, match="not the ones approved"):
        _operator(
            apply_destructive=True, expected_destructive=[*held, "DROP TABLE room;"], expected_digest=shown
        ).execute(context={})
    assert postgres.psql("SELECT to_regclass('room') IS NOT NULL;", conns["target"]).strip() == "t"

    result = _operator(apply_destructive=True, expected_destructive=held, expected_digest=shown).execute(
        context={}
    )
    assert set(held) <= set(result["applied"]) and result["held"] == []


def test_only_the_databases_chosen_are_approved() -> None:
    from baseline_guard.operators.schema_sync import APPLY_NONE, approved_plans, held_plans

    summary = {
        "held": [
            {
                "source": f"prod_{n}",
                "target": f"base_{n}",
                "statements": [{"sql": f"DROP TABLE t{n};", "reason": "r"}],
            }
            for n in "ab"
        ]
    }
    plans = held_plans(summary)

    approved, declined = approved_plans(plans, {"chosen_options": ["base_b"]})
    assert [(a["target_conn_id"], a["expected_destructive"]) for a in approved] == [
        ("base_b", ["DROP TABLE tb;"])
    ]
    assert approved[0]["expected_digest"] == plans[1]["plan_digest"]
    assert [d["target_conn_id"] for d in declined] == ["base_a"]
    for answer in ({"chosen_options": [APPLY_NONE, "base_a"]}, {"chosen_options": ["base_zz"]}, None):
        assert approved_plans(plans, answer)[0] == []  # none chosen, or a name not asked about
