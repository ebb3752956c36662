"""Parsing a DAG file imports no engine and no driver: the DAG processor parses every file often.

Each DAG file is parsed alone in a fresh interpreter (as the DAG processor does), and the modules
it left in ``sys.modules`` are compared with the engines (schema diff, backup streaming, check
runner, health, protection) and the drivers they bring (psycopg, botocore, migra, apprise).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((ROOT / "dags").glob("*.py"))

ENGINE_PACKAGES = ("backup", "schema", "checks", "health", "protection", "codesync", "configsync")
LIGHT_ENGINE_MODULES = {"baseline_guard.backup.names"}  # a name rule the Params validate with
DRIVERS = ("psycopg2", "psycopg", "botocore", "boto3", "migra", "results", "apprise", "sqlalchemy_utils")

PROBE = """
import json, runpy, sys
sys.path[:0] = [{plugins!r}, {include!r}]
runpy.run_path({path!r}, run_name="dag_file")
print(json.dumps(sorted(sys.modules)))
"""


def engine_modules(modules: list[str]) -> list[str]:
    """The engine or driver modules among ``modules``."""
    found = []
    for name in modules:
        parts = name.split(".")
        if parts[0] in DRIVERS:
            found.append(name)
        elif parts[0] == "baseline_guard" and len(parts) > 2 and parts[1] in ENGINE_PACKAGES:
            if name not in LIGHT_ENGINE_MODULES:
                found.append(name)
        elif parts[0] == "baseline_guard" and len(parts) == 2 and parts[1] in ENGINE_PACKAGES:
            continue  # the package itself: its exports are lazy
    return found


def test_engine_modules_recognises_engines_and_drivers() -> None:
    assert engine_modules(
        [
            "baseline_guard.backup",
            "baseline_guard.backup.names",
            "baseline_guard.backup.dump",
            "botocore.client",
            "baseline_guard.hooks.environment",
            "psycopg2",
            "airflow.sdk",
        ]
    ) == ["baseline_guard.backup.dump", "botocore.client", "psycopg2"]


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=[p.stem for p in DAG_FILES])
def test_parse_imports_no_engine(dag_file: Path) -> None:
    code = PROBE.format(plugins=str(ROOT / "plugins"), include=str(ROOT / "include"), path=str(dag_file))
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = engine_modules(json.loads(done.stdout.strip().splitlines()[-1]))
    assert loaded == [], f"parsing {dag_file.name} imported engine/driver modules: {loaded}"
