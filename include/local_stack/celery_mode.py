"""The local stack's Celery mode: Airflow as separate processes on CeleryExecutor with a real Redis.

Redis (the broker, its own port, ``docker/redis.conf``: every write fsynced to an append-only file in
the state directory, so queued work survives Redis being killed), the metadata database as Celery's
result backend, and, each its own process:
api-server, two schedulers, dag-processor, triggerer and two Celery workers. Both workers serve
the queues ``default`` and ``pgtools`` (both have the PostgreSQL client tools here); the dump and
restore tasks are routed to ``pgtools`` by a cluster policy (``baseline_guard.queues``).

The workers and the schedulers are redundant: one of them may die (that is what the fault tests
do) and the stack carries on with the other; the stack stops when a whole group is gone.

Redis is supervised like compose's ``restart: unless-stopped``: when it exits unexpectedly the stack
starts it again the same way (same port, same append-only file), at once and then with a growing
delay, giving up after a few failed restarts in a row; ``python -m local_stack stop redis [--kill]``
holds it down until ``python -m local_stack start redis`` (both talk to the running stack through
``StackConfig.redis_stop_request_file``).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from local_stack.airflow_env import AIRFLOW_METADATA_DB, airflow_env
from local_stack.config import REPO_ROOT, StackConfig, write_private
from local_stack.hostname import HOSTNAME_ENV
from local_stack.processes import ManagedProcess, wait_for
from local_stack.shared_settings import read_env_file

WORKER_QUEUES = ("default", "pgtools")
WORKER_CONCURRENCY_SETTING = "AIRFLOW__CELERY__WORKER_CONCURRENCY"
REDUNDANT_GROUPS = ("scheduler", "worker")
# Settings only docker-compose makes: its containers' health checks (the stack watches its processes;
# two schedulers on one host would also fight over the health check port).
COMPOSE_ONLY_SETTINGS = frozenset({"AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"})
# Redis's persistence, shared with docker-compose's redis service (tests/test_docker_compose.py)
REDIS_CONF = REPO_ROOT / "docker" / "redis.conf"
# Delay before each restart of a Redis that exited unexpectedly, in a row; then the stack gives up.
# A Redis that stays up this long has recovered: the count starts again.
REDIS_RESTART_DELAYS_S = (0.0, 1.0, 2.0, 5.0, 10.0)
REDIS_RECOVERED_AFTER_S = 60.0
# How `python -m local_stack stop redis` asks the stack to stop Redis: SIGTERM (Redis finishes
# writing and exits) or, with --kill, SIGKILL (what a crash or a lost host does to it).
REDIS_STOP_SIGNALS = {"stop": signal.SIGTERM, "kill": signal.SIGKILL}


class CeleryModeError(RuntimeError):
    """A part of the Celery mode cannot start (the message says why and what to do)."""


@dataclass(frozen=True)
class Worker:
    name: str  # also its host name in Airflow (a task instance's ``hostname``) and in Celery
    log_port: int
    queues: tuple[str, ...] = WORKER_QUEUES


def workers(config: StackConfig) -> tuple[Worker, Worker]:
    ports = config.ports
    return Worker("worker-1", ports.worker_log_port), Worker("worker-2", ports.worker2_log_port)


def broker_url(config: StackConfig) -> str:
    return f"redis://{config.host}:{config.ports.redis_port}/0"


def result_backend(config: StackConfig) -> str:
    password = quote(config.secrets.postgres_password, safe="")
    return f"db+postgresql://postgres:{password}@{config.host}:{config.ports.pg_port}/{AIRFLOW_METADATA_DB}"


def celery_env(config: StackConfig) -> dict[str, str]:
    """The standalone mode's environment with the shared Celery settings on top, plus this
    deployment's addresses (broker, result backend) and per-process host names."""
    return {
        **airflow_env(config),
        **read_env_file(),
        "AIRFLOW__CELERY__BROKER_URL": broker_url(config),
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend(config),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "local_stack.hostname.from_environment",
        "AIRFLOW__API__WORKERS": "1",  # one API process is enough locally (each takes ~300 MB)
    }


def redis_server_binary() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if found is None:
        raise CeleryModeError(
            "redis-server is not installed: install Debian's package (`apt-get install redis-server`; "
            "`bash scripts/start.sh --celery` does it when run as root) or put redis-server on PATH"
        )
    return found


def redis_argv(config: StackConfig) -> list[str]:
    """How the stack starts Redis, every time: the shared persistence file, then this deployment's
    address and data directory (command-line options win over the file)."""
    return [
        redis_server_binary(),
        str(REDIS_CONF),
        "--bind",
        config.host,
        "--port",
        str(config.ports.redis_port),
        "--dir",
        str(config.redis_dir),
        "--protected-mode",
        "yes",
        "--daemonize",
        "no",
    ]


def redis_answers(port: int, host: str = "127.0.0.1") -> bool:
    """Redis answers ``PING`` with ``PONG`` (while it loads its append-only file it answers LOADING)."""
    try:
        with socket.create_connection((host, port), timeout=2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def request_redis_stop(config: StackConfig, how: str) -> None:
    """Ask the running stack to stop Redis (``how``: a key of ``REDIS_STOP_SIGNALS``) and keep it down."""
    if how not in REDIS_STOP_SIGNALS:
        raise ValueError(f"unknown way to stop Redis {how!r}: expected one of {sorted(REDIS_STOP_SIGNALS)}")
    write_private(config.redis_stop_request_file, how)


def redis_stop_requested(config: StackConfig) -> signal.Signals | None:
    """The signal a pending ``stop redis`` asks for, ``None`` when Redis should run."""
    try:
        how = config.redis_stop_request_file.read_text().strip()
    except FileNotFoundError:
        return None
    return REDIS_STOP_SIGNALS.get(how, signal.SIGTERM)


def withdraw_redis_stop_request(config: StackConfig) -> None:
    config.redis_stop_request_file.unlink(missing_ok=True)


class CeleryAirflow:
    """Redis and Airflow's components as managed processes."""

    def __init__(self, config: StackConfig, out: Callable[[str], None]) -> None:
        self.config = config
        self.out = out
        self.env = celery_env(config)
        self.redis: ManagedProcess | None = None
        self.components: dict[str, ManagedProcess] = {}
        self._reported_dead: set[str] = set()
        self._redis_held = False  # stopped by `python -m local_stack stop redis`
        self._redis_started_at = 0.0
        self._redis_restarts = 0  # restarts in a row after unexpected exits
        self._redis_restart_at: float | None = None
        self._redis_gave_up: str | None = None

    # --- start ---------------------------------------------------------------------------------

    def start_redis(self) -> ManagedProcess:
        cfg = self.config
        cfg.redis_dir.mkdir(parents=True, exist_ok=True)
        self.redis = ManagedProcess(
            name="redis",
            argv=redis_argv(cfg),
            env={"PATH": "/usr/bin:/bin"},
            log_file=cfg.log_dir / "redis.log",
        ).start()
        self._redis_started_at = time.monotonic()
        wait_for(
            lambda: redis_answers(cfg.ports.redis_port, cfg.host), 60, "Redis", alive=self.redis.is_running
        )
        return self.redis

    def migrate(self) -> None:
        with (self.config.log_dir / "airflow-migrate.log").open("ab") as log:
            done = subprocess.run(
                [self._airflow(), "db", "migrate"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=900,
            )
        if done.returncode != 0:
            raise CeleryModeError(
                f"`airflow db migrate` failed; see {self.config.log_dir / 'airflow-migrate.log'}"
            )

    def start_api_server(self) -> ManagedProcess:
        """First: tasks report to its execution API, so the workers need it up."""
        return self._start("api-server", ["api-server"], {})

    def start_components(self) -> None:
        """Schedulers, dag-processor, triggerer and workers (once the API server answers)."""
        concurrency = self.env[WORKER_CONCURRENCY_SETTING]
        commands: list[tuple[str, list[str], dict[str, str]]] = [
            ("scheduler-1", ["scheduler"], {HOSTNAME_ENV: "scheduler-1"}),
            ("scheduler-2", ["scheduler"], {HOSTNAME_ENV: "scheduler-2"}),
            ("dag-processor", ["dag-processor"], {}),
            ("triggerer", ["triggerer"], {}),
        ]
        for worker in workers(self.config):
            argv = [
                "celery",
                "worker",
                "--celery-hostname",
                f"{worker.name}@%h",
                "--queues",
                ",".join(worker.queues),
                "--concurrency",
                concurrency,
            ]
            extra = {
                HOSTNAME_ENV: worker.name,
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(worker.log_port),
            }
            commands.append((worker.name, argv, extra))
        for name, argv, extra in commands:
            self._start(name, argv, extra)

    def _start(self, name: str, argv: list[str], extra_env: dict[str, str]) -> ManagedProcess:
        self.components[name] = ManagedProcess(
            name=name,
            argv=[self._airflow(), *argv],
            env={**self.env, **extra_env},
            log_file=self.config.log_dir / f"airflow-{name}.log",
        ).start()
        return self.components[name]

    def workers_ready(self) -> bool:
        """Every worker logged Celery's ``ready.`` line (it consumes from its queues)."""
        return all(" ready." in _read(self.components[w.name].log_file) for w in workers(self.config))

    def _airflow(self) -> str:
        return str(Path(sys.executable).parent / "airflow")

    # --- watch, stop ---------------------------------------------------------------------------

    def supervise_redis(self) -> None:
        """Keep Redis as asked (the stack's watch loop calls this twice a second): down while a
        ``stop redis`` request stands, else running; an unexpected exit is restarted."""
        redis = self.redis
        if redis is None or self._redis_gave_up:
            return
        stop_signal = redis_stop_requested(self.config)
        if stop_signal is not None:
            if redis.is_running():
                self._stop_redis_on_request(redis, stop_signal)
            self._redis_held, self._redis_restart_at = True, None
            return
        if redis.is_running():
            if time.monotonic() - self._redis_started_at > REDIS_RECOVERED_AFTER_S:
                self._redis_restarts = 0
            return
        if self._redis_held:
            self._redis_held = False
            self.out("  Redis starting again on request (python -m local_stack start redis) ...")
            self._restart_redis()
            return
        self._restart_after_unexpected_exit(redis)

    def _restart_after_unexpected_exit(self, redis: ManagedProcess) -> None:
        """Start Redis again after the next delay of ``REDIS_RESTART_DELAYS_S``; give up after the last."""
        if self._redis_restart_at is None:
            if self._redis_restarts >= len(REDIS_RESTART_DELAYS_S):
                self._redis_gave_up = (
                    f"Redis exited {self._redis_restarts + 1} times in a row; see {redis.log_file}"
                )
                return
            delay = REDIS_RESTART_DELAYS_S[self._redis_restarts]
            self.out(
                f"  Redis exited (code {redis.returncode}); starting it again in {delay:.0f} s "
                "(its append-only file keeps the queued work)"
            )
            self._redis_restart_at = time.monotonic() + delay
        if time.monotonic() >= self._redis_restart_at:
            self._redis_restart_at = None
            self._redis_restarts += 1
            self._restart_redis()

    def _stop_redis_on_request(self, redis: ManagedProcess, stop_signal: signal.Signals) -> None:
        if stop_signal == signal.SIGKILL:
            redis.kill()
        else:
            redis.stop(timeout=30)
        self.out(
            f"  Redis stopped on request ({stop_signal.name}, python -m local_stack stop redis); "
            "Celery work waits until python -m local_stack start redis"
        )

    def _restart_redis(self) -> None:
        try:
            redis = self.start_redis()
        except (TimeoutError, RuntimeError) as exc:  # CeleryModeError is a RuntimeError
            if self.redis is not None:
                self.redis.stop(timeout=10)  # started but never answered: the next round tries again
            self.out(f"  Redis did not start again: {exc}")
            return
        self.out(f"  Redis is back on port {self.config.ports.redis_port} (pid {redis.pid})")

    def problem(self) -> str | None:
        """Why the Celery mode no longer works (``None`` while it does). A dead worker or scheduler
        is reported once; the stack carries on while the other of its group runs."""
        if self._redis_gave_up:
            return self._redis_gave_up
        for name, proc in self.components.items():
            if proc.is_running():
                continue
            group = name.rsplit("-", 1)[0]
            if group not in REDUNDANT_GROUPS:
                return f"Airflow {name} exited; see {proc.log_file}"
            if name not in self._reported_dead:
                self._reported_dead.add(name)
                self.out(f"  Airflow {name} exited (code {proc.returncode}); the other {group} carries on")
            if not any(p.is_running() for n, p in self.components.items() if n.startswith(f"{group}-")):
                return f"every Airflow {group} exited; see {self.config.log_dir}"
        return None

    def parts(self) -> Iterator[ManagedProcess]:
        yield from self.components.values()
        if self.redis is not None:
            yield self.redis

    def stop(self) -> None:
        """Every Airflow component at once (a worker finishes or hands back its tasks), then Redis."""
        with ThreadPoolExecutor(max_workers=len(self.components) or 1) as pool:
            for done in [pool.submit(p.stop, 30) for p in self.components.values()]:
                done.result()
        if self.redis is not None:
            self.redis.stop(timeout=10)

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log_tail(8)}" for p in self.parts())


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
