"""The local stack's Celery mode: Airflow as separate processes on CeleryExecutor with a real Redis.

Redis (the broker, its own port, append-only file in the state directory so queued work survives
a Redis restart), the metadata database as Celery's result backend, and, each its own process:
api-server, two schedulers, dag-processor, triggerer and two Celery workers. Both workers serve
the queues ``default`` and ``pgtools`` (both have the PostgreSQL client tools here); the dump and
restore tasks are routed to ``pgtools`` by a cluster policy (``baseline_guard.queues``).

The workers and the schedulers are redundant: one of them may die (that is what the fault tests
do) and the stack carries on with the other; the stack stops when a whole group is gone.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from local_stack.airflow_env import AIRFLOW_METADATA_DB, airflow_env
from local_stack.config import StackConfig
from local_stack.hostname import HOSTNAME_ENV
from local_stack.processes import ManagedProcess, port_answers, wait_for
from local_stack.shared_settings import read_env_file

WORKER_QUEUES = ("default", "pgtools")
WORKER_CONCURRENCY_SETTING = "AIRFLOW__CELERY__WORKER_CONCURRENCY"
REDUNDANT_GROUPS = ("scheduler", "worker")
# Settings only docker-compose makes: its containers' health checks (the stack watches its processes;
# two schedulers on one host would also fight over the health check port).
COMPOSE_ONLY_SETTINGS = frozenset({"AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"})


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


class CeleryAirflow:
    """Redis and Airflow's components as managed processes."""

    def __init__(self, config: StackConfig, out: Callable[[str], None]) -> None:
        self.config = config
        self.out = out
        self.env = celery_env(config)
        self.redis: ManagedProcess | None = None
        self.components: dict[str, ManagedProcess] = {}
        self._reported_dead: set[str] = set()

    # --- start ---------------------------------------------------------------------------------

    def start_redis(self) -> ManagedProcess:
        cfg = self.config
        cfg.redis_dir.mkdir(parents=True, exist_ok=True)
        self.redis = ManagedProcess(
            name="redis",
            # append-only file: work queued in Redis survives a Redis restart
            argv=[redis_server_binary(), "--bind", cfg.host, "--port", str(cfg.ports.redis_port),
                  "--dir", str(cfg.redis_dir), "--appendonly", "yes", "--save", "",
                  "--protected-mode", "yes", "--daemonize", "no"],
            env={"PATH": "/usr/bin:/bin"},
            log_file=cfg.log_dir / "redis.log",
        ).start()  # fmt: skip
        wait_for(
            lambda: port_answers(cfg.ports.redis_port, cfg.host), 30, "Redis", alive=self.redis.is_running
        )
        return self.redis

    def migrate(self) -> None:
        with (self.config.log_dir / "airflow-migrate.log").open("ab") as log:
            done = subprocess.run(
                [self._airflow(), "db", "migrate"], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                check=False, timeout=900,
            )  # fmt: skip
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
            argv = ["celery", "worker", "--celery-hostname", f"{worker.name}@%h",
                    "--queues", ",".join(worker.queues), "--concurrency", concurrency]  # fmt: skip
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

    def problem(self) -> str | None:
        """Why the Celery mode no longer works (``None`` while it does). A dead worker or scheduler
        is reported once; the stack carries on while the other of its group runs."""
        if self.redis is not None and not self.redis.is_running():
            return f"Redis exited; see {self.redis.log_file}"
        for name, proc in self.components.items():
            if proc.is_running():
                continue
            group = name.rsplit("-", 1)[0]
            if group not in REDUNDANT_GROUPS:
                return f"Airflow {name} exited; see {proc.log_file}"
            if name not in self._reported_dead:
                self._reported_dead.add(name)
                self.out(
                    f"  Airflow {name} exited (code {proc.popen.returncode}); the other {group} carries on"
                )
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
