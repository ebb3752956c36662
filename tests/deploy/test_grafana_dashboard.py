"""deploy/grafana/baseline-guard.json: a dashboard Grafana can import. Every query names only metrics the
endpoint exports or recording rules deploy/prometheus/rules.yml records; every panel reads the
datasource variable; ids are unique; one row per environment (a repeated row)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from baseline_guard.health.report import HealthReport
from baseline_guard.health.store import HistoryTotals
from baseline_guard.ui.metrics import MetricsSnapshot, families

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "baseline-guard.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported_names() -> set[str]:
    now = datetime.now(UTC)
    empty = MetricsSnapshot(
        HealthReport(generated_at=now, target=0.99, windows=["24h", "7d", "30d"], environments=[]),
        HistoryTotals(now, [], [], [], {}, [], []),
        [],
    )
    return {f.name + suffix for f in families(empty) for suffix in SUFFIXES[f.type]}


def recorded_names() -> set[str]:
    rules = yaml.safe_load((REPO / "deploy" / "prometheus" / "rules.yml").read_text())
    return {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def all_panels(dashboard: dict) -> list[dict]:
    found = []
    for p in dashboard["panels"]:
        found.append(p)
        found.extend(p.get("panels", []))
    return found


def test_queries_name_only_exported_metrics_and_recorded_rules(dashboard: dict) -> None:
    known = exported_names() | recorded_names()
    queries = [t["expr"] for p in all_panels(dashboard) for t in p.get("targets", [])]
    queries.append(dashboard["templating"]["list"][1]["query"]["query"])
    assert len(queries) > 20
    used = set()
    for expr in queries:
        names = set(re.findall(r"baseline_guard[a-z0-9_:]*", expr))
        assert names, expr
        used |= names
    assert used - known == set()
    assert "baseline_guard_failed_scenarios_total" in used and "baseline_guard:error_ratio:rate1h" in used


def test_every_panel_reads_the_datasource_variable(dashboard: dict) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    for p in all_panels(dashboard):
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}"


def test_ids_are_unique_and_layout_is_sane(dashboard: dict) -> None:
    panels = all_panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        for t in p.get("targets", []):
            assert t["refId"]
        refs = [t["refId"] for t in p.get("targets", [])]
        assert len(refs) == len(set(refs)), p["title"]
    assert dashboard["uid"] and isinstance(dashboard["schemaVersion"], int)


def test_one_row_per_environment(dashboard: dict) -> None:
    [row] = [p for p in dashboard["panels"] if p["type"] == "row" and p.get("repeat")]
    assert row["repeat"] == "environment"
    env = next(v for v in dashboard["templating"]["list"] if v["name"] == "environment")
    assert env["includeAll"] and env["multi"]
    # every panel under the repeated row (before the next row) filters on the row's environment
    start = dashboard["panels"].index(row)
    following = dashboard["panels"][start + 1 :]
    end = next(i for i, p in enumerate(following) if p["type"] == "row")
    for p in following[:end]:
        for t in p["targets"]:
            assert 'environment="$environment"' in t["expr"], p["title"]
