"""The main job end to end: `python -m local_stack up` with Airflow, DAGs triggered from CI over REST.

The stack (``standalone_stack``, conftest.py) is shared with test_local_stack_airflow_config_sync.py,
which runs after this module: Airflow takes minutes to start on 2 cores. The tests run in file order;
the last test of that module stops the stack with SIGTERM and checks nothing is left behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg2
import pytest
from local_stack.airflow_env import airflow_env
from local_stack.config import StackConfig
from local_stack.stack import AIRFLOW_COMPONENTS
from local_stack_helpers import StackRun, secrets_of

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(1500)]  # the first test includes the stack start

CI_DAGS = {"business_check", "test_data_backup", "test_data_restore"}  # what the CI role may trigger


class Stack:
    def __init__(self, run: StackRun, state_dir: Path) -> None:
        self.run = run
        self.state_dir = state_dir
        env = run.env
        self.airflow = f"http://127.0.0.1:{env['BG_AIRFLOW_PORT']}"
        self.env_api = f"http://127.0.0.1:{env['BG_ENV_API_PORT']}/v1"
        self.pg_port = int(env["BG_PG_PORT"])
        self.secrets = secrets_of(state_dir)

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.env_api,
            headers={"Authorization": f"Bearer {self.secrets['env_api_token']}"},
            timeout=30,
        )

    def token(self, user: str) -> str:
        """A JWT of the local stack's user ``user`` (its password is its name: README)."""
        token = httpx.post(
            f"{self.airflow}/auth/token", json={"username": user, "password": user}, timeout=30
        )
        token.raise_for_status()
        return token.json()["access_token"]

    def airflow_client(self, user: str = "ci") -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.airflow}/api/v2",
            headers={"Authorization": f"Bearer {self.token(user)}"},
            timeout=30,
        )

    def trigger(
        self, dag_id: str, conf: dict[str, Any], *extra: str, timeout: int = 600, user: str = "ci"
    ) -> tuple[int, str, str]:
        """``baseline-guard-trigger`` as CI runs it: credentials in the environment only (the CI
        account for the CI DAGs, the admin for the others: CI may not trigger those). The conf goes
        in a file (``--conf-file``), as a large one would not fit on a command line."""
        env = {**os.environ, "AIRFLOW_URL": self.airflow, "AIRFLOW_USERNAME": user, "AIRFLOW_PASSWORD": user}
        with tempfile.NamedTemporaryFile("w", suffix=".json") as conf_file:
            conf_file.write(json.dumps(conf))
            conf_file.flush()
            out = subprocess.run(
                [
                    str(Path(sys.executable).parent / "baseline-guard-trigger"),
                    dag_id,
                    "--conf-file",
                    conf_file.name,
                    "--poll",
                    "2",
                    "--timeout",
                    str(timeout),
                    *extra,
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout + 60,
                check=False,
            )
        return out.returncode, out.stdout, out.stderr

    def query(self, database: str, sql: str, *args: object) -> list[tuple]:
        conn = psycopg2.connect(
            host="127.0.0.1",
            port=self.pg_port,
            user="postgres",
            password=self.secrets["postgres_password"],
            dbname=database,
        )
        try:
            with conn, conn.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def scalar(self, database: str, sql: str) -> Any:
        return self.query(database, sql)[0][0]

    def column_names(self, database: str, table: str) -> set[str]:
        sql = "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
        return {r[0] for r in self.query(database, sql, table)}


@pytest.fixture(scope="module")
def stack(standalone_stack: StackRun) -> Stack:
    return Stack(standalone_stack, standalone_stack.state_dir)


def _result(stdout: str) -> dict[str, Any]:
    return json.loads(stdout[stdout.index("{") :])


def _admin_message_with(api: httpx.Client, text: str, timeout: float = 90) -> str:
    """The admins' messages once one holds ``text``: task callbacks send after the task's state is
    recorded, so a run can be finished a few seconds before its message arrives."""
    deadline = time.monotonic() + timeout
    while text not in (sent := json.dumps(api.get("/notifications", params={"channel": "admins"}).json())):
        if time.monotonic() > deadline:
            break
        time.sleep(2)
    return sent


def _poll(found: Any, timeout: float, what: str) -> Any:
    """``found()`` once it is truthy, asked every 3 s for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := found()):
        assert time.monotonic() < deadline, what
        time.sleep(3)
    return value


def _health(stack: Stack) -> dict[str, dict[str, Any]]:
    """The health page's JSON over the running stack, per environment (as the admin)."""
    answer = httpx.get(
        f"{stack.airflow}/baseline-guard/api/health",
        headers={"Authorization": f"Bearer {stack.token('admin')}"},
        timeout=60,
    )
    answer.raise_for_status()
    return {e["name"]: e for e in answer.json()["environments"]}


def _held_schema_approvals(stack: Stack) -> dict[str, dict[str, str]] | None:
    """``{environment: {run_id: since}}`` of the schema approvals the health JSON shows as held; ``None``
    while the baseline's held-approvals slot is not available (read at most once a minute)."""
    environments = _health(stack)
    if environments["baseline"]["protection"]["held_approvals"]["status"] == "not_available":
        return None
    return {
        name: {
            d["run_id"]: d["since"]
            for d in e["protection"]["held_approvals"]["details"]
            if d.get("kind") == "schema"
        }
        for name, e in environments.items()
    }


def test_airflow_is_healthy_and_answers_ci(stack: Stack) -> None:
    base = stack.airflow
    assert f"Airflow UI + REST API  {base}   users: admin/admin (Admin), ci/ci (CI)" in stack.run.output
    for secret in stack.secrets.values():
        assert secret not in stack.run.output
    health = httpx.get(f"{base}/api/v2/monitor/health", timeout=60).json()
    assert {c: health[c]["status"] for c in AIRFLOW_COMPONENTS} == dict.fromkeys(
        AIRFLOW_COMPONENTS, "healthy"
    )
    assert (
        httpx.post(f"{base}/auth/token", json={"username": "ci", "password": "nope"}, timeout=30).status_code
        == 401
    )
    assert httpx.get(f"{base}/api/v2/dags", timeout=30).status_code == 401
    expected = {
        "business_check",
        "baseline_code_sync",
        "baseline_schema_sync",
        "baseline_config_sync",
        "env_patrol",
        "test_data_backup",
        "test_data_restore",
    }
    with stack.airflow_client("admin") as client:
        deadline = time.monotonic() + 180  # the DAG processor may still be parsing the folder
        while not expected <= set(dags := {d["dag_id"]: d for d in client.get("/dags").json()["dags"]}):
            assert time.monotonic() < deadline, sorted(expected - set(dags))
            time.sleep(3)
        errors = client.get("/importErrors").json()
    assert errors["total_entries"] == 0, errors
    assert not any(d["is_paused"] for d in dags.values())


def test_invalid_params_are_refused_before_a_run_exists(stack: Stack) -> None:
    code, _, err = stack.trigger("business_check", {"environment": "Not A Name!"})
    assert code == 2 and "HTTP 400" in err and "environment" in err


def _runs(stack: Stack, dag_id: str) -> list[str]:
    """Ids of the DAG's manual runs (scheduled ones may start at any moment)."""
    with stack.airflow_client("admin") as admin:
        answer = admin.get(f"/dags/{dag_id}/dagRuns", params={"limit": 100, "run_type": "manual"})
        return [r["dag_run_id"] for r in answer.json()["dag_runs"]]


def test_unknown_conf_keys_are_refused_before_a_run_exists(stack: Stack) -> None:
    before = _runs(stack, "test_data_restore")
    typo = {"enviroment": "proj-a", "backup_id": "latest:pre_test"}  # issue 11: restored the baseline
    with stack.airflow_client() as ci:
        answer = ci.post(
            "/dags/test_data_restore/dagRuns",
            json={"logical_date": None, "dag_run_id": "typo-rest", "conf": typo},
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["detail"] == (
            "unknown conf key 'enviroment' for DAG test_data_restore (did you mean 'environment'?); "
            "allowed keys: backup_id, databases, environment"
        )
        assert ci.get("/dags/test_data_restore/dagRuns/typo-rest").status_code == 404
        # every DAG: the keys allowed are the params it declares
        answer = ci.post("/dags/business_check/dagRuns", json={"logical_date": None, "conf": {"env": "x"}})
        assert answer.status_code == 400 and "allowed keys: environment, routing_key, tags" in answer.text
    # the UI's trigger form posts to the same endpoint with the session cookie and a Referer
    form = httpx.post(
        f"{stack.airflow}/api/v2/dags/test_data_restore/dagRuns",
        json={"logical_date": None, "dag_run_id": "typo-ui", "conf": {**typo, "environment": "proj-a"}},
        cookies={"_token": stack.token("admin")},
        headers={"Referer": f"{stack.airflow}/dags/test_data_restore/trigger"},
        timeout=30,
    )
    assert form.status_code == 400 and "unknown conf key 'enviroment'" in form.json()["detail"]
    # nobody unauthenticated learns which params a DAG has: Airflow answers 401 as usual
    stranger = httpx.post(
        f"{stack.airflow}/api/v2/dags/test_data_restore/dagRuns",
        json={"logical_date": None, "conf": typo},
        timeout=30,
    )
    assert stranger.status_code == 401 and "allowed keys" not in stranger.text
    # the trigger script refuses it itself, early, with the same message (exit 2)
    code, out, err = stack.trigger("test_data_restore", typo)
    assert code == 2 and "unknown conf key 'enviroment'" in err and "allowed keys: backup_id" in err, err
    assert "triggered" not in out
    assert _runs(stack, "test_data_restore") == before


def test_oversize_conf_is_refused_with_a_short_message(stack: Stack) -> None:
    before = _runs(stack, "business_check")
    with stack.airflow_client() as ci:
        for conf, expected in [
            ({"environment": "x" * 5000}, "conf.environment is a string of 5000 characters; at most 1024"),
            ({"tags": ["smoke"] * 500}, "conf.tags is an array of 500 items; at most 200"),
            ({"environment": "baseline", "tags": ["x" * 1000] * 30}, "bytes as JSON; at most 16384"),
        ]:
            answer = ci.post("/dags/business_check/dagRuns", json={"logical_date": None, "conf": conf})
            assert answer.status_code == 400 and expected in answer.json()["detail"], answer.text[:300]
        huge = ci.post(
            "/dags/business_check/dagRuns", json={"logical_date": None, "conf": {"k" * 1_000_000: 1}}
        )
        assert huge.status_code == 400 and len(huge.text) < 300, huge.text[:300]
    code, _, err = stack.trigger("test_data_restore", {"environment": "proj-a", "k" * 1_000_000: 1})
    assert code == 2 and "bytes as JSON" in err and len(err) < 1000  # issue 11: 2 MB echoed on stderr
    assert _runs(stack, "business_check") == before


def test_a_trigger_dated_other_than_now_is_refused_before_a_run_exists(stack: Stack) -> None:
    """Issue 20: a caller's dates never date a backup nor make a run that never starts (official client)."""
    import airflow_client.client as ac
    from airflow_client.client.api.dag_run_api import DagRunApi
    from airflow_client.client.exceptions import ApiException
    from airflow_client.client.models.trigger_dag_run_post_body import TriggerDAGRunPostBody

    conf = {"environment": "proj-a", "phase": "pre_test"}
    bodies = {
        "2099-dated backup": (
            {
                "logical_date": datetime(2026, 12, 1, tzinfo=UTC),
                "data_interval_start": datetime(2026, 12, 1, tzinfo=UTC),
                "data_interval_end": datetime(2099, 1, 1, tzinfo=UTC),
            },
            "logical_date 2026-12-01T00:00:00+00:00 is",
        ),
        "run that never starts": ({"logical_date": datetime(2098, 1, 1, tzinfo=UTC)}, "is in the future"),
        "run_after in the past": (
            {"logical_date": None, "run_after": datetime(2020, 1, 1, tzinfo=UTC)},
            "run_after",
        ),
    }
    before = _runs(stack, "test_data_backup")
    config = ac.Configuration(host=stack.airflow, access_token=stack.token("ci"))
    with ac.ApiClient(config) as api:
        for what, (dates, expected) in bodies.items():
            body = TriggerDAGRunPostBody(dag_run_id=f"dated-{len(what)}", conf=conf, **dates)
            with pytest.raises(ApiException) as refused:
                DagRunApi(api).trigger_dag_run("test_data_backup", body)
            detail = json.loads(refused.value.body)["detail"]
            assert refused.value.status == 400 and expected in detail, (what, detail)
            assert 'send "' in detail and "null and the run is dated now" in detail
        # every DAG: a business check dated in the future is refused too
        with pytest.raises(ApiException) as refused:
            DagRunApi(api).trigger_dag_run(
                "business_check",
                TriggerDAGRunPostBody(
                    logical_date=datetime(2098, 1, 1, tzinfo=UTC), conf={"environment": "baseline"}
                ),
            )
        assert refused.value.status == 400 and "in the future" in refused.value.body
        # now (and null) is fine: the run exists
        now = TriggerDAGRunPostBody(
            logical_date=datetime.now(UTC), dag_run_id="dated-now", conf={"environment": "baseline"}
        )
        assert DagRunApi(api).trigger_dag_run("business_check", now).dag_run_id == "dated-now"
    assert _runs(stack, "test_data_backup") == before


def test_business_check_from_ci_passes_on_the_seeded_sandbox(stack: Stack) -> None:
    code, out, err = stack.trigger("business_check", {"environment": "baseline", "tags": ["smoke"]})
    assert code == 0, out + err
    result = _result(out)
    assert result["state"] == "success"
    checks = result["run_business_checks"]
    assert checks["passed"] is True and checks["scenarios"] > 0
    assert httpx.get(checks["report_url"], timeout=30).status_code == 200  # the report the task links to
    assert result["run_business_checks links"]["Business check report"] == checks["report_url"]


def test_a_run_created_behind_the_guard_fails_at_its_first_task(stack: Stack) -> None:
    """Defence in depth: ``airflow dags trigger`` on a scheduler host skips the REST guard; the task
    policy refuses the run's unknown key before any task works, without retrying."""
    env = {**os.environ, **airflow_env(StackConfig.load(stack.state_dir, stack.run.env))}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow",
            "dags",
            "trigger",
            "business_check",
            "--run-id",
            "cli-typo",
            "--conf",
            json.dumps({"enviroment": "proj-a"}),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    path = "/dags/business_check/dagRuns/cli-typo"
    with stack.airflow_client() as ci:
        deadline = time.monotonic() + 300
        while (state := ci.get(path).json()["state"]) not in ("success", "failed"):
            assert time.monotonic() < deadline, state
            time.sleep(3)
        assert state == "failed"
        tis = {t["task_id"]: t for t in ci.get(f"{path}/taskInstances").json()["task_instances"]}
        log = ci.get(
            f"{path}/taskInstances/choose_target/logs/1", headers={"Accept": "application/x-ndjson"}
        ).text
    assert (tis["choose_target"]["state"], tis["choose_target"]["try_number"]) == ("failed", 1)
    assert {tis[t]["state"] for t in ("run_business_checks", "list_also_changed", "check_also_changed")} == {
        "upstream_failed"
    }
    assert "unknown conf key 'enviroment' for DAG business_check" in log
    assert "checking {" not in log  # the task's own code never ran


def test_ci_may_trigger_and_read_the_ci_dags_and_nothing_else(stack: Stack) -> None:
    with stack.airflow_client() as ci:
        created = ci.post(
            "/dags/business_check/dagRuns",
            json={
                "logical_date": None,
                "dag_run_id": "ci-least-privilege",
                "conf": {"environment": "baseline", "tags": ["smoke"]},
            },
        )
        assert created.status_code == 200, created.text
        path = "/dags/business_check/dagRuns/ci-least-privilege"
        deadline = time.monotonic() + 300
        while (state := ci.get(path).json()["state"]) not in ("success", "failed"):
            assert time.monotonic() < deadline, state
            time.sleep(3)
        assert {d["dag_id"] for d in ci.get("/dags").json()["dags"]} == CI_DAGS
        tis = ci.get(f"{path}/taskInstances").json()["task_instances"]
        assert {t["task_id"] for t in tis} == {
            "choose_target",
            "run_business_checks",
            "list_also_changed",
            "check_also_changed",
        }
        other_state = "failed" if state == "success" else "success"
        refused = {
            "delete the DAG": ci.delete("/dags/business_check"),
            "pause it": ci.patch("/dags/business_check", json={"is_paused": True}),
            "set a run's state": ci.patch(path, json={"state": other_state}),
            "clear its tasks": ci.post(
                "/dags/business_check/clearTaskInstances",
                json={"dag_run_id": "ci-least-privilege", "dry_run": False, "only_failed": False},
            ),
            "start a backfill": ci.post(
                "/backfills",
                json={
                    "dag_id": "business_check",
                    "from_date": "2026-01-01T00:00:00Z",
                    "to_date": "2026-01-02T00:00:00Z",
                    "dag_run_conf": {},
                },
            ),
            "read another DAG": ci.get("/dags/baseline_schema_sync"),
            "trigger another DAG": ci.post("/dags/baseline_code_sync/dagRuns", json={"logical_date": None}),
            "read a variable": ci.get("/variables"),
            "read connections": ci.get("/connections"),
        }
    assert {what: r.status_code for what, r in refused.items()} == dict.fromkeys(refused, 403)
    with stack.airflow_client("admin") as admin:  # nothing changed
        assert admin.get("/dags/business_check").json()["is_paused"] is False
        assert admin.get(path).json()["state"] == state
        assert admin.get("/backfills", params={"dag_id": "business_check"}).json()["total_entries"] == 0
        assert "baseline_code_sync" in {d["dag_id"] for d in admin.get("/dags").json()["dags"]}


def test_baseline_health_page_is_mounted_behind_airflow_auth_with_the_recorded_check(stack: Stack) -> None:
    for path in ("/baseline-guard/", "/baseline-guard/api/health"):
        assert httpx.get(stack.airflow + path, timeout=30).status_code == 401, path  # anonymous: refused
    recorded = stack.query(
        "baseline_guard",
        "SELECT trigger, passed, scenarios FROM check_run "
        "WHERE left(run_id, 4) = 'ci__' AND environment = 'baseline'",
    )
    assert recorded and all(t == "ci" and passed and n > 0 for t, passed, n in recorded), recorded
    token = httpx.post(
        f"{stack.airflow}/auth/token", json={"username": "admin", "password": "admin"}, timeout=30
    )
    token = token.json()["access_token"]
    health = httpx.get(
        f"{stack.airflow}/baseline-guard/api/health", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert health.status_code == 200, health.text
    assert "baseline" in {e["name"] for e in health.json()["environments"]}
    page = httpx.get(
        f"{stack.airflow}/baseline-guard/", cookies={"_token": token}, timeout=30
    )  # as the UI sends it
    assert page.status_code == 200 and 'data-environment="baseline"' in page.text
    with stack.airflow_client("admin") as client:
        views = [v for p in client.get("/plugins").json()["plugins"] for v in p["external_views"]]
    assert {"name": "Baseline health", "href": "/baseline-guard/"}.items() <= next(
        v for v in views if v["name"] == "Baseline health"
    ).items()


def _changed_by_scheduled_code_sync(stack: Stack) -> list[str]:
    """The services the scheduled (hourly) code sync runs changed, from their ``reconcile`` XCom."""
    changed: list[str] = []
    with stack.airflow_client("admin") as client:
        runs = client.get("/dags/baseline_code_sync/dagRuns", params={"run_type": "scheduled"}).json()
        for run in runs["dag_runs"]:
            url = f"/dags/baseline_code_sync/dagRuns/{run['dag_run_id']}/taskInstances/reconcile/xcomEntries/return_value"
            entry = client.get(url, params={"deserialize": True})
            if entry.status_code == 200:
                value = entry.json()["value"]
                value = json.loads(value) if isinstance(value, str) else value
                changed += [c["service"] for c in value["changed"]]
    return sorted(changed)


def test_ci_may_not_read_the_baseline_health_page_and_no_answer_is_cached(stack: Stack) -> None:
    """Issue 20: the page shows every environment, held approvals and report links; access.py's CI role
    reads only its own DAGs."""
    for path in ("/baseline-guard/", "/baseline-guard/api/health"):
        ci = httpx.get(
            stack.airflow + path, headers={"Authorization": f"Bearer {stack.token('ci')}"}, timeout=60
        )
        assert ci.status_code == 403 and ci.json() == {
            "detail": "Baseline health shows the results of every Baseline Guard DAG; "
            "this account may not read them all"
        }
        admin = httpx.get(
            stack.airflow + path, headers={"Authorization": f"Bearer {stack.token('admin')}"}, timeout=60
        )
        assert admin.status_code == 200
        for answer in (ci, admin):
            assert {"no-store", "private"} <= {d.strip() for d in answer.headers["cache-control"].split(",")}


def test_a_check_through_a_routing_key_not_the_environments_own_is_refused(stack: Stack) -> None:
    """Issue 20: ``business_check`` with ``routing_key: nope`` was recorded as a passing check."""
    code, out, err = stack.trigger("business_check", {"environment": "baseline", "routing_key": "nope"})
    assert code == 1, out + err
    assert "is reached without a routing key, got 'nope'" in _admin_message_with(stack.api(), "got 'nope'")
    assert stack.query("baseline_guard", "SELECT count(*) FROM check_run WHERE routing_key = 'nope'") == [
        (0,)
    ]


def test_code_sync_brings_the_baseline_to_production_and_triggers_checks(stack: Stack) -> None:
    code, out, err = stack.trigger("baseline_code_sync", {}, user="admin")
    assert code == 0, out + err
    changed = sorted(c["service"] for c in _result(out)["reconcile"]["changed"])
    if not changed:  # the stack was up across the hour: the hourly run synced the baseline first
        changed = _changed_by_scheduled_code_sync(stack)
    assert changed == ["hotel-search", "quote"]
    with stack.api() as api:
        versions = {
            s["name"]: {i["version"] for i in s["instances"]}
            for s in api.get("/environments/baseline/services").json()
        }
        sent = _admin_message_with(api, "2 changed, 0 failed")
    assert versions["hotel-search"] == {"1.1.0"} and versions["quote"] == {"1.2.0"}
    assert "2 changed, 0 failed" in sent  # one message: the summary task's success callback

    with stack.airflow_client() as client:  # the environment_changed asset triggered business_check
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            runs = client.get("/dags/business_check/dagRuns", params={"run_type": "asset_triggered"}).json()
            if any(r["state"] == "success" for r in runs["dag_runs"]):
                break
            time.sleep(3)
        assert [r["state"] for r in runs["dag_runs"]] == ["success"], runs

    code, out, _ = stack.trigger("baseline_code_sync", {}, user="admin")  # nothing left to do
    assert code == 0 and _result(out)["reconcile"] == {"changed": [], "failed": []}


def test_a_release_that_fails_its_health_check_is_rolled_back_and_reported(stack: Stack) -> None:
    with stack.api() as api:
        api.post("/releases", json={"service": "quote", "version": "1.9.1-unhealthy"}).raise_for_status()
        api.delete("/notifications").raise_for_status()
        code, out, _ = stack.trigger("baseline_code_sync", {"health_timeout_s": 8}, user="admin")
        assert code == 1
        result = _result(out)
        assert "rollout" in result["failed_tasks"] and "notify_summary" in result["failed_tasks"]
        assert result["reconcile"]["failed"] == [
            {"service": "quote", "version": "1.9.1-unhealthy", "running": ["1.2.0"]}
        ]
        quote = api.get("/environments/baseline/services/quote").json()
        assert [(i["version"], i["in_rotation"], i["health"]) for i in quote["instances"]] == [
            ("1.2.0", True, "healthy"),
            ("1.2.0", True, "healthy"),
        ]
        sent = _admin_message_with(api, "0 changed, 1 failed")
        assert "0 changed, 1 failed" in sent and "quote" in sent
        # production goes back to the good version, so the hourly runs have nothing to roll back
        api.post("/releases", json={"service": "quote", "version": "1.2.0"}).raise_for_status()


def test_schema_sync_applies_safe_changes_and_waits_for_approval_of_destructive(stack: Stack) -> None:
    assert "legacy_promo_code" in stack.column_names("baseline_quote", "quotes")
    code, out, err = stack.trigger("baseline_schema_sync", {}, "--no-wait", user="admin")
    assert code == 0, err
    our_run = _result(out)["run_id"]
    with stack.airflow_client("admin") as client, stack.airflow_client("ci") as ci:
        # The hourly run created when the DAG was unpaused may hold the approval (one run at a time:
        # ours queues behind it). Answer whichever run asks.
        pending, pending_run, detail = None, "", {}
        deadline = time.monotonic() + 300
        while pending is None:
            assert time.monotonic() < deadline, "no run asked for approval"
            for run in client.get("/dags/baseline_schema_sync/dagRuns").json()["dag_runs"]:
                path = f"/dags/baseline_schema_sync/dagRuns/{run['dag_run_id']}/taskInstances/approve_destructive"
                if client.get(path).json().get("state") in ("deferred", "awaiting_input"):
                    pending, pending_run = path, run["dag_run_id"]
                    detail = client.get(f"{path}/-1/hitlDetails").json()
            time.sleep(2)
        asked = time.monotonic()
        assert 'drop column "legacy_promo_code"' in detail["body"]
        assert detail["assigned_users"] == [{"id": "admin", "name": "admin"}]
        # safe changes are already in; the destructive one waits
        assert "legacy_promo_code" in stack.column_names("baseline_quote", "quotes")
        assert {"latitude", "longitude"} <= stack.column_names("baseline_hotel_search", "hotels")
        # the health page shows it held on the baseline since it was asked, read from Airflow's
        # PostgreSQL metadata DB (the slots are read at most once a minute: wait for a fresh read)
        held = _poll(
            lambda: (h := _held_schema_approvals(stack)) and pending_run in h["baseline"] and h,
            100,
            f"the health JSON never showed {pending_run} held",
        )
        since = datetime.fromisoformat(held["baseline"][pending_run])
        assert since == datetime.fromisoformat(detail["created_at"])  # since it was asked
        assert [name for name, runs in held.items() if runs and name != "baseline"] == []
        # AIRFLOW3.md: an answer within ~5 s of entering awaiting input fails the task
        time.sleep(max(0.0, 8 - (time.monotonic() - asked)))
        # one option per held database (several may be chosen), "Apply to none" the default
        databases = [o for o in detail["options"] if o != "Apply to none"]
        assert databases and detail["multiple"] is True
        refused = ci.patch(
            f"{pending}/-1/hitlDetails", json={"chosen_options": databases, "params_input": {}}
        )
        assert refused.status_code == 403, refused.text  # approvals belong to the admins
        assert client.get(f"{pending}/-1/hitlDetails").json()["response_received"] is False
        answer = client.patch(
            f"{pending}/-1/hitlDetails", json={"chosen_options": databases, "params_input": {}}
        )
        assert answer.status_code == 200, answer.text
        deadline = time.monotonic() + 400
        while (state := client.get(f"/dags/baseline_schema_sync/dagRuns/{our_run}").json()["state"]) not in (
            "success",
            "failed",
        ):
            assert time.monotonic() < deadline
            time.sleep(3)
        assert state == "success"
        approval = client.get(
            f"/dags/baseline_schema_sync/dagRuns/{our_run}/taskInstances/approve_destructive"
        )
        assert approval.json()["state"] in ("success", "skipped")
    assert "legacy_promo_code" not in stack.column_names("baseline_quote", "quotes")
    _poll(
        lambda: (h := _held_schema_approvals(stack)) is not None and pending_run not in h["baseline"],
        100,
        f"the health JSON still shows {pending_run} held after it was answered",
    )


def test_config_sync_applies_test_configs_and_asks_on_call_about_production_only_changes(
    stack: Stack,
) -> None:
    secret = "sekret-e2e-fx-token-4711"
    with stack.api() as api:
        api.post(
            "/releases",
            json={
                "service": "quote",
                "version": "1.3.0",
                "test_config": {"pricing_currency": "EUR", "fx_api_token": secret},
            },
        ).raise_for_status()
        api.post(
            "/releases",
            json={
                "service": "order",
                "version": "1.0.0",
                "production_config": {"booking_mail": "smtp3.prod.example"},
            },
        ).raise_for_status()
        api.delete("/notifications").raise_for_status()
    code, out, err = stack.trigger("baseline_config_sync", {}, "--no-wait", user="admin")
    assert code == 0, err
    run_id = _result(out)["run_id"]
    base = f"/dags/baseline_config_sync/dagRuns/{run_id}/taskInstances"
    with stack.airflow_client("admin") as client:
        deadline = time.monotonic() + 300
        while (ti := client.get(f"{base}/decide/0").json()).get("state") not in (
            "deferred",
            "awaiting_input",
        ):
            assert ti.get("state") not in ("skipped", "upstream_failed", "failed", "success"), ti
            assert time.monotonic() < deadline, ti
            time.sleep(2)
        detail = client.get(f"{base}/decide/0/hitlDetails").json()
        assert detail["subject"].startswith("order:") and "smtp3" not in detail["body"]
        time.sleep(8)  # AIRFLOW3.md: an answer within ~5 s of entering awaiting input fails the task
        with stack.airflow_client("admin") as oncall:  # only the on-call group may answer
            answer = oncall.patch(
                f"{base}/decide/0/hitlDetails",
                json={"chosen_options": ["Not needed for the baseline"], "params_input": {}},
            )
        assert answer.status_code == 200, answer.text
        while (state := client.get(f"/dags/baseline_config_sync/dagRuns/{run_id}").json()["state"]) not in (
            "success",
            "failed",
        ):
            assert time.monotonic() < deadline + 300
            time.sleep(3)
        assert state == "success"
        xcom = client.get(f"{base}/apply_test_configs/xcomEntries/return_value").text
        logs = client.get(
            f"{base}/apply_test_configs/logs/1", headers={"Accept": "application/x-ndjson"}
        ).text
    assert "quote@1.3.0" in xcom and secret not in xcom
    assert "applied test config" in logs and secret not in logs
    recorded = stack.query("baseline_guard", "SELECT decision FROM config_decision WHERE service = 'order'")
    assert recorded == [("Not needed for the baseline",)]
    with stack.api() as api:
        oncall = json.dumps(api.get("/notifications", params={"channel": "oncall"}).json())
        quote = api.get("/environments/baseline/services/quote/test-config").json()
        order = api.get("/environments/baseline/services/order/test-config").json()
    assert "order changed at" in oncall
    assert quote["ref"] == "quote@1.3.0" and quote["values"]["fx_api_token"] == secret
    assert "smtp3.prod.example" not in json.dumps(order)  # production values never reach the baseline


def test_backup_then_restore_from_ci_puts_the_data_back(stack: Stack) -> None:
    code, out, err = stack.trigger(
        "test_data_backup", {"environment": "baseline", "phase": "pre_test", "pipeline_id": "ci-4711"}
    )
    assert code == 0, out + err
    result = _result(out)
    manifest = result["write_manifest"]
    assert manifest["phase"] == "pre_test" and len(manifest["databases"]) == 4
    assert all(len(d["sha256"]) == 64 and d["size"] > 0 for d in manifest["databases"])
    orders_before = stack.scalar("baseline_booking", "SELECT count(*) FROM orders")
    assert orders_before > 0

    stack.query("baseline_booking", "DELETE FROM orders")  # the tests broke the data (payments cascade)
    assert stack.scalar("baseline_booking", "SELECT count(*) FROM orders") == 0
    code, out, err = stack.trigger(
        "test_data_restore",
        {"environment": "baseline", "backup_id": "latest:pre_test", "databases": ["baseline_booking"]},
    )
    assert code == 0, out + err
    restore = _result(out)
    assert restore["verify_restore"]["backup_id"] == manifest["backup_id"]
    assert stack.scalar("baseline_booking", "SELECT count(*) FROM orders") == orders_before
    # its own check recorded the restore as the change it follows, and no event started a second check
    history = (
        "SELECT c.source, c.changes, r.trigger, r.passed FROM environment_change c JOIN check_run r "
        "ON r.dag_id = c.dag_id AND r.run_id = c.run_id WHERE c.run_id = %s AND c.environment = 'baseline'"
    )
    assert stack.query("baseline_guard", history, restore["run_id"]) == [
        ("test_data_restore", [restore["verify_restore"]], "environment_change", True)
    ]
    with stack.airflow_client("admin") as admin:
        published = {
            dag: admin.get("/assets/events", params={"source_dag_id": dag}).json()["total_entries"]
            for dag in ("test_data_restore", "baseline_code_sync")
        }
    assert published["test_data_restore"] == 0 and published["baseline_code_sync"] > 0, published

    with stack.airflow_client() as client:  # the database password never reaches a task log
        logs = client.get(
            f"/dags/test_data_backup/dagRuns/{result['run_id']}/taskInstances/dump_database/logs/1",
            params={"map_index": 0},
            headers={"Accept": "application/x-ndjson"},
        ).text
    assert "dump uploaded" in logs
    assert stack.secrets["postgres_password"] not in logs


def test_bad_test_data_requests_are_refused_clearly(stack: Stack) -> None:
    code, _, err = stack.trigger("test_data_backup", {"environment": "baseline", "phase": "during"})
    assert code == 2 and "HTTP 400" in err  # unknown phase: no run is created
    code, _, err = stack.trigger("test_data_restore", {"environment": "baseline", "backup_id": "yesterday"})
    assert code == 2 and "HTTP 400" in err
    code, _, err = stack.trigger("test_data_restore", {"backup_id": "latest:pre_test"})
    assert code == 2 and "HTTP 400" in err  # the environment to restore must be named: no default

    code, out, _ = stack.trigger("test_data_backup", {"environment": "baseline", "databases": ["no_such_db"]})
    assert code == 1 and _result(out)["failed_tasks"] == ["plan_backup"]
    before = stack.scalar("prod_booking", "SELECT count(*) FROM orders")
    code, out, _ = stack.trigger("test_data_restore", {"environment": "production"})
    assert code == 1 and _result(out)["failed_tasks"] == ["plan_restore"]
    assert stack.scalar("prod_booking", "SELECT count(*) FROM orders") == before


def test_an_environment_managers_deploy_is_checked_with_its_routing_key_and_the_incident_knows_its_cause(
    stack: Stack,
) -> None:
    """An environment manager deploys to a project environment and posts ``environment_changed``
    (docs/health.md): business_check checks that environment through its routing key, tells its owners,
    and the history links the incident to the deploy (time to detect known), on the health page too."""
    name, deployed = "proj-e2e-deploy", [{"service": "hotel-detail", "version": "1.9.2-wrong"}]
    owners = f"json://127.0.0.1:{stack.run.env['BG_ENV_API_PORT']}/v1/notifications/owners-{name}"
    with stack.api() as api:
        api.post(
            "/environments",
            json={"name": name, "services": {"hotel-detail": "1.9.2-wrong"}, "owners_notify_url": owners},
        ).raise_for_status()
        routing_key = api.get(f"/environments/{name}").json()["routing_key"]
        try:
            event = {"environment": name, "source": "env-manager", "changes": deployed}
            with stack.airflow_client("admin") as admin:
                assets = admin.get("/assets", params={"name_pattern": "environment_changed"}).json()
                [asset] = assets["assets"]
                posted = admin.post("/assets/events", json={"asset_id": asset["id"], "extra": event})
                assert posted.status_code == 200, posted.text
            # (the hourly project checks may check it too: this is the check the event started)
            checked = _poll(
                lambda: stack.query(
                    "baseline_guard",
                    "SELECT routing_key, dag_id, passed, failed_modules "
                    "FROM check_run WHERE environment = %s AND trigger = 'environment_change'",
                    name,
                ),
                300,
                "no check followed the event",
            )
            [(key, dag_id, passed, failed_modules)] = checked
            assert (key, dag_id, passed) == (routing_key, "business_check", False)
            assert "catalog" in failed_modules  # (a loaded machine may add a slow answer elsewhere)
            [(change, source, changes, changed_at)] = stack.query(
                "baseline_guard",
                "SELECT id, source, changes, changed_at FROM environment_change WHERE environment = %s",
                name,
            )
            assert (source, changes) == ("env-manager", deployed)
            assert changed_at == datetime.fromisoformat(posted.json()["timestamp"])  # the event's own time
            incidents = stack.query(
                "baseline_guard",
                "SELECT module, cause, detected_at FROM incident WHERE environment = %s ORDER BY module",
                name,
            )
            assert {("", change), ("catalog", change)} <= {(module, cause) for module, cause, _ in incidents}
            assert {cause for _, cause, _ in incidents} == {change}
            detect = (incidents[0][2] - changed_at).total_seconds()  # '' (the environment) sorts first
            assert 0 < detect < 300
            shown = _health(stack)[name]
            assert shown["state"] == "failing" and shown["routing_key"] == routing_key
            [whole] = [i for i in shown["open_incidents"] if i["module"] is None]
            assert whole["cause"]["source"] == "env-manager" and whole["cause"]["changes"] == deployed
            assert whole["time_to_detect_s"] == pytest.approx(detect, abs=0.001)
            told = _poll(
                lambda: api.get("/notifications", params={"channel": f"owners-{name}"}).json(),
                90,
                "the owners were not told",
            )
            assert len(told) == 1 and "catalog" in json.dumps(told[0]), told
            assert name not in json.dumps(api.get("/notifications", params={"channel": "admins"}).json())
        finally:
            api.delete(f"/environments/{name}")


def test_a_rollout_is_deferred_while_an_instance_slow_starts_then_the_run_succeeds(stack: Stack) -> None:
    slow = {"service": "order", "version": "1.9.5-slowstart", "behaviour": "slow_start", "start_delay_s": 20}
    with stack.api() as api:
        api.post("/catalog", json=slow).raise_for_status()
        api.post("/releases", json={"service": "order", "version": slow["version"]}).raise_for_status()
    code, out, err = stack.trigger("baseline_code_sync", {}, "--no-wait", user="admin")
    assert code == 0, out + err
    run = f"/dags/baseline_code_sync/dagRuns/{_result(out)['run_id']}"
    rollout_states: set[str] = set()
    with stack.airflow_client("admin") as client:
        deadline = time.monotonic() + 600
        while (state := client.get(run).json()["state"]) not in ("success", "failed"):
            assert time.monotonic() < deadline, rollout_states
            tis = client.get(f"{run}/taskInstances").json()["task_instances"]
            rollout_states |= {t["state"] for t in tis if t["task_id"] == "rollout"}
            time.sleep(1)
    assert "deferred" in rollout_states  # the worker slot was free while the instance started
    assert state == "success"
    with stack.api() as api:
        order = api.get("/environments/baseline/services/order").json()
    assert [(i["version"], i["in_rotation"]) for i in order["instances"]] == [(slow["version"], True)] * 2
