"""A real Prometheus (Debian's binary) scrapes the page app's ``/baseline-guard/metrics`` with the shipped
config (deploy/prometheus/prometheus.yml: its target, token file and scrape interval pointed at this
test) and rules; what its HTTP API answers equals the health JSON of the same moment."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_tools import running_prometheus
from ui_page_server import PageServer

DEPLOY = Path(__file__).resolve().parents[4] / "deploy" / "prometheus"


@pytest.fixture(scope="module")
def prometheus(page_server: PageServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = config["global"]["evaluation_interval"] = "2s"
    config["rule_files"] = [str(DEPLOY / "rules.yml")]
    [job] = config["scrape_configs"]
    job["scrape_timeout"] = "2s"
    (home / "token").write_text(page_server.token("viewer"))
    job["authorization"]["credentials_file"] = str(home / "token")
    job["static_configs"] = [{"targets": [page_server.base.removeprefix("http://")]}]
    (home / "forged").write_text("not-a-token")
    forged = {
        **job,
        "job_name": "baseline_guard_forged",
        "authorization": {"type": "Bearer", "credentials_file": str(home / "forged")},
    }
    config["scrape_configs"].append(forged)
    (home / "prometheus.yml").write_text(yaml.safe_dump(config))
    with running_prometheus(home / "prometheus.yml", home) as base:
        yield base


def query(base: str, promql: str) -> list[dict]:
    r = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=30)
    r.raise_for_status()
    return r.json()["data"]["result"]


def wait_for(base: str, promql: str, timeout: float = 90) -> list[dict]:
    deadline = time.monotonic() + timeout
    while not (found := query(base, promql)):
        assert time.monotonic() < deadline, f"no result for {promql}"
        time.sleep(0.5)
    return found


def by_env(results: list[dict], *labels: str) -> dict[tuple[str, ...], float]:
    return {tuple(r["metric"][k] for k in ("environment", *labels)): float(r["value"][1]) for r in results}


def test_prometheus_scrapes_what_the_health_json_says(page_server: PageServer, prometheus: str) -> None:
    assert wait_for(prometheus, 'up{job="baseline_guard"} == 1')
    wait_for(prometheus, "baseline_guard:failing_for_seconds")  # the recording rules evaluate too
    health = httpx.get(
        page_server.base + "/baseline-guard/api/health",
        headers={"Authorization": f"Bearer {page_server.token()}"},
        timeout=60,
    ).json()
    envs = {e["name"]: e for e in health["environments"]}
    failing = by_env(query(prometheus, "baseline_guard_environment_failing"))
    assert failing == {(n,): float(e["state"] == "failing") for n, e in envs.items()}
    assert failing[("baseline",)] == 1
    availability = by_env(query(prometheus, "baseline_guard_availability_ratio"), "window")
    expected = {(n, w): a["availability"] for n, e in envs.items() for w, a in e["availability"].items()}
    assert availability.keys() == expected.keys()
    for key, value in expected.items():  # the JSON is a few seconds newer than the cached scrape
        assert abs(availability[key] - value) < 1e-3, key
    incidents = by_env(query(prometheus, "baseline_guard_open_incidents"))
    assert incidents == {(n,): float(len(e["open_incidents"])) for n, e in envs.items()}
    modules = by_env(query(prometheus, "baseline_guard_module_failing"), "module")
    assert modules == {
        (n, m["name"]): float(m["state"] == "failing") for n, e in envs.items() for m in e["modules"]
    }
    runs = query(prometheus, 'sum by (environment) (baseline_guard_check_runs_total{result="failed"})')
    assert by_env(runs)[("baseline",)] >= 3  # the two hours of the old outage, the wrong release
    # the baseline fails since its wrong release: under 10 minutes, so nothing fires yet
    assert not query(prometheus, 'ALERTS{alertname="BaselineGuardEnvironmentFailing", alertstate="firing"}')


def test_a_scraper_with_a_forged_token_is_refused(prometheus: str) -> None:
    assert wait_for(prometheus, 'up{job="baseline_guard_forged"} == 0')
    r = httpx.get(f"{prometheus}/api/v1/targets", timeout=30).json()
    [forged] = [t for t in r["data"]["activeTargets"] if t["labels"]["job"] == "baseline_guard_forged"]
    assert "403" in forged["lastError"]
