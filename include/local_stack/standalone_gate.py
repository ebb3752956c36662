"""The hand-over between the stack and Airflow standalone (``local_stack.airflow_standalone``): what
standalone does before its components start. Light: the stack imports it without Airflow."""

from __future__ import annotations

import os
import time
from pathlib import Path

# a file: Airflow's components start once it exists (the rest of the stack is up)
GATE_ENV = "BG_AIRFLOW_GATE"
# the users' passwords (JSON), synced with the CI role before the components start
PASSWORDS_ENV = "BG_AIRFLOW_PASSWORDS_FILE"
GATE_TIMEOUT_S = 900.0


def wait_for_gate(gate: Path, timeout: float = GATE_TIMEOUT_S) -> None:
    """Return once ``gate`` exists; exit when the stack that would create it is gone or time runs out."""
    parent = os.getppid()
    deadline = time.monotonic() + timeout
    while not gate.exists():
        if os.getppid() != parent or time.monotonic() > deadline:
            raise SystemExit(f"the local stack never opened {gate}: not starting Airflow's components")
        time.sleep(0.05)


def fab_perms_marker(airflow_home: Path) -> Path:
    """A file in ``AIRFLOW_HOME`` saying FAB's permissions were synced for the installed versions:
    missing after a fresh start or an upgrade of Airflow or its FAB provider."""
    from importlib.metadata import version

    versions = f"{version('apache-airflow')}-fab-{version('apache-airflow-providers-fab')}"
    return airflow_home / f".fab-perms-synced-{versions}"


def access_args(passwords: str, airflow_home: Path) -> list[str]:
    """The arguments of ``baseline_guard.access`` for this start (FAB's permissions once per version)."""
    args = ["--passwords-file", passwords]
    if not fab_perms_marker(airflow_home).exists():
        args.append("--sync-fab-perms")
    return args
