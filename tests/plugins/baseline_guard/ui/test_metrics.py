"""``/baseline-guard/metrics`` on the page app served for real: Airflow's auth, Prometheus' text format
(parsed by prometheus-client's own parser), values equal to the health JSON and the history's rows."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import httpx
import jwt
import psycopg2
from baseline_guard.ui import token_file
from prometheus_client.parser import text_string_to_metric_families
from ui_page_server import USERS, PageServer

METRICS = "/baseline-guard/metrics"


def scrape(server: PageServer, user: str = "admin") -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(
        server.base + METRICS, headers={"Authorization": f"Bearer {server.token(user)}"}, timeout=60
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_anonymous_and_forged_scrapes_are_refused(page_server: PageServer) -> None:
    r = httpx.get(page_server.base + METRICS, timeout=30)
    assert r.status_code == 401
    assert "baseline_guard" not in r.text
    real = jwt.decode(page_server.token(), options={"verify_signature": False})
    forged = jwt.encode(real, "not-the-secret-" * 5, algorithm="HS512")
    r = httpx.get(page_server.base + METRICS, headers={"Authorization": f"Bearer {forged}"}, timeout=30)
    assert r.status_code == 403 and "baseline_guard" not in r.text


def test_metrics_equal_the_health_json_and_the_history(page_server: PageServer) -> None:
    samples = scrape(page_server, "viewer")
    health = httpx.get(
        page_server.base + "/baseline-guard/api/health",
        headers={"Authorization": f"Bearer {page_server.token()}"},
        timeout=60,
    ).json()
    envs = {e["name"]: e for e in health["environments"]}
    assert set(envs) == {"baseline", "proj-a"}
    for name, env in envs.items():
        assert value(samples, "baseline_guard_environment_failing", environment=name) == (
            env["state"] == "failing"
        )
        for window, w in env["availability"].items():
            got = value(samples, "baseline_guard_availability_ratio", environment=name, window=window)
            assert abs(got - w["availability"]) < 1e-3, (name, window)
        assert value(samples, "baseline_guard_open_incidents", environment=name) == len(env["open_incidents"])
        assert value(samples, "baseline_guard_flaky_scenarios", environment=name) == len(env["flaky"])
        for m in env["modules"]:
            assert value(samples, "baseline_guard_module_failing", environment=name, module=m["name"]) == (
                m["state"] == "failing"
            )
    # baseline fails now (the wrong quote release): since its first failed check
    [outage] = [i for i in envs["baseline"]["open_incidents"] if i["module"] is None]
    since = value(
        samples, "baseline_guard_environment_failing_since_timestamp_seconds", environment="baseline"
    )
    assert since == datetime.fromisoformat(outage["started_at"]).timestamp()
    assert (
        "baseline_guard_environment_failing_since_timestamp_seconds",
        (("environment", "proj-a"),),
    ) not in (samples)
    # the two-hour pricing outage two days ago has recovered: one sample of time to recover, 2 h
    assert (
        value(samples, "baseline_guard_incident_time_to_recover_seconds_count", environment="baseline") == 1
    )
    assert (
        value(samples, "baseline_guard_incident_time_to_recover_seconds_sum", environment="baseline") == 7200
    )
    assert (
        value(
            samples,
            "baseline_guard_incident_time_to_recover_seconds_bucket",
            environment="baseline",
            le="3600.0",
        )
        == 0
    )
    # protection: no backup in the empty bucket (attention), drift read from the sandbox
    assert (
        value(samples, "baseline_guard_protection_available", environment="baseline", slot="last_backup") == 1
    )
    assert (
        value(samples, "baseline_guard_protection_attention", environment="baseline", slot="last_backup") == 1
    )
    drift = envs["baseline"]["protection"]["drift"]
    assert value(samples, "baseline_guard_drift_services", environment="baseline") == len(drift["details"])
    # the page server's Airflow metadata DB is never migrated: sync runs cannot be read, and say so
    assert value(samples, "baseline_guard_sync_runs_readable") == 0


def test_counters_equal_the_rows_of_the_history(page_server: PageServer) -> None:
    samples = scrape(page_server)
    conn = psycopg2.connect(page_server.dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT environment, passed, count(*) FROM check_run GROUP BY 1, 2")
            runs = cur.fetchall()
            cur.execute(
                "SELECT environment, module, interface, count(*) FROM check_result WHERE NOT passed GROUP BY 1, 2, 3"
            )
            failed = cur.fetchall()
    finally:
        conn.close()
    for env, passed, n in runs:
        result = "passed" if passed else "failed"
        assert value(samples, "baseline_guard_check_runs_total", environment=env, result=result) == n
    assert failed, "the fixture's history has failed scenarios"
    for env, module, interface, n in failed:
        got = value(
            samples,
            "baseline_guard_failed_scenarios_total",
            environment=env,
            module=module,
            interface=interface,
        )
        assert got == n
    labels = {dict(k[1]).get("interface") for k in samples if k[0] == "baseline_guard_failed_scenarios_total"}
    assert "POST /quotes" in labels
    assert not any("run_id" in dict(k[1]) for k in samples)


def test_scrapes_within_the_cache_period_read_the_history_once(page_server: PageServer) -> None:
    generated = ("baseline_guard_report_generated_timestamp_seconds", ())
    scrape(page_server)  # an expired snapshot is served as it is and read again in the background
    time.sleep(3)
    snapshots = {scrape(page_server)[generated] for _ in range(3)}
    assert len(snapshots) == 1
    assert time.time() - snapshots.pop() < 35  # the read the first scrape started, not an old one


def test_the_token_file_keeper_signs_in_and_its_token_scrapes(
    page_server: PageServer, tmp_path: Path
) -> None:
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps(USERS))
    out = tmp_path / "metrics-token"
    argv = ["--url", page_server.base, "--username", "viewer", "--passwords-file", str(passwords)]
    assert token_file.main([*argv, "--out", str(out), "--once"]) == 0
    assert out.stat().st_mode & 0o777 == 0o600
    r = httpx.get(
        page_server.base + METRICS, headers={"Authorization": f"Bearer {out.read_text()}"}, timeout=60
    )
    assert r.status_code == 200 and "baseline_guard_environment_failing" in r.text
    passwords.write_text(json.dumps({"viewer": "wrong"}))
    assert token_file.main([*argv, "--out", str(tmp_path / "other"), "--once"]) == 1
    assert not (tmp_path / "other").exists()
