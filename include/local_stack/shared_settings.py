"""Airflow's settings shared by every Celery deployment: ``docker/airflow-settings.env``.

docker-compose.yaml reads the file as the ``env_file`` of its Airflow services, and the local
stack's Celery mode reads it here: one definition, so the tested mode and compose cannot drift.
"""

from __future__ import annotations

from pathlib import Path

from local_stack.config import REPO_ROOT

SHARED_SETTINGS_FILE = REPO_ROOT / "docker" / "airflow-settings.env"


def read_env_file(path: Path = SHARED_SETTINGS_FILE) -> dict[str, str]:
    """``KEY=VALUE`` lines (``#`` comments and blank lines skipped), as compose's ``env_file`` reads
    them; anything compose would read differently (quotes, ``${...}``, no ``=``) is refused."""
    settings: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier() or any(c in value for c in "'\"$"):
            raise ValueError(f"{path}:{number}: expected KEY=VALUE without quotes or ${{...}}, got {raw!r}")
        if key in settings:
            raise ValueError(f"{path}:{number}: {key} is set twice")
        settings[key] = value
    return settings
