"""Parsing a DAG file imports no engine and no driver: the DAG processor parses every file often.

Each DAG file is parsed alone in a fresh process (as the DAG processor does: it forks a parent that
has imported Airflow), and the modules it left in ``sys.modules`` are compared with the engines
(schema diff, backup streaming, check runner, health, protection) and the drivers they bring
(psycopg, botocore, migra, apprise). One interpreter imports ``airflow.sdk`` (every DAG file's first
import), then forks once per DAG file: a fork only ever adds what the parent had loaded, so a driver
that ``airflow.sdk`` itself pulled in would still be found, in every DAG.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((ROOT / "dags").glob("*.py"))

ENGINE_PACKAGES = ("backup", "schema", "checks", "health", "protection", "codesync", "configsync")
LIGHT_ENGINE_MODULES = {"baseline_guard.backup.names"}  # a name rule the Params validate with
DRIVERS = ("psycopg2", "psycopg", "botocore", "boto3", "migra", "results", "apprise", "sqlalchemy_utils")

PROBE = """
import json, os, runpy, sys
sys.path[:0] = [{plugins!r}, {include!r}]
import airflow.sdk  # noqa: F401  every DAG file's first import, loaded once before the forks
found = {{}}
for path in {paths!r}:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            runpy.run_path(path, run_name="dag_file")
            answer = {{"modules": sorted(sys.modules)}}
        except BaseException as exc:
            answer = {{"error": repr(exc)}}
        with os.fdopen(write, "w") as out:
            json.dump(answer, out)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as got:
        found[path] = json.loads(got.read() or '{{"error": "no answer"}}')
    os.waitpid(pid, 0)
print(json.dumps(found))
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


@pytest.fixture(scope="module")
def parsed() -> dict[str, dict[str, Any]]:
    """Per DAG file: the modules its parse left loaded, or the error it raised."""
    code = PROBE.format(
        plugins=str(ROOT / "plugins"), include=str(ROOT / "include"), paths=[str(p) for p in DAG_FILES]
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ},
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found: dict[str, dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=[p.stem for p in DAG_FILES])
def test_parse_imports_no_engine(dag_file: Path, parsed: dict[str, dict[str, Any]]) -> None:
    answer = parsed[str(dag_file)]
    assert "error" not in answer, f"parsing {dag_file.name} failed: {answer.get('error')}"
    loaded = engine_modules(answer["modules"])
    assert loaded == [], f"parsing {dag_file.name} imported engine/driver modules: {loaded}"
