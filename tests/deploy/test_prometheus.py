"""deploy/prometheus/: the shipped config and rules pass Debian's ``promtool`` checks, and the rules'
unit tests (series reproducing each alert's case) pass ``promtool test rules``; a rule with a wrong
threshold fails them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml
from prometheus_tools import binary

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "prometheus"
HERE = Path(__file__).resolve().parent
RULE_TESTS = ("prometheus_rules_test.yml", "prometheus_rules_slow_burn_test.yml")


def promtool(*args: str | Path, cwd: Path = HERE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=240
    )


def test_the_rules_are_valid() -> None:
    r = promtool("check", "rules", DEPLOY / "rules.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_the_shipped_config_is_valid_with_a_token_file(tmp_path: Path) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/baseline-guard/metrics"
    assert job["authorization"]["type"] == "Bearer" and "credentials_file" in job["authorization"]
    (tmp_path / "token").write_text("a-token")
    job["authorization"]["credentials_file"] = str(tmp_path / "token")
    shutil.copy(DEPLOY / "rules.yml", tmp_path / "rules.yml")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    r = promtool("check", "config", tmp_path / "prometheus.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_each_alert_fires_on_its_case_and_not_beside_it() -> None:
    r = promtool("test", "rules", *RULE_TESTS)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("SUCCESS") == len(RULE_TESTS)


def test_every_alert_has_a_case() -> None:
    rules = yaml.safe_load((DEPLOY / "rules.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tested = set()
    for name in RULE_TESTS:
        for case in yaml.safe_load((HERE / name).read_text())["tests"]:
            tested |= {t["alertname"] for t in case.get("alert_rule_test", []) if t["exp_alerts"]}
    assert alerts - tested == {"BaselineGuardMetricsDown"}  # Prometheus' own `up`: the real scrape test


def test_a_wrong_threshold_fails_the_rule_tests(tmp_path: Path) -> None:
    rules = (DEPLOY / "rules.yml").read_text()
    assert "baseline_guard_environment_failing_since_timestamp_seconds > 10 * 60" in rules
    (tmp_path / "deploy" / "prometheus").mkdir(parents=True)
    (tmp_path / "deploy" / "prometheus" / "rules.yml").write_text(
        rules.replace(
            "baseline_guard_environment_failing_since_timestamp_seconds > 10 * 60",
            "baseline_guard_environment_failing_since_timestamp_seconds > 20 * 60",
        )
    )
    (tmp_path / "tests" / "deploy").mkdir(parents=True)
    shutil.copy(HERE / RULE_TESTS[0], tmp_path / "tests" / "deploy")
    r = promtool("test", "rules", RULE_TESTS[0], cwd=tmp_path / "tests" / "deploy")
    assert r.returncode != 0
    assert "BaselineGuardEnvironmentFailing" in r.stdout + r.stderr
