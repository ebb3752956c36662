"""The whole local stack in one process tree: PostgreSQL (seeded), S3 (moto), the reference environment
API with its sandbox, and Airflow: standalone (default), or in the Celery mode Redis plus each Airflow
component as its own process with two Celery workers (``local_stack.celery_mode``). Started in that
order, stopped in the reverse order."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from local_stack.airflow_env import (
    AIRFLOW_METADATA_DB,
    HISTORY_DB,
    airflow_env,
    service_databases,
    write_airflow_passwords,
)
from local_stack.celery_mode import (
    CeleryAirflow,
    CeleryModeError,
    redis_answers,
    request_redis_stop,
    withdraw_redis_stop_request,
)
from local_stack.config import AIRFLOW_USERS, BACKUP_BUCKET, CELERY_ONLY_PORT_VARS, StackConfig, write_private
from local_stack.postgres import LocalPostgres
from local_stack.processes import (
    ManagedProcess,
    TreeMemory,
    kill_recorded,
    port_answers,
    port_is_free,
    record_tree,
    tree_memory,
    wait_for,
)
from local_stack.s3 import ACCESS_KEY, REGION, SECRET_KEY
from local_stack.seed import SERVICE_DATABASES, seed_all
from local_stack.standalone_gate import GATE_ENV, PASSWORDS_ENV, access_args, fab_perms_marker

if TYPE_CHECKING:
    from reference_env.launcher import ReferenceEnvironment

AIRFLOW_COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
READY_BANNER = "Baseline Guard local stack is up"
RECORD_EVERY_S = 10.0


class StackError(RuntimeError):
    """The local stack cannot start (the message says why and what to change)."""


class StopRequested(Exception):
    """SIGINT or SIGTERM arrived."""


@dataclass
class Running:
    """What ``stack.pid`` says about a running ``up`` process."""

    pid: int
    create_time: float
    celery: bool = False  # started with --celery (it runs Redis)

    def is_alive(self) -> bool:
        try:
            return abs(psutil.Process(self.pid).create_time() - self.create_time) < 0.5
        except psutil.Error:
            return False


def read_pid_file(path: Path) -> Running | None:
    try:
        data = json.loads(path.read_text())
        return Running(
            pid=int(data["pid"]), create_time=float(data["create_time"]), celery=bool(data.get("celery"))
        )
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def airflow_component(proc: psutil.Process) -> str | None:
    """``scheduler`` for the process ``airflow scheduler`` (a child of ``airflow standalone``)."""
    with contextlib.suppress(psutil.Error):
        cmd = " ".join(proc.cmdline()).replace("-", "_")  # the api-server retitles itself "api_server"
        for name in ("scheduler", "dag-processor", "api-server", "triggerer"):
            if f" {name.replace('-', '_')}" in cmd:
                return name
    return None


def airflow_health(base_url: str) -> dict[str, str]:
    """Component -> status from ``/api/v2/monitor/health`` (it answers 200 even when unhealthy)."""
    with urllib.request.urlopen(f"{base_url}/api/v2/monitor/health", timeout=30) as resp:
        body = json.loads(resp.read())
    return {name: (info or {}).get("status") or "unknown" for name, info in body.items()}


def airflow_answers(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/api/v2/version", timeout=3) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def airflow_is_healthy(base_url: str) -> bool:
    try:
        health = airflow_health(base_url)
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return all(health.get(c) == "healthy" for c in AIRFLOW_COMPONENTS)


class LocalStack:
    def __init__(
        self,
        config: StackConfig,
        *,
        with_airflow: bool = True,
        celery: bool = False,
        airflow_timeout: float = 600.0,
        out: Callable[[str], None] = print,
    ) -> None:
        if celery and not with_airflow:
            raise StackError("--celery runs Airflow on Celery workers: it cannot go with --no-airflow")
        self.config = config
        self.with_airflow = with_airflow
        self.celery: CeleryAirflow | None = CeleryAirflow(config, out) if celery else None
        self.airflow_timeout = airflow_timeout
        self.out = out
        self.postgres = LocalPostgres(
            pgdata=config.pgdata, port=config.ports.pg_port, password=config.secrets.postgres_password
        )
        self.moto: ManagedProcess | None = None
        self.reference_env: ReferenceEnvironment | None = None  # once started
        self.airflow: ManagedProcess | None = None
        self._airflow_seen: set[str] = set()
        self.started_in_s: float | None = None

    # --- start ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start every part; on any failure stop what started and raise.

        PostgreSQL first; then, at the same time: Airflow (standalone migrates its database and syncs
        its users, then waits for the gate; on Celery, Redis, then the migration and the users), the
        databases' seed, the S3 endpoint and the reference environment. Once those are up the gate
        opens and Airflow's scheduler starts, so no DAG run meets a half-started stack.
        """
        t0 = time.monotonic()
        self._claim_state_dir()
        if self.config.scale == "case-study":
            self._generate_case_study()
        self._start_postgres()
        # Long-lived processes are spawned from this thread only: each is told to stop when the
        # thread that spawned it ends (PR_SET_PDEATHSIG), and a pool thread ends early.
        standalone = self.with_airflow and self.celery is None
        if standalone:
            self._launch_airflow_standalone()
        if self.celery is not None:
            self._start_redis(self.celery)
        self._spawn_s3()
        self._spawn_reference_env()
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="stack") as pool:
            background = [("seeding the databases", pool.submit(self._seed))]
            if self.celery is not None:
                prepare = pool.submit(self._prepare_airflow_celery, self.celery)
                background.append(("preparing Airflow on Celery", prepare))
            self._wait_for_s3()
            self._wait_for_reference_env()
        for what, future in background:
            if (error := future.exception()) is not None:
                if isinstance(error, StackError):
                    raise error
                raise StackError(f"{what} failed: {error}") from error
        self.out(f"  the stack around Airflow is up after {time.monotonic() - t0:.1f} s")
        if standalone:
            self._open_airflow_gate()
            self._wait_for_airflow_standalone()
        elif self.celery is not None:
            self._start_airflow_celery(self.celery)
        self.started_in_s = time.monotonic() - t0
        record_tree(self.config.processes_file, os.getpid())

    def _claim_state_dir(self) -> None:
        cfg = self.config
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        running = read_pid_file(cfg.pid_file)
        if running and running.pid != os.getpid() and running.is_alive():
            raise StackError(
                f"a local stack is already running from {cfg.state_dir} (pid {running.pid}): "
                f"stop it with `python -m local_stack down` first"
            )
        leftovers = kill_recorded(cfg.processes_file)
        if leftovers:
            self.out(f"Stopped {leftovers} process(es) left behind by a previous stack that was killed.")
        self.postgres.stop()  # a server left running by a killed stack (pg_ctl start detaches it)
        withdraw_redis_stop_request(cfg)  # a new stack starts Redis whatever the last one was asked
        self._check_ports_free()
        me = psutil.Process()
        record = {"pid": me.pid, "create_time": me.create_time(), "celery": self.celery is not None}
        write_private(cfg.pid_file, json.dumps(record))

    def _check_ports_free(self) -> None:
        airflow_only = {"BG_AIRFLOW_PORT", "BG_AIRFLOW_WORKER_LOG_PORT", "BG_AIRFLOW_TRIGGER_LOG_PORT"}
        for port, var, what in self.config.ports.described():
            if not self.with_airflow and var in airflow_only:
                continue
            if self.celery is None and var in CELERY_ONLY_PORT_VARS:
                continue
            if not port_is_free(port, self.config.host):
                raise StackError(
                    f"port {port} ({what}) on {self.config.host} is already in use: stop what uses it, "
                    f"or set {var} to a free port"
                )

    def _start_postgres(self) -> None:
        self.out(f"Starting PostgreSQL on {self.config.host}:{self.config.ports.pg_port} ...")
        self.postgres.start()
        if self.with_airflow:
            self.postgres.create_database(AIRFLOW_METADATA_DB)

    def _seed(self) -> None:
        if self.config.scale == "case-study":
            self._create_case_study_databases()
        else:
            results = seed_all(self.postgres)
            seeded = [r.database for r in results if r.seeded]
            kept = len(results) - len(seeded)
            self.out(
                f"  databases: {len(seeded)} created and seeded, {kept} already there (left as they are)"
            )
        self._migrate_history()

    def _generate_case_study(self) -> None:
        """The case study's files (seeded: the same every time), before anything reads them: the
        reference environment (topology, catalog) and Airflow's connections (the database plan)."""
        from local_stack.case_study import generate

        study = generate(self.config.case_study_dir)
        self.out(f"  case study generated in {study.directory}")

    def _create_case_study_databases(self) -> None:
        """The case study's 400 service databases, from the schema templates."""
        from local_stack.case_study import CaseStudy, create_databases

        times = create_databases(self.postgres, CaseStudy(self.config.case_study_dir).databases())
        self.out(
            f"  databases: {times.created} created from real schema families ({times.templates_s:.1f} s for the "
            f"templates, {times.databases_s:.1f} s for the copies), {times.kept} already there (left as they are)"
        )

    def _migrate_history(self) -> None:
        """The check-history database (Baseline health page), its schema brought to the newest revision."""
        from baseline_guard.health import migrate

        self.postgres.create_database(HISTORY_DB)
        migrate.upgrade(self.postgres.uri(HISTORY_DB))
        self.out(f"  check history: database {HISTORY_DB} at schema revision {migrate.head_revision()}")

    def _spawn_s3(self) -> None:
        cfg = self.config
        self.out(f"Starting the S3 endpoint (moto) on {cfg.s3_endpoint_url} ...")
        self.moto = ManagedProcess(
            name="moto",
            argv=[sys.executable, "-m", "moto.server", "-H", cfg.host, "-p", str(cfg.ports.s3_port)],
            env=dict(os.environ),
            log_file=cfg.log_dir / "moto.log",
        ).start()

    def _wait_for_s3(self) -> None:
        cfg = self.config
        assert self.moto is not None
        wait_for(
            lambda: port_answers(cfg.ports.s3_port, cfg.host),
            30,
            "S3 endpoint (moto)",
            alive=self.moto.is_running,
        )
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=cfg.s3_endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=BACKUP_BUCKET)
        self.out(f"  bucket: {BACKUP_BUCKET}")

    def _spawn_reference_env(self) -> None:
        cfg = self.config
        if not reference_env_available():
            self.out("  (the reference environment API is not installed in this checkout: skipped)")
            return
        from reference_env.launcher import ReferenceEnvironment

        self.out(
            f"Starting the reference environment API on {cfg.env_api_url} (gateway {cfg.gateway_url}) ..."
        )
        case_study = cfg.scale == "case-study"
        self.reference_env = ReferenceEnvironment(
            cfg.env_api_state_dir,
            cfg.ports.env_api_port,
            cfg.ports.gateway_port,
            cfg.secrets.env_api_token,
            topology=cfg.case_study_dir / "topology.yaml" if case_study else None,
            catalog=cfg.case_study_dir / "catalog.yaml" if case_study else None,
            lightweight_instances=case_study,  # 400+ instances served by the server process itself
            startup_timeout=300 if case_study else None,
        ).spawn()

    def _wait_for_reference_env(self) -> None:
        if self.reference_env is not None:
            self.reference_env.wait_until_ready()

    @property
    def _airflow_gate(self) -> Path:
        return self.config.state_dir / "airflow.gate"

    def _launch_airflow_standalone(self) -> None:
        """Start standalone: it migrates, syncs users and the CI role, then waits for the gate."""
        cfg = self.config
        self.out(f"Starting Airflow standalone on {cfg.airflow_url} (first start migrates its database) ...")
        passwords = write_airflow_passwords(cfg)
        self._airflow_gate.unlink(missing_ok=True)
        env = {
            **os.environ,
            **airflow_env(cfg),
            GATE_ENV: str(self._airflow_gate),
            PASSWORDS_ENV: str(passwords),
        }
        self.airflow = ManagedProcess(
            name="airflow",
            # standalone, keeping the configured (FAB-based) auth manager instead of forcing the simple one
            argv=[sys.executable, "-m", "local_stack.airflow_standalone"],
            env=env,
            log_file=cfg.log_dir / "airflow.log",
        ).start()

    def _open_airflow_gate(self) -> None:
        self._airflow_gate.touch()

    def _wait_for_airflow_standalone(self) -> None:
        cfg = self.config
        assert self.airflow is not None
        try:
            wait_for(
                lambda: airflow_is_healthy(cfg.airflow_url),
                self.airflow_timeout,
                "Airflow (every component healthy)",
                interval=0.25,
                alive=self._airflow_alive,
            )
        except (TimeoutError, RuntimeError) as exc:
            raise StackError(
                f"{exc}; last lines of {self.airflow.log_file}:\n{self.airflow.log_tail()}"
            ) from None
        self.out(f"  Airflow users {', '.join(AIRFLOW_USERS)} and the CI role are in place")

    def _start_redis(self, celery: CeleryAirflow) -> None:
        cfg = self.config
        self.out(f"Starting Redis (the Celery broker) on {cfg.host}:{cfg.ports.redis_port} ...")
        try:
            celery.start_redis()
        except CeleryModeError as exc:
            raise StackError(str(exc)) from None

    def _prepare_airflow_celery(self, celery: CeleryAirflow) -> None:
        """The migrated metadata database, the users and the CI role (before the API server, so its own
        role sync finds them; run while the rest of the stack starts). Starts no lasting process."""
        cfg = self.config
        self.out(f"Starting Airflow on Celery at {cfg.airflow_url} (first start migrates its database) ...")
        write_airflow_passwords(cfg)
        try:
            celery.migrate()
        except CeleryModeError as exc:
            raise StackError(str(exc)) from None
        self._sync_airflow_users(celery.env)

    def _start_airflow_celery(self, celery: CeleryAirflow) -> None:
        cfg = self.config
        celery.start_api_server()
        try:
            wait_for(
                lambda: airflow_answers(cfg.airflow_url),
                self.airflow_timeout,
                "Airflow API server",
                interval=1.0,
                alive=lambda: celery.problem() is None,
            )
        except (TimeoutError, RuntimeError) as exc:
            raise StackError(f"{exc}; last lines of the logs:\n{celery.log_tail()}") from None
        celery.start_components()
        self.out(
            "  api-server up; starting 2 schedulers, dag-processor, triggerer, Celery workers worker-1, worker-2"
        )

        def ready() -> bool:
            return airflow_is_healthy(cfg.airflow_url) and celery.workers_ready()

        try:
            wait_for(
                ready,
                self.airflow_timeout,
                "Airflow on Celery (every component healthy, workers ready)",
                interval=1.0,
                alive=lambda: celery.problem() is None,
            )
        except (TimeoutError, RuntimeError) as exc:
            raise StackError(f"{exc}; last lines of the logs:\n{celery.log_tail()}") from None

    def _sync_airflow_users(self, env: dict[str, str], attempts: int = 3) -> None:
        """The CI role and the users admin and ci (``baseline_guard.access``), in a process of their
        own (retried: a database that has just been migrated may still be busy)."""
        cfg = self.config
        argv = [
            sys.executable,
            "-m",
            "baseline_guard.access",
            *access_args(str(cfg.airflow_passwords_file), cfg.airflow_home),
        ]
        for attempt in range(1, attempts + 1):
            with (cfg.log_dir / "airflow-access.log").open("ab") as log:
                done = subprocess.run(
                    argv, env=env, stdout=log, stderr=subprocess.STDOUT, check=False, timeout=300
                )
            if done.returncode == 0:
                fab_perms_marker(cfg.airflow_home).touch()
                self.out(f"  Airflow users {', '.join(AIRFLOW_USERS)} and the CI role are in place")
                return
            if attempt < attempts:
                time.sleep(3)
        raise StackError(
            f"could not create the Airflow users and roles; see {cfg.log_dir / 'airflow-access.log'}"
        )

    def _airflow_alive(self) -> bool:
        """Standalone runs, and none of its components exited (standalone itself would carry on)."""
        if self.airflow is None or not self.airflow.is_running():
            return False
        with contextlib.suppress(psutil.Error):
            found = {airflow_component(p) for p in psutil.Process(self.airflow.pid).children()}
            names = {name for name in found if name is not None}
            self._airflow_seen |= names
            missing = self._airflow_seen - names
            if missing:
                self.out(f"  Airflow {', '.join(sorted(missing))} exited")
                return False
        return True

    # --- run, stop ------------------------------------------------------------------------------

    def wait(self) -> None:
        """Block until a stop is requested (signal) or a part dies (then raise ``StackError``)."""
        last_record = time.monotonic()
        while True:
            time.sleep(0.5)
            for part in (self.moto, self.airflow):
                if part is not None and not part.is_running():
                    raise StackError(f"{part.name} exited unexpectedly; see {part.log_file}")
            if self.airflow is not None and not self._airflow_alive():
                raise StackError(f"Airflow stopped working; see {self.airflow.log_file}")
            if self.celery is not None:
                self.celery.supervise_redis()
                if problem := self.celery.problem():
                    raise StackError(problem)
            if self.reference_env is not None and not self.reference_env.is_running():
                raise StackError(f"the reference environment API exited; see {self.reference_env.log_path}")
            if time.monotonic() - last_record > RECORD_EVERY_S:
                record_tree(self.config.processes_file, os.getpid())
                last_record = time.monotonic()

    def stop(self) -> None:
        """Stop every part in reverse order (each one even if an earlier one fails)."""
        steps: list[tuple[str, Callable[[], object]]] = []
        if self.airflow is not None:
            steps.append(("Airflow", self.airflow.stop))
        if self.celery is not None:
            steps.append(("Airflow (Celery workers, schedulers, ...) and Redis", self.celery.stop))
        if self.reference_env is not None:
            steps.append(("reference environment API", self.reference_env.stop))
        if self.moto is not None:
            steps.append(("S3 endpoint", functools.partial(self.moto.stop, timeout=10)))
        steps.append(("PostgreSQL", self.postgres.stop))
        for name, stop in steps:
            self.out(f"Stopping {name} ...")
            try:
                stop()
            except Exception as exc:  # keep stopping the other parts
                self.out(f"  could not stop {name} cleanly: {exc}")
        kill_recorded(self.config.processes_file)
        running = read_pid_file(self.config.pid_file)
        if running and running.pid == os.getpid():
            self.config.pid_file.unlink(missing_ok=True)
        self.out("Stopped.")

    # --- reporting ------------------------------------------------------------------------------

    def memory(self) -> TreeMemory:
        return stack_memory(self.config, os.getpid())

    def banner(self) -> str:
        cfg = self.config
        users = ", ".join(f"{u}/{pw} ({role})" for u, (role, pw) in AIRFLOW_USERS.items())
        dbs = (
            f"{len(service_databases(cfg)) // 2} services (case study: {cfg.case_study_dir})"
            if cfg.scale == "case-study"
            else ", ".join(SERVICE_DATABASES)
        )
        rows = []
        if self.with_airflow:
            rows.append(f"Airflow UI + REST API  {cfg.airflow_url}   users: {users}")
        if self.celery is not None:
            rows.append(
                f"Celery                 broker redis://{cfg.host}:{cfg.ports.redis_port}/0, "
                "workers worker-1, worker-2 (queues default, pgtools), 2 schedulers"
            )
        if self.reference_env is not None:
            rows.append(f"Environment API        {cfg.env_api_url}   docs: {cfg.env_api_url}/docs")
            rows.append(f"Sandbox gateway        {cfg.gateway_url}")
        rows += [
            f"S3 endpoint            {cfg.s3_endpoint_url}   bucket: {BACKUP_BUCKET}",
            f"PostgreSQL             {cfg.host}:{cfg.ports.pg_port}   databases prod_<db>, baseline_<db>: {dbs}",
            "",
            *_port_rows(cfg, skip=set() if self.celery else CELERY_ONLY_PORT_VARS),
            f"Secrets (Postgres password, API token): {cfg.state_dir / 'secrets.json'}"
            "   (`python -m local_stack env` prints them as AIRFLOW_CONN_* exports)",
            f"Logs: {cfg.log_dir}   Stop: Ctrl-C here, or `python -m local_stack down`",
            f"Started in {self.started_in_s:.1f} s; memory of all its processes: {self.memory().describe()}",
        ]
        width = max(len(r) for r in rows) + 2
        title = f" {READY_BANNER} "
        lines = ["┌─" + title + "─" * max(0, width - len(title) - 1) + "┐"]
        lines += [f"│ {r.ljust(width - 1)}│" for r in rows]
        lines.append("└" + "─" * (width + 1) + "┘")
        return "\n".join(lines)


def _port_rows(cfg: StackConfig, skip: Collection[str] = (), per_row: int = 4) -> list[str]:
    """``Ports (env var to change each): BG_AIRFLOW_PORT=28080, ...`` over a few lines."""
    items = [f"{var}={port}" for port, var, _ in cfg.ports.described() if var not in skip]
    chunks = [", ".join(items[i : i + per_row]) for i in range(0, len(items), per_row)]
    return ["Ports (env var to change each):", *(f"  {c}" for c in chunks)]


def reference_env_available() -> bool:
    """The launcher and the server's ``python -m reference_env`` entry point are both there."""
    try:
        return all(importlib.util.find_spec(m) for m in ("reference_env.launcher", "reference_env.__main__"))
    except ImportError:
        return False


def postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def stack_memory(config: StackConfig, up_pid: int) -> TreeMemory:
    """RSS of the ``up`` process, everything under it, and the PostgreSQL server (detached by pg_ctl)."""
    roots = [up_pid]
    if (pm := postmaster_pid(config.pgdata)) is not None:
        roots.append(pm)
    return tree_memory(roots)


def run_up(
    config: StackConfig, *, with_airflow: bool, celery: bool = False, airflow_timeout: float = 600.0
) -> int:
    """``python -m local_stack up``: start, print the banner, wait for Ctrl-C / SIGTERM, stop; exit code."""
    try:
        stack = LocalStack(
            config,
            with_airflow=with_airflow,
            celery=celery,
            airflow_timeout=airflow_timeout,
            out=lambda s: print(s, flush=True),
        )
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        if not stopping:
            raise StopRequested(signal.Signals(signum).name)

    old = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        stack.start()
        print(stack.banner(), flush=True)
        stack.wait()
    except StopRequested as req:
        print(f"\n{req} received: stopping the local stack.", flush=True)
    except (StackError, TimeoutError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        stopping = True
        for s in old:
            signal.signal(s, signal.SIG_IGN)
        stack.stop()
        for s, handler in old.items():
            signal.signal(s, handler)
    return code


def _still_running(pid: int) -> bool:
    """Alive and not a zombie (exited, waiting for its parent to collect it)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def run_down(config: StackConfig, timeout: float = 120.0) -> int:
    """``python -m local_stack down``: SIGTERM the ``up`` process and wait until it has stopped."""
    running = read_pid_file(config.pid_file)
    if running is None or not running.is_alive():
        killed = kill_recorded(config.processes_file)
        LocalPostgres(pgdata=config.pgdata, port=config.ports.pg_port, password="").stop()
        config.pid_file.unlink(missing_ok=True)
        note = f" (stopped {killed} process(es) a killed stack left behind)" if killed else ""
        print(f"No local stack is running from {config.state_dir}{note}.")
        return 0
    print(f"Stopping the local stack (pid {running.pid}) ...", flush=True)
    os.kill(running.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _still_running(running.pid):
        if time.monotonic() > deadline:
            print(f"error: the stack (pid {running.pid}) did not stop within {timeout:.0f}s", file=sys.stderr)
            return 1
        time.sleep(0.2)
    print("Stopped.")
    return 0


def _running_celery_stack(config: StackConfig) -> Running | None:
    """The running ``up --celery`` of this state directory; ``None`` (after saying why) otherwise."""
    running = read_pid_file(config.pid_file)
    if running is None or not running.is_alive():
        print(f"error: no local stack is running from {config.state_dir}", file=sys.stderr)
        return None
    if not running.celery:
        print(
            f"error: the local stack from {config.state_dir} (pid {running.pid}) is not in the Celery mode: "
            "only `up --celery` runs Redis",
            file=sys.stderr,
        )
        return None
    return running


def run_stop_redis(config: StackConfig, *, kill: bool, timeout: float = 60.0) -> int:
    """``python -m local_stack stop redis [--kill]``: the running Celery stack stops Redis (SIGTERM, or
    SIGKILL like a crash) and keeps it down until ``start redis``; waits until Redis is gone."""
    if _running_celery_stack(config) is None:
        return 1
    request_redis_stop(config, "kill" if kill else "stop")
    print(f"Stopping Redis ({'SIGKILL' if kill else 'SIGTERM'}) ...", flush=True)
    try:
        wait_for(
            lambda: not port_answers(config.ports.redis_port, config.host), timeout, "Redis stopped", 0.1
        )
    except TimeoutError:
        print(f"error: Redis still answers after {timeout:.0f}s", file=sys.stderr)
        return 1
    print("Redis stopped; it stays down until `python -m local_stack start redis`.")
    return 0


def run_start_redis(config: StackConfig, timeout: float = 120.0) -> int:
    """``python -m local_stack start redis``: the running Celery stack starts Redis again the way it
    always does (same port, same append-only file); waits until Redis answers."""
    if _running_celery_stack(config) is None:
        return 1
    withdraw_redis_stop_request(config)
    try:
        wait_for(lambda: redis_answers(config.ports.redis_port, config.host), timeout, "Redis up", 0.1)
    except TimeoutError:
        print(
            f"error: Redis does not answer after {timeout:.0f}s; see {config.log_dir / 'redis.log'}",
            file=sys.stderr,
        )
        return 1
    print(f"Redis is up on {config.host}:{config.ports.redis_port}.")
    return 0
