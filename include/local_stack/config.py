"""Where the local stack lives, which ports it uses, and its generated secrets."""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = REPO_ROOT / ".local" / "stack"
CASE_STUDY_STATE_DIR = REPO_ROOT / ".local" / "case-study" / "stack"  # `up --scale case-study`

# What the reference environment serves: the four-service sandbox (real processes), or the case study
# (200 services, 20 project environments, lightweight instances: local_stack.case_study).
SCALES = ("sandbox", "case-study")
SCALE_FILE = "scale"  # in the state directory: the scale it was started with (for `env`, `status`)

BACKUP_BUCKET = "baseline-guard-backups"

# (field, env var, default, what listens there)
PORT_SETTINGS: tuple[tuple[str, str, int, str], ...] = (
    ("airflow_port", "BG_AIRFLOW_PORT", 28080, "Airflow UI / REST API"),
    ("env_api_port", "BG_ENV_API_PORT", 28081, "reference environment API"),
    ("gateway_port", "BG_GATEWAY_PORT", 28082, "sandbox gateway"),
    ("s3_port", "BG_S3_PORT", 28083, "S3 endpoint (moto)"),
    ("pg_port", "BG_PG_PORT", 28432, "PostgreSQL"),
    ("worker_log_port", "BG_AIRFLOW_WORKER_LOG_PORT", 28084, "Airflow worker log server"),
    ("trigger_log_port", "BG_AIRFLOW_TRIGGER_LOG_PORT", 28085, "Airflow triggerer log server"),
    ("redis_port", "BG_REDIS_PORT", 28379, "Redis, the Celery broker (--celery)"),
    (
        "worker2_log_port",
        "BG_AIRFLOW_WORKER2_LOG_PORT",
        28086,
        "second Celery worker's log server (--celery)",
    ),
)
# Ports only the Celery mode listens on (``up --celery``).
CELERY_ONLY_PORT_VARS = frozenset({"BG_REDIS_PORT", "BG_AIRFLOW_WORKER2_LOG_PORT"})


@dataclass(frozen=True)
class Ports:
    airflow_port: int
    env_api_port: int
    gateway_port: int
    s3_port: int
    pg_port: int
    worker_log_port: int
    trigger_log_port: int
    redis_port: int
    worker2_log_port: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Ports:
        """Ports from the ``BG_*_PORT`` variables, defaults otherwise; bad values raise ``ValueError``."""
        environ = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for field_name, var, default, _ in PORT_SETTINGS:
            raw = environ.get(var, "").strip()
            if not raw:
                values[field_name] = default
                continue
            if not raw.isdigit() or not 1024 <= int(raw) <= 65535:
                raise ValueError(f"{var}={raw!r} is not a valid port: expected an integer from 1024 to 65535")
            values[field_name] = int(raw)
        ports = cls(**values)
        ports.check_distinct()
        return ports

    def check_distinct(self) -> None:
        seen: dict[int, str] = {}
        for field_name, var, _, _ in PORT_SETTINGS:
            port = getattr(self, field_name)
            if port in seen:
                raise ValueError(f"{var} and {seen[port]} are both {port}: every port must be different")
            seen[port] = var

    def described(self) -> list[tuple[int, str, str]]:
        """``(port, env var, what)`` for each port."""
        return [(getattr(self, f), var, what) for f, var, _, what in PORT_SETTINGS]


@dataclass(frozen=True)
class StackSecrets:
    """Generated once per state directory, kept in ``secrets.json`` (mode 600), never printed."""

    postgres_password: str
    env_api_token: str
    fernet_key: str
    jwt_secret: str

    @classmethod
    def generate(cls) -> StackSecrets:
        return cls(
            postgres_password=secrets.token_urlsafe(24),
            env_api_token=secrets.token_urlsafe(32),
            fernet_key=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            jwt_secret=secrets.token_urlsafe(32),
        )

    @classmethod
    def load_or_create(cls, path: Path) -> StackSecrets:
        if path.exists():
            try:
                return cls(**json.loads(path.read_text(encoding="utf-8")))
            except (ValueError, TypeError) as exc:
                raise ValueError(
                    f"{path} is not a valid secrets file ({exc}): expected a JSON object with keys "
                    f"postgres_password, env_api_token, fernet_key, jwt_secret; delete the state "
                    f"directory {path.parent} to start afresh"
                ) from None
        fresh = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, json.dumps(fresh.__dict__, indent=2))
        return fresh


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (created with mode 600, never world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    path.chmod(0o600)


# Fixed local users of the sandbox Airflow: user -> (role, password). The roles are the FAB auth
# manager's (baseline_guard.access: "CI" may only trigger and read the CI DAGs, "Metrics" only read
# /baseline-guard/metrics).
AIRFLOW_USERS: dict[str, tuple[str, str]] = {
    "admin": ("Admin", "admin"),
    "ci": ("CI", "ci"),
    "metrics": ("Metrics", "metrics"),
}


@dataclass(frozen=True)
class StackConfig:
    state_dir: Path
    ports: Ports
    secrets: StackSecrets
    repo_root: Path = REPO_ROOT
    host: str = "127.0.0.1"
    scale: str = "sandbox"

    @classmethod
    def load(
        cls, state_dir: Path | None = None, environ: Mapping[str, str] | None = None, scale: str | None = None
    ) -> StackConfig:
        """Ports from the environment, secrets from (or newly into) ``<state_dir>/secrets.json``; the scale
        given (then remembered in the state directory), else the one the state directory was started with."""
        if scale is not None and scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}: expected one of {', '.join(SCALES)}")
        default_dir = CASE_STUDY_STATE_DIR if scale == "case-study" else DEFAULT_STATE_DIR
        state_dir = (state_dir or default_dir).resolve()
        ports = Ports.from_env(environ)
        marker = state_dir / SCALE_FILE
        before = marker.read_text().strip() if marker.exists() else None
        if before is not None and before not in SCALES:
            raise ValueError(
                f"{marker} names an unknown scale {before!r}: expected one of {', '.join(SCALES)}"
            )
        if scale is not None and before is not None and scale != before:
            raise ValueError(
                f"{state_dir} holds a {before} stack, not a {scale} one: use another --state-dir "
                "(or delete that directory to start afresh)"
            )
        scale = scale or before or "sandbox"
        secrets_ = StackSecrets.load_or_create(state_dir / "secrets.json")
        marker.write_text(scale + "\n")
        return cls(state_dir=state_dir, ports=ports, secrets=secrets_, scale=scale)

    @property
    def case_study_dir(self) -> Path:
        """Where ``--scale case-study`` writes the generated topology, catalog, scenarios and database plan."""
        return self.state_dir / "generated"

    @property
    def pgdata(self) -> Path:
        return self.state_dir / "pg"

    @property
    def airflow_home(self) -> Path:
        return self.state_dir / "airflow"

    @property
    def env_api_state_dir(self) -> Path:
        return self.state_dir / "envapi"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "stack.pid"

    @property
    def processes_file(self) -> Path:
        return self.state_dir / "processes.json"

    @property
    def redis_dir(self) -> Path:
        return self.state_dir / "redis"

    @property
    def redis_stop_request_file(self) -> Path:
        """Present while ``python -m local_stack stop redis`` holds Redis down (the Celery mode)."""
        return self.state_dir / "redis-stop-requested"

    @property
    def airflow_passwords_file(self) -> Path:
        return self.airflow_home / "passwords.json"

    @property
    def airflow_url(self) -> str:
        return f"http://{self.host}:{self.ports.airflow_port}"

    @property
    def env_api_url(self) -> str:
        return f"http://{self.host}:{self.ports.env_api_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.ports.gateway_port}"

    @property
    def s3_endpoint_url(self) -> str:
        return f"http://{self.host}:{self.ports.s3_port}"
