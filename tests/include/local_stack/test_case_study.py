"""The case study (issue 23) as a topology: generated deterministically, started by the reference
environment with lightweight instances, its 300-scenario suite passing through the real gateway, and
its service databases created from real schema families."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import psycopg2
import pytest
from baseline_guard.checks.loader import load_suites
from baseline_guard.checks.runner import run_checks
from local_stack.case_study import (
    PROJECTS,
    SERVICES,
    CaseStudy,
    create_databases,
    generate,
)
from local_stack.ports import free_port
from local_stack.postgres import LocalPostgres
from reference_env.launcher import ReferenceEnvironment
from reference_env.topology import load_catalog, load_topology


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> CaseStudy:
    return generate(tmp_path_factory.mktemp("case-study"))


def test_the_generator_is_deterministic_and_gives_the_case_studys_size(
    study: CaseStudy, tmp_path: Path
) -> None:
    again = generate(tmp_path / "again")
    files = sorted(p.relative_to(study.directory) for p in study.directory.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again.directory) for p in again.directory.rglob("*") if p.is_file())
    assert all((study.directory / f).read_bytes() == (again.directory / f).read_bytes() for f in files)

    topology = load_topology(study.topology)
    assert len(topology.services) == SERVICES and len({s.module for s in topology.services}) == 40
    assert len(load_catalog(study.catalog, topology)) == SERVICES * 4
    assert len(topology.projects) == PROJECTS and all(2 <= len(p.services) <= 5 for p in topology.projects)
    behind = [s for s in topology.services if s.baseline_version != s.production_version]
    edited = [
        s
        for s in topology.services
        if s.baseline_version == s.production_version and s.baseline_test_config != s.test_config
    ]
    assert 10 <= len(behind) <= 25 and len(edited) == 5  # drift: the syncs have work to do
    assert all(s.test_config and s.production_config for s in topology.services)
    suites = load_suites(study.scenarios)
    scenarios = [sc for suite in suites for sc in suite.scenarios]
    assert len(scenarios) == 300 and len({sc.name for sc in scenarios}) == 300
    assert all(2 <= len(sc.steps) <= 4 for sc in scenarios)
    plans = study.databases()
    assert len(plans) == SERVICES and len({p.family for p in plans}) == 5
    assert 10 <= sum(p.production_version != p.baseline_version for p in plans) <= 45


def test_the_case_study_starts_lists_21_environments_of_200_services_and_its_suite_passes(
    study: CaseStudy, tmp_path: Path
) -> None:
    started = time.monotonic()
    env = ReferenceEnvironment(
        tmp_path / "envapi",
        free_port(),
        free_port(),
        secrets.token_urlsafe(16),
        topology=study.topology,
        catalog=study.catalog,
        lightweight_instances=True,
        startup_timeout=300,
    ).start()
    try:
        start_s = time.monotonic() - started
        api = httpx.Client(
            base_url=f"{env.api_url}/v1", headers={"Authorization": f"Bearer {env.token}"}, timeout=60
        )
        environments = api.get("/environments").json()
        kinds = Counter(e["kind"] for e in environments)
        assert kinds == {
            "production": 1,
            "baseline": 1,
            "project": 20,
        }  # 21 environments + production's record
        by_name = {e["name"]: e for e in environments}
        assert len(by_name["baseline"]["services"]) == len(by_name["production"]["services"]) == SERVICES
        baseline = api.get("/environments/baseline/services").json()
        assert len(baseline) == SERVICES
        # the API answers before every lightweight instance has passed its start delay: wait (bounded)
        deadline = time.monotonic() + 60
        while (
            sum(i["health"] == "healthy" for s in baseline for i in s["instances"]) < 2 * SERVICES
            and time.monotonic() < deadline
        ):
            time.sleep(1)
            baseline = api.get("/environments/baseline/services").json()
        assert sum(i["health"] == "healthy" for s in baseline for i in s["instances"]) == 2 * SERVICES

        # soft routing: a project environment answers its own services itself and the other 195+ from the baseline
        project = by_name["proj-01"]
        own = project["services"][0]
        other = next(s["name"] for s in baseline if s["name"] not in project["services"])
        headers = {"X-Route-Key": project["routing_key"]}
        assert (
            httpx.get(f"{env.gateway_url}/{own}/health", headers=headers)
            .json()["instance"]
            .startswith("proj-01/")
        )
        assert (
            httpx.get(f"{env.gateway_url}/{other}/health", headers=headers)
            .json()["instance"]
            .startswith("baseline/")
        )

        run = run_checks(load_suites(study.scenarios), env.gateway_url, environment="baseline")
        assert len(run.scenarios) == 300 and run.passed, [s.name for s in run.failed_scenarios][:5]
        print(f"case study started in {start_s:.1f} s")
    finally:
        env.stop()


@pytest.fixture
def service_databases(postgres: LocalPostgres, study: CaseStudy) -> Iterator[list]:
    """Three services' plans under names of this test (one per small family, production ahead on one)."""
    tag = secrets.token_hex(3)
    plans = {p.family: p for p in study.databases() if p.family in ("pagila", "optuna", "synthetic")}
    chosen = [
        replace(plans["pagila"], database=f"cs_{tag}_pagila", production_version="4.1.0-drift"),
        replace(plans["optuna"], database=f"cs_{tag}_optuna", production_version="3.1.1"),
        replace(plans["synthetic"], database=f"cs_{tag}_synthetic", production_version="v1"),
    ]
    yield chosen
    for plan in chosen:
        for prefix in ("prod", "baseline"):
            postgres.psql(f'DROP DATABASE IF EXISTS "{prefix}_{plan.database}" WITH (FORCE);')


def _tables(postgres: LocalPostgres, database: str) -> dict[str, set[str]]:
    conn = psycopg2.connect(postgres.uri(database))
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT table_schema || '.' || table_name, column_name FROM information_schema.columns "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            )
            columns: dict[str, set[str]] = {}
            for table, column in cur.fetchall():
                columns.setdefault(table, set()).add(column)
            return columns
    finally:
        conn.close()


def test_service_databases_are_real_schemas_with_production_ahead_where_planned(
    postgres: LocalPostgres, service_databases: list
) -> None:
    times = create_databases(postgres, service_databases)

    assert times.created == 6 and times.kept == 0
    for plan in service_databases:
        prod, base = (
            _tables(postgres, f"prod_{plan.database}"),
            _tables(postgres, f"baseline_{plan.database}"),
        )
        assert len(base) >= 10, (plan.family, len(base))  # tens of tables (views counted as pagila has them)
        assert f"public.{plan.database}_outbox" in base  # each service's schema its own
        if plan.family == "pagila":
            assert (
                "loyalty_points" in prod["public.customer"] - base["public.customer"]
            )  # a few changes ahead
        else:
            assert prod == base
    assert create_databases(postgres, service_databases).kept == 6  # a second start leaves them alone


def test_the_stack_config_remembers_the_scale_and_reaches_all_400_databases(tmp_path: Path) -> None:
    from local_stack.airflow_env import airflow_env
    from local_stack.config import StackConfig

    config = StackConfig.load(tmp_path / "stack", environ={}, scale="case-study")
    generate(config.case_study_dir)

    again = StackConfig.load(tmp_path / "stack", environ={})  # `env`, `status`, `down` name no scale
    env = airflow_env(again)

    assert again.scale == "case-study"
    pg = sorted(k for k in env if k.startswith("AIRFLOW_CONN_PG_"))
    assert len(pg) == 2 * SERVICES and "AIRFLOW_CONN_PG_PROD_PAYMENT_API" in pg
    assert env["BASELINE_GUARD_SCENARIOS_DIR"] == str(config.case_study_dir / "scenarios")
    sandbox = airflow_env(StackConfig.load(tmp_path / "other", environ={}))
    assert "BASELINE_GUARD_SCENARIOS_DIR" not in sandbox
    assert len([k for k in sandbox if k.startswith("AIRFLOW_CONN_PG_")]) == 8
    with pytest.raises(ValueError, match="unknown scale"):
        StackConfig.load(tmp_path / "stack", environ={}, scale="huge")
    with pytest.raises(ValueError, match="holds a case-study stack, not a sandbox one"):
        StackConfig.load(tmp_path / "stack", environ={}, scale="sandbox")
