"""Config sync's on-call decisions against the running Airflow: `python -m local_stack up`, driven over REST.

The standalone stack of test_local_stack_airflow.py (``standalone_stack``, conftest.py), whose tests ran
first: this module's releases carry values of their own, so what it asserts is new to the stack. Its
last test stops the stack with SIGTERM. What is proven here, and not in the operator tests, needs the real
scheduler: per-service recording of a HITL answer while another question of the same run stays
unanswered, who may answer (assigned users), a second run proceeding while a question waits, a
response timeout shown as a failed run, and secrets by value absent from every log the stack wrote.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from local_stack_helpers import StackRun, all_gone, secrets_of

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(1500)]  # the first test may include the stack start

DAG = "baseline_config_sync"
NOT_NEEDED = "Not needed for the baseline"
DB_URL = "postgresql://quote:Pg-E2e-S3cret-91@db.test.example:5432/quote"
INNOCENT_TOKEN = "ZmF0LXRva2VuLWUyZS05ODc2NTQzMjEw-QwErTy"


class Stack:
    def __init__(self, run: StackRun, state_dir: Path) -> None:
        self.run, self.state_dir = run, state_dir
        self.airflow = f"http://127.0.0.1:{run.env['BG_AIRFLOW_PORT']}"
        self.env_api = f"http://127.0.0.1:{run.env['BG_ENV_API_PORT']}/v1"
        self.pg_port = int(run.env["BG_PG_PORT"])
        self.secrets = secrets_of(state_dir)

    def guard_state(self) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """The config decision records and open patrol incidents, as the DAGs left them in the guard's database."""
        from baseline_guard.health.dburl import dsn
        from baseline_guard.health.guard_state import ConfigDecisionStore, PatrolIncidentStore, connect

        conn = connect(
            dsn("127.0.0.1", self.pg_port, "postgres", self.secrets["postgres_password"], "baseline_guard")
        )
        try:
            return ConfigDecisionStore(conn).load(), PatrolIncidentStore(conn).load()
        finally:
            conn.close()

    def api(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.secrets['env_api_token']}"}
        return httpx.Client(base_url=self.env_api, headers=headers, timeout=30)

    def airflow_client(self, user: str) -> httpx.Client:
        token = httpx.post(
            f"{self.airflow}/auth/token", json={"username": user, "password": user}, timeout=30
        )
        token.raise_for_status()
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        return httpx.Client(base_url=f"{self.airflow}/api/v2", headers=headers, timeout=30)


@pytest.fixture(scope="module")
def stack(standalone_stack: StackRun) -> Stack:
    return Stack(standalone_stack, standalone_stack.state_dir)


def _trigger(client: httpx.Client, run_id: str, conf: dict[str, Any]) -> str:
    response = client.post(
        f"/dags/{DAG}/dagRuns", json={"logical_date": None, "dag_run_id": run_id, "conf": conf}
    )
    assert response.status_code == 200, response.text
    return run_id


def _wait_run(client: httpx.Client, run_id: str, timeout: float = 600) -> str:
    deadline = time.monotonic() + timeout
    while (state := client.get(f"/dags/{DAG}/dagRuns/{run_id}").json()["state"]) not in ("success", "failed"):
        if time.monotonic() > deadline:
            tis = client.get(f"/dags/{DAG}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
            pytest.fail(
                f"{run_id} still {state}: {[(t['task_id'], t['map_index'], t['state']) for t in tis]}"
            )
        time.sleep(3)
    return state


def _wait_ti(client: httpx.Client, path: str, states: set[str], timeout: float = 400) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (ti := client.get(path).json()).get("state") not in states:
        assert time.monotonic() < deadline, ti
        time.sleep(2)
    return ti


def _records(stack: Stack) -> dict[str, dict[str, Any]]:
    return stack.guard_state()[0]


def test_unpause_and_first_run_records_the_digests(stack: Stack) -> None:
    with stack.airflow_client("admin") as admin:
        deadline = time.monotonic() + 180  # the DAG processor may still be parsing the folder
        while admin.patch(f"/dags/{DAG}", json={"is_paused": False}).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(3)
        assert _wait_run(admin, _trigger(admin, "e2e-first", {})) == "success"
        records = _records(stack)
    assert {"order", "hotel-detail", "quote", "hotel-search"} <= set(records)


def test_unknown_environment_is_refused_before_a_run_exists(stack: Stack) -> None:
    with stack.airflow_client("admin") as admin, stack.airflow_client("ci") as ci:
        before = admin.get(f"/dags/{DAG}/dagRuns").json()["total_entries"]
        response = admin.post(
            f"/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": {"environment": "proj-a"}}
        )
        assert response.status_code == 400, response.text
        assert admin.get(f"/dags/{DAG}/dagRuns").json()["total_entries"] == before  # no run exists
        # config sync is not a CI DAG: the CI account may not trigger it at all
        refused = ci.post(f"/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": {}})
        assert refused.status_code == 403, refused.text


def test_decisions_per_service_assigned_users_pending_holds_nothing_timeout_is_red(stack: Stack) -> None:
    with stack.api() as api:
        for service, prod in (
            ("hotel-detail", {"cdn": "https://cdn2.prod.example"}),
            ("order", {"booking_mail": "smtp4.prod.example"}),
        ):
            # (smtp3 was decided in test_local_stack_airflow.py: a new value is a new change)
            api.post(
                "/releases",
                json={
                    "service": service,
                    "version": "1.0.0" if service == "order" else "1.1.0",
                    "production_config": prod,
                },
            ).raise_for_status()
        api.delete("/notifications").raise_for_status()

    with stack.airflow_client("admin") as admin, stack.airflow_client("ci") as ci:
        run_a = _trigger(admin, "e2e-decisions", {"decision_timeout_minutes": 5})
        base_a = f"/dags/{DAG}/dagRuns/{run_a}/taskInstances/decide"
        for index in (0, 1):
            _wait_ti(admin, f"{base_a}/{index}", {"awaiting_input"})
        subjects = [admin.get(f"{base_a}/{i}/hitlDetails").json()["subject"] for i in (0, 1)]
        assert [s.split(":")[0] for s in subjects] == ["hotel-detail", "order"]
        time.sleep(8)  # AIRFLOW3.md: an answer within ~5 s of entering awaiting input fails the task

        answer = {"chosen_options": [NOT_NEEDED], "params_input": {}}
        assert ci.patch(f"{base_a}/1/hitlDetails", json=answer).status_code == 403  # not on call
        response = admin.patch(f"{base_a}/1/hitlDetails", json=answer)
        assert response.status_code == 200, response.text
        _wait_ti(admin, f"{base_a}/1", {"success"})
        records = _records(stack)
        assert records["order"]["status"] == "decided" and records["order"]["decision"] == NOT_NEEDED
        assert records["order"]["decided_by"] == "admin" and records["order"]["decided_at"]
        assert records["hotel-detail"]["status"] == "asked"  # the other answer did not land on it

        # While hotel-detail's question waits, a new test config is applied by a second run.
        with stack.api() as api:
            api.post(
                "/releases",
                json={
                    "service": "quote",
                    "version": "1.3.0",
                    "test_config": {"pricing_currency": "EUR", "db_url": DB_URL, "fx_source": INNOCENT_TOKEN},
                },
            ).raise_for_status()
        run_b = _trigger(admin, "e2e-while-pending", {})
        assert _wait_run(admin, run_b) == "success"
        not_asked_again = admin.get(f"/dags/{DAG}/dagRuns/{run_b}/taskInstances/decide").json()
        assert not_asked_again["state"] == "skipped", not_asked_again  # mapped over no change
        records = _records(stack)
        assert records["order"]["decision"] == NOT_NEEDED  # kept across the later run's bookkeeping
        xcom_b = admin.get(
            f"/dags/{DAG}/dagRuns/{run_b}/taskInstances/apply_test_configs/xcomEntries/return_value"
        ).text
        assert "quote@1.3.0" in xcom_b

        # hotel-detail's question times out: visible as a failure, not retried, recorded as such.
        assert _wait_run(admin, run_a) == "failed"
        timed_out = admin.get(f"{base_a}/0").json()
        assert timed_out["state"] == "failed" and timed_out["try_number"] == 1
        run_b_ended = admin.get(f"/dags/{DAG}/dagRuns/{run_b}").json()["end_date"]
        assert run_b_ended < timed_out["end_date"]  # the second run finished while the question waited
        records = _records(stack)
        assert records["hotel-detail"]["status"] == "timed_out"
        assert records["order"]["decision"] == NOT_NEEDED
        events = admin.get("/assets/events", params={"source_dag_id": DAG, "limit": 50}).text

    with stack.api() as api:
        oncall = json.dumps(api.get("/notifications", params={"channel": "oncall"}).json())
        quote = api.get("/environments/baseline/services/quote/test-config").json()
        deadline = time.monotonic() + 180  # the DAG processor runs the failure callback after the run ends
        while run_a not in (
            admins := json.dumps(api.get("/notifications", params={"channel": "admins"}).json())
        ):
            assert time.monotonic() < deadline, f"no failure message for {run_a}: {admins}"
            time.sleep(3)
    assert "hotel-detail changed at" in oncall and "order changed at" in oncall
    assert quote["values"]["db_url"] == DB_URL
    for secret in (DB_URL, "Pg-E2e-S3cret-91", INNOCENT_TOKEN):
        assert secret not in xcom_b and secret not in events and secret not in oncall + admins


def _patrol(admin: httpx.Client, run_id: str) -> None:
    response = admin.post("/dags/env_patrol/dagRuns", json={"logical_date": None, "dag_run_id": run_id})
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 400
    while (state := admin.get(f"/dags/env_patrol/dagRuns/{run_id}").json()["state"]) not in (
        "success",
        "failed",
    ):
        assert time.monotonic() < deadline, state
        time.sleep(3)
    assert state == "success"


def _patrol_messages(api: httpx.Client, kind: str, timeout: float = 90) -> list[str]:
    """The patrol's ``kind`` messages about baseline/order#1, once there is one (or after ``timeout``):
    the patrol's success callback sends them after the task's state is recorded, so a run can show
    success a few seconds before its message arrives."""
    deadline = time.monotonic() + timeout
    while True:
        bodies = [
            json.dumps(n["body"]) for n in api.get("/notifications", params={"channel": "admins"}).json()
        ]
        found = [b for b in bodies if f"instance(s) {kind}" in b and "baseline/order#1" in b]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(2)


def test_patrol_tells_once_per_incident_with_its_state_in_the_guard_database(stack: Stack) -> None:
    with stack.api() as api, stack.airflow_client("admin") as admin:
        admin.patch("/dags/env_patrol", json={"is_paused": False}).raise_for_status()
        api.put("/sandbox/services/baseline/order/restart-fails", json={"fails": True}).raise_for_status()
        api.post("/sandbox/instances/baseline/order/1/kill").raise_for_status()
        for run in ("e2e-patrol-1", "e2e-patrol-2"):  # scheduled runs may patrol too: still one message
            _patrol(admin, run)
        incidents = stack.guard_state()[1]
        assert list(incidents) == ["baseline/order#1"]
        assert len(_patrol_messages(api, "down")) == 1

        api.put("/sandbox/services/baseline/order/restart-fails", json={"fails": False}).raise_for_status()
        _patrol(admin, "e2e-patrol-3")
        incidents = stack.guard_state()[1]
        assert incidents == {}
        assert len(_patrol_messages(api, "recovered")) == 1 and len(_patrol_messages(api, "down")) == 1


def test_no_secret_value_in_any_log_the_stack_wrote(stack: Stack) -> None:
    leaks = []
    for root in (stack.state_dir / "airflow" / "logs", stack.state_dir / "logs"):
        for path in root.rglob("*"):
            if path.is_file():
                text = path.read_text(errors="replace")
                leaks += [
                    f"{path}: {s[:12]}…" for s in (DB_URL, "Pg-E2e-S3cret-91", INNOCENT_TOKEN) if s in text
                ]
    assert (stack.state_dir / "airflow" / "logs").is_dir()
    assert leaks == []
    assert "Pg-E2e-S3cret-91" not in stack.run.output


def test_sigterm_stops_everything(stack: Stack) -> None:
    procs = stack.run.processes()
    stack.run.signal(signal.SIGTERM)
    assert stack.run.wait_exit(timeout=120) == 0
    assert all_gone(procs, timeout=30) == []
