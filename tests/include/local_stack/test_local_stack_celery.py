"""The Celery mode end to end: `python -m local_stack up --celery`, DAGs driven over REST, faults.

One stack for the module: Redis, two Celery workers (worker-1, worker-2), two schedulers, api-server,
dag-processor and triggerer as separate processes. The tests run in file order: the DAGs first (both
workers alive), then Redis is killed and kept down for 30 s while work is queued and running, then a
worker is killed in the middle of a dump, then a scheduler is killed, and the last test stops the
stack with SIGTERM and checks nothing is left behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import psutil
import psycopg2
import pytest
import redis
from local_stack.airflow_env import AIRFLOW_METADATA_DB
from local_stack.celery_mode import REDIS_CONF, WORKER_QUEUES, redis_answers, redis_server_binary
from local_stack.config import BACKUP_BUCKET
from local_stack.ports import free_port
from local_stack.processes import wait_for
from local_stack.s3 import ACCESS_KEY, REGION, SECRET_KEY
from local_stack.shared_settings import read_env_file
from local_stack_helpers import StackRun, all_gone, secrets_of, stack_env

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(3600)]

WORKERS = {"worker-1", "worker-2"}
PG_TOOL_TASKS = {"dump_database", "restore_database"}
FINISHED = {"success", "failed"}
FILLER_TABLE = "celery_fault_filler"  # big enough that its dump is still streaming when the worker dies
REDIS_DOWN_S = 30


class CeleryStack:
    def __init__(self, run: StackRun, state_dir: Path) -> None:
        self.run = run
        env = run.env
        self.airflow = f"http://127.0.0.1:{env['BG_AIRFLOW_PORT']}"
        self.s3_url = f"http://127.0.0.1:{env['BG_S3_PORT']}"
        self.pg_port = int(env["BG_PG_PORT"])
        self.redis_port = int(env["BG_REDIS_PORT"])
        self.state_dir = state_dir
        self.secrets = secrets_of(state_dir)

    def client(self) -> httpx.Client:
        token = httpx.post(
            f"{self.airflow}/auth/token", json={"username": "admin", "password": "admin"}, timeout=60
        )
        token.raise_for_status()
        return httpx.Client(
            base_url=f"{self.airflow}/api/v2",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=60,
        )

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        run_id = f"celery-e2e-{dag_id}-{uuid.uuid4().hex[:8]}"
        with self.client() as api:
            answer = api.post(
                f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "dag_run_id": run_id, "conf": conf}
            )
        assert answer.status_code == 200, answer.text
        return run_id

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 1200) -> str:
        deadline = time.monotonic() + timeout
        with self.client() as api:
            while (state := api.get(f"/dags/{dag_id}/dagRuns/{run_id}").json()["state"]) not in FINISHED:
                assert time.monotonic() < deadline, f"{dag_id} {run_id} still {state}"
                time.sleep(3)
        return state

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        with self.client() as api:
            answer = api.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        return answer.json()["task_instances"]

    def s3(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def query(self, database: str, sql: str) -> list[tuple]:
        conn = psycopg2.connect(
            host="127.0.0.1",
            port=self.pg_port,
            user="postgres",
            password=self.secrets["postgres_password"],
            dbname=database,
        )
        try:
            with conn, conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def local_stack(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``python -m local_stack ARGS`` against this stack, as an operator runs it in another terminal."""
        return subprocess.run(
            [sys.executable, "-m", "local_stack", "--state-dir", str(self.state_dir), *args],
            env=self.run.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def log(self, name: str) -> Path:
        return self.state_dir / "logs" / f"airflow-{name}.log"

    def airflow_processes(self) -> dict[str, list[psutil.Process]]:
        """``worker-1``, ``scheduler``, ``redis``...: the stack's processes by the part they are (each
        part's own process, the leader of its process group, not its children)."""
        found: dict[str, list[psutil.Process]] = {}
        for proc in self.run.processes():
            try:
                cmd = " ".join(proc.cmdline())  # Celery and the API server retitle themselves
                leader = proc.pid == os.getpgid(proc.pid)
            except (psutil.Error, OSError):
                continue
            worker = re.search(r"--celery-hostname (worker-\d)@", cmd)
            component = re.search(r"airflow (scheduler|dag-processor|triggerer|api_server)\b", cmd)
            if "redis-server" in cmd:
                found.setdefault("redis", []).append(proc)
            elif leader and worker:
                found.setdefault(worker.group(1), []).append(proc)
            elif leader and component:
                found.setdefault(component.group(1).replace("_", "-"), []).append(proc)
        return found


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> Iterator[CeleryStack]:
    state_dir = request.getfixturevalue("module_state_dir")
    run = StackRun(
        state_dir=state_dir, env=stack_env(), args=["--celery", "--airflow-timeout", "1200"]
    ).start()
    try:
        run.wait_ready(1500)
        yield CeleryStack(run, state_dir)
    finally:
        run.stop()


def test_every_part_runs_as_its_own_process_with_the_shared_settings(stack: CeleryStack) -> None:
    out = stack.run.output
    assert "Celery                 broker redis://127.0.0.1:" in out
    assert "workers worker-1, worker-2 (queues default, pgtools), 2 schedulers" in out
    for secret in stack.secrets.values():
        assert secret not in out
    health = httpx.get(f"{stack.airflow}/api/v2/monitor/health", timeout=30).json()
    assert {c: health[c]["status"] for c in ("metadatabase", "scheduler", "triggerer", "dag_processor")} == {
        "metadatabase": "healthy",
        "scheduler": "healthy",
        "triggerer": "healthy",
        "dag_processor": "healthy",
    }
    parts = stack.airflow_processes()
    assert {name: len(procs) for name, procs in parts.items()} == {
        "worker-1": 1,
        "worker-2": 1,
        "scheduler": 2,
        "api-server": 1,
        "dag-processor": 1,
        "triggerer": 1,
        "redis": 1,
    }
    shared = read_env_file()
    for name in ("worker-1", "worker-2", "scheduler", "dag-processor"):
        for proc in parts[name]:
            env = _environment_of_group(stack, proc)
            assert {k: env.get(k) for k in shared} == shared, name
            assert (
                env["AIRFLOW__CELERY__BROKER_URL"] == f"redis://127.0.0.1:{stack.run.env['BG_REDIS_PORT']}/0"
            )
            if name.startswith("worker-"):
                assert env["BASELINE_GUARD_HOSTNAME"] == name


def _environment_of_group(stack: CeleryStack, leader: psutil.Process) -> dict[str, str]:
    """The environment a part runs with. Celery's main process retitles itself, which overwrites
    what /proc shows of its environment: read it from a process of its group that was not retitled."""
    for proc in [leader, *(p for p in stack.run.processes() if _pgid(p) == leader.pid)]:
        try:
            env = proc.environ()
        except psutil.Error:
            continue
        if "AIRFLOW_HOME" in env:
            return env
    raise AssertionError(f"no process of {leader.pid}'s group shows its environment")


def test_backup_restore_checks_and_code_sync_run_on_both_workers(stack: CeleryStack) -> None:
    with stack.client() as api:  # the DAG processor may still be parsing the folder
        deadline = time.monotonic() + 600
        wanted = {"test_data_backup", "test_data_restore", "business_check", "baseline_code_sync"}
        while not wanted <= {d["dag_id"] for d in api.get("/dags", params={"limit": 100}).json()["dags"]}:
            assert time.monotonic() < deadline
            time.sleep(3)
    # the code sync first: business checks during its rollout would see instances mid-deploy
    runs = {"baseline_code_sync": stack.trigger("baseline_code_sync", {})}
    assert stack.wait_run("baseline_code_sync", runs["baseline_code_sync"]) == "success"
    runs["test_data_backup"] = stack.trigger(
        "test_data_backup", {"environment": "baseline", "phase": "pre_test", "pipeline_id": "celery-e2e"}
    )
    runs["business_check"] = stack.trigger("business_check", {"environment": "baseline"})
    assert {dag: stack.wait_run(dag, runs[dag]) for dag in ("test_data_backup", "business_check")} == {
        "test_data_backup": "success",
        "business_check": "success",
    }

    orders = stack.query("baseline_booking", "SELECT count(*) FROM orders")[0][0]
    assert orders > 0
    stack.query("baseline_booking", "DELETE FROM orders")
    runs["test_data_restore"] = stack.trigger(
        "test_data_restore",
        {"environment": "baseline", "backup_id": "latest:pre_test", "databases": ["baseline_booking"]},
    )
    assert stack.wait_run("test_data_restore", runs["test_data_restore"]) == "success"
    assert stack.query("baseline_booking", "SELECT count(*) FROM orders")[0][0] == orders

    ran = [
        (dag, ti)
        for dag, run in runs.items()
        for ti in stack.task_instances(dag, run)
        if ti["state"] == "success"
    ]
    hosts = {ti["hostname"] for _, ti in ran}
    assert hosts == WORKERS, f"tasks ran on {hosts}"
    queues = {(ti["task_id"], ti["queue"]) for _, ti in ran}
    assert {q for task, q in queues if task in PG_TOOL_TASKS} == {"pgtools"}
    assert {q for task, q in queues if task not in PG_TOOL_TASKS} == {"default"}
    assert {ti["task_id"] for _, ti in ran} >= PG_TOOL_TASKS | {"write_manifest", "run_business_checks"}
    dumps = [ti for dag, ti in ran if ti["task_id"] == "dump_database"]
    assert len(dumps) == 4 and all(ti["try_number"] == 1 for ti in dumps)


def _waiting_in_redis(client: redis.Redis) -> int:
    """Task messages in Redis no worker has taken yet (kombu's Redis transport: a list per queue)."""
    return sum(
        client.llen(key) for q in WORKER_QUEUES for key in client.scan_iter(match=f"{q}*", _type="list")
    )


def _messages_left_for_finished_work(stack: CeleryStack, client: redis.Redis) -> list[str]:
    """Messages in Redis (waiting or unacknowledged) whose task instance is no longer queued or
    running: Redis would hand them out again (after the visibility timeout, for unacknowledged ones)."""
    raw = [
        json.loads(m)
        for q in WORKER_QUEUES
        for key in client.scan_iter(match=f"{q}*", _type="list")
        for m in client.lrange(key, 0, -1)
    ]
    raw += [json.loads(entry)[0] for entry in client.hvals("unacked")]
    celery_ids = [message["headers"]["id"] for message in raw]
    if not celery_ids:
        return []
    listed = ", ".join(f"'{celery_id}'" for celery_id in celery_ids)
    tis = stack.query(
        AIRFLOW_METADATA_DB,
        "SELECT external_executor_id, dag_id, run_id, task_id, map_index, state FROM task_instance "
        f"WHERE external_executor_id IN ({listed})",
    )
    in_flight = {row[0] for row in tis if row[5] in ("queued", "running")}
    described = {row[0]: " ".join(map(str, row[1:])) for row in tis}
    return [f"{c}: {described.get(c, 'no task instance')}" for c in celery_ids if c not in in_flight]


def _what_redis_kept(redis_dir: Path) -> tuple[int, int]:
    """What the killed Redis had on disk: (messages waiting in the queues, messages handed to a worker
    and not acknowledged yet), read by a scratch redis-server from a copy of its append-only file."""
    with tempfile.TemporaryDirectory(prefix="bg-redis-kept-") as scratch:
        shutil.copytree(redis_dir, scratch, dirs_exist_ok=True)
        port = free_port()
        server = subprocess.Popen(
            [
                redis_server_binary(),
                str(REDIS_CONF),
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--dir",
                scratch,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(lambda: redis_answers(port), 30, "scratch Redis", alive=lambda: server.poll() is None)
            client = redis.Redis(port=port, socket_timeout=10)
            return _waiting_in_redis(client), client.hlen("unacked")
        finally:
            server.terminate()
            server.wait(timeout=30)


def _log_since(path: Path, offset: int) -> str:
    with path.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


def _log_times(text: str, marker: str) -> list[datetime]:
    """Timestamps of the log lines (structlog: ``2026-11-30T16:48:09.294449Z [info ] ...``) containing marker."""
    return [
        datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00"))
        for line in text.splitlines()
        if marker in line and line[:4].isdigit()
    ]


def test_redis_killed_for_30_s_queued_work_resumes_nothing_lost_or_run_twice(stack: CeleryStack) -> None:
    """``python -m local_stack stop redis --kill`` while tasks run and others wait in Redis, a run
    triggered during the outage, ``start redis`` 30 s later: every run succeeds, every task instance
    ran once (try 1, one delivery), Redis holds nothing to hand out again, no process restarted."""
    before = stack.airflow_processes()
    [old_redis] = before["redis"]
    redis_command = old_redis.cmdline()
    client = redis.Redis(port=stack.redis_port, socket_timeout=10)
    s3, prefix = stack.s3(), "backups/baseline/"
    manifests_before = [k for k in _keys(s3, prefix) if k.endswith("manifest.json")]
    logs = {name: stack.log(name) for name in ("worker-1", "worker-2", "scheduler-1", "scheduler-2")}
    offsets = {name: path.stat().st_size for name, path in logs.items()}
    # twice as many tasks ready at once as the workers have slots (4), for a while: 4 business checks
    # and 4 backups of two databases each (dumps: 4 at once across the DAG's runs)
    runs = {stack.trigger("business_check", {"environment": "baseline"}): "business_check" for _ in range(4)}
    backup = {"environment": "baseline", "phase": "manual", "run_business_check": False}
    pairs = (["baseline_booking", "baseline_quote"], ["baseline_hotel_search", "baseline_hotel_detail"])
    for databases in pairs * 2:
        runs[stack.trigger("test_data_backup", {**backup, "databases": databases})] = "test_data_backup"

    deadline = time.monotonic() + 600
    while _waiting_in_redis(client) < 3:  # still some waiting by the time the stack has killed Redis
        assert time.monotonic() < deadline, "tasks never piled up in Redis"
        time.sleep(0.1)
    stopped = stack.local_stack("stop", "redis", "--kill")
    down_since = time.monotonic()
    assert stopped.returncode == 0, stopped.stderr
    waiting_at_kill, unacked_at_kill = _what_redis_kept(stack.state_dir / "redis")
    assert waiting_at_kill >= 1 and unacked_at_kill >= 1  # work queued in Redis and tasks running
    during = stack.trigger("test_data_backup", {**backup, "databases": ["baseline_quote"]})
    runs[during] = "test_data_backup"  # its first task is sent while Redis is down
    while time.monotonic() - down_since < REDIS_DOWN_S:
        assert not redis_answers(stack.redis_port)  # held down: the stack does not start it
        time.sleep(1)
    started = stack.local_stack("start", "redis")
    back_at = datetime.now(UTC)
    assert started.returncode == 0, started.stderr

    assert {run: stack.wait_run(dag, run, timeout=900) for run, dag in runs.items()} == dict.fromkeys(
        runs, "success"
    )
    done_at = datetime.now(UTC)
    in_runs = ", ".join(f"'{run}'" for run in runs)
    tis = stack.query(
        AIRFLOW_METADATA_DB,
        "SELECT task_id, map_index, state, try_number, external_executor_id, start_date FROM task_instance "
        f"WHERE run_id IN ({in_runs}) AND state IS DISTINCT FROM 'skipped'",
    )
    # checks: choose_target, list_also_changed, run_business_checks (check_also_changed: skipped);
    # backups: plan, dumps (2, 1), manifest, retention, checks_wanted
    assert len(tis) == 4 * 3 + 4 * (1 + 2 + 3) + (1 + 1 + 3)
    assert {(state, tries) for _, _, state, tries, _, _ in tis} == {("success", 1)}
    history = f"SELECT count(*) FROM task_instance_history WHERE run_id IN ({in_runs})"
    assert stack.query(AIRFLOW_METADATA_DB, history) == [(0,)]  # no earlier try of any of them
    text = {name: _log_since(path, offsets[name]) for name, path in logs.items()}
    worker_logs, scheduler_logs = (
        text["worker-1"] + text["worker-2"],
        text["scheduler-1"] + text["scheduler-2"],
    )
    for task_id, map_index, _, _, celery_id, _ in tis:
        # handed to a worker once: a message restored or redelivered after the restart is received again
        received = worker_logs.count(f"Task execute_workload[{celery_id}] received")
        assert received == 1, (task_id, map_index, received)
    assert "Celery Task Timeout Error for Workload" in scheduler_logs  # sends during the outage: retried
    for failed_or_requeued in (
        "Error sending Celery workload",
        "reported that the task instance",
        "Task stuck in queued",
        "Task requeue attempts exceeded",
    ):
        assert failed_or_requeued not in scheduler_logs

    first_start = min(ti[5] for ti in tis if ti[5] > back_at)  # the work waiting in Redis, at least
    reconnected = [
        f"{(t - back_at).total_seconds():.1f}"
        for t in _log_times(worker_logs, "Connected to redis://")
        if t > back_at
    ]
    print(
        f"Redis outage: {waiting_at_kill} task(s) waiting in Redis and {unacked_at_kill} running at the kill, "
        f"down {REDIS_DOWN_S} s; after it was back: workers reconnected after {', '.join(reconnected)} s, "
        f"first task started after {(first_start - back_at).total_seconds():.1f} s, all {len(runs)} runs "
        f"done after {(done_at - back_at).total_seconds():.0f} s"
    )

    # nothing for Redis to hand out again: no message of finished work, queued or unacknowledged
    # (other DAGs' tasks may be in flight; a finished task's message may wait a moment for its ack)
    deadline = time.monotonic() + 120
    while left := _messages_left_for_finished_work(stack, client):
        assert time.monotonic() < deadline, left
        time.sleep(2)

    new_manifests = [
        k for k in _keys(s3, prefix) if k.endswith("manifest.json") and k not in manifests_before
    ]
    assert len(new_manifests) == 5  # one backup per run
    assert _uploads(s3, prefix) == []

    after = stack.airflow_processes()
    assert {n: sorted(p.pid for p in ps) for n, ps in after.items() if n != "redis"} == {
        n: sorted(p.pid for p in ps) for n, ps in before.items() if n != "redis"
    }
    [new_redis] = after["redis"]
    assert new_redis.pid != old_redis.pid and new_redis.cmdline() == redis_command
    out = stack.run.drain()
    assert "Redis stopped on request (SIGKILL, python -m local_stack stop redis)" in out
    assert f"Redis is back on port {stack.redis_port}" in out
    assert "exited" not in out.split("Redis stopped on request", 1)[1]


def _uploads(s3: Any, prefix: str) -> list[dict[str, Any]]:
    return s3.list_multipart_uploads(Bucket=BACKUP_BUCKET, Prefix=prefix).get("Uploads", [])


def _dump_streaming(s3: Any, prefix: str) -> bool:
    """A multipart upload under ``prefix`` has at least one part: the dump is in the middle."""
    return any(
        s3.list_parts(Bucket=BACKUP_BUCKET, Key=u["Key"], UploadId=u["UploadId"]).get("Parts")
        for u in _uploads(s3, prefix)
    )


def test_a_worker_killed_mid_dump_the_dump_is_retried_on_the_other_and_the_backup_made_once(
    stack: CeleryStack,
) -> None:
    stack.query(
        "baseline_hotel_detail",
        f"CREATE TABLE {FILLER_TABLE} AS SELECT g AS id, "
        "(SELECT string_agg(md5(random()::text || g || i), '') FROM generate_series(1, 16) i) AS payload "
        "FROM generate_series(1, 500000) g",
    )
    run_id = stack.trigger(
        "test_data_backup",
        {
            "environment": "baseline",
            "phase": "manual",
            "databases": ["baseline_hotel_detail"],
            "run_business_check": False,
        },
    )
    s3, path = stack.s3(), f"/dags/test_data_backup/dagRuns/{run_id}/taskInstances/dump_database/0"
    prefix = "backups/baseline/"
    with stack.client() as api:
        deadline = time.monotonic() + 900
        while not ((ti := api.get(path).json()).get("state") == "running" and _dump_streaming(s3, prefix)):
            assert ti.get("state") not in ("success", "failed", "up_for_retry"), ti
            assert time.monotonic() < deadline, ti
            time.sleep(0.3)
    victim = ti["hostname"]
    assert victim in WORKERS
    manifests_at_kill = [k for k in _keys(s3, prefix) if k.endswith("manifest.json")]
    [worker] = stack.airflow_processes()[victim]
    group = [p for p in stack.run.processes() if _pgid(p) == worker.pid]
    os.killpg(worker.pid, signal.SIGKILL)  # the worker host is lost: the worker, its pool, the task, pg_dump
    assert all_gone(group, timeout=30) == []

    assert stack.wait_run("test_data_backup", run_id, timeout=1800) == "success"
    survivor = (WORKERS - {victim}).pop()
    with stack.client() as api:
        tries = api.get(f"{path}/tries").json()["task_instances"]
        manifest = api.get(
            f"/dags/test_data_backup/dagRuns/{run_id}/taskInstances/write_manifest/xcomEntries/return_value"
        ).json()["value"]
    assert [(t["try_number"], t["hostname"]) for t in tries] == [(1, victim), (2, survivor)]
    assert tries[-1]["state"] == "success" and tries[-1]["queue"] == "pgtools"
    backup_id = manifest["backup_id"] if isinstance(manifest, dict) else manifest
    keys = _keys(s3, f"{prefix}{backup_id}/")
    assert sorted(k.rsplit("/", 1)[1] for k in keys) == [
        "baseline_hotel_detail.dump",
        "baseline_hotel_detail.dump.json",
        "manifest.json",
    ]
    all_manifests = [k for k in _keys(s3, prefix) if k.endswith("manifest.json")]
    assert len(all_manifests) == len(manifests_at_kill) + 1  # exactly one new backup became visible
    assert f"{prefix}{backup_id}/manifest.json" not in manifests_at_kill  # none while the dump was cut
    assert _uploads(s3, prefix) == []  # apply_retention aborted the killed try's upload
    assert f"Airflow {victim} exited (code -9); the other worker carries on" in stack.run.drain()


def test_a_killed_scheduler_leaves_the_other_scheduling(stack: CeleryStack) -> None:
    schedulers = stack.airflow_processes()["scheduler"]
    assert len(schedulers) == 2
    victim = schedulers[0]
    group = [p for p in stack.run.processes() if _pgid(p) == victim.pid]
    os.killpg(victim.pid, signal.SIGKILL)
    assert all_gone(group, timeout=30) == []
    run_ids = [stack.trigger("business_check", {"environment": "baseline"}) for _ in range(3)]
    assert [stack.wait_run("business_check", r) for r in run_ids] == ["success"] * 3
    assert len(stack.airflow_processes()["scheduler"]) == 1
    assert stack.run.process is not None and stack.run.process.poll() is None  # the stack carries on


def test_sigterm_stops_everything(stack: CeleryStack) -> None:
    procs = stack.run.processes()
    stack.run.signal(signal.SIGTERM)
    assert stack.run.wait_exit(timeout=300) == 0
    assert all_gone(procs, timeout=60) == []


def _keys(s3: Any, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BACKUP_BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _pgid(proc: psutil.Process) -> int | None:
    try:
        return os.getpgid(proc.pid)
    except OSError:
        return None
