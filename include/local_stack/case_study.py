"""The case study as a topology the local stack can start (``python -m local_stack up --scale case-study``).

The company the product is modelled on: 200 services (40 modules of 5), two instances each in the
baseline (production is a record), 20 project environments each overriding a few services on its
routing key, one PostgreSQL database per service in production and in the baseline, a test config
per service, a 300-scenario suite, and drift: some baseline services a release behind, a few test
configs edited by hand, some production databases a few schema changes ahead.

Everything is generated from one seed (:data:`SEED`): the same seed gives the same bytes. The files
go to a directory outside the repository (``.local/case-study/`` by default):

- ``topology.yaml``, ``catalog.yaml``: the reference environment's (``reference_env.topology``);
  instances are lightweight (``reference_env.lightweight``), served by the server process itself;
- ``scenarios/*.yaml``: the suite (the format of ``include/scenarios``): chains of calls across
  modules through the gateway, each call checking the answering service and its health;
- ``databases.json``: per database, the schema family and version it is created from.

Databases are real schemas nobody on this project wrote (``tests/material/schemas``: pagila,
Optuna, Prefect, Wagtail, and the project's synthetic shop), tens of tables each. Each family and
version is loaded once into a template database; every service database is a copy of its template
(``CREATE DATABASE ... TEMPLATE``) plus a table of its own, so 400 databases take seconds, not an hour.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from local_stack.config import REPO_ROOT

SEED = 20261207
SERVICES = 200
PROJECTS = 20
SCENARIOS = 300
DEFAULT_DIR = REPO_ROOT / ".local" / "case-study"
SCHEMAS_DIR = REPO_ROOT / "tests" / "material" / "schemas"

MODULES = (
    "search",
    "catalog",
    "pricing",
    "booking",
    "payment",
    "invoice",
    "loyalty",
    "review",
    "media",
    "inventory",
    "availability",
    "rates",
    "promotion",
    "cart",
    "checkout",
    "customer",
    "account",
    "auth",
    "notification",
    "mail",
    "sms",
    "partner",
    "supplier",
    "contract",
    "currency",
    "tax",
    "geo",
    "content",
    "translation",
    "recommendation",
    "ranking",
    "fraud",
    "risk",
    "refund",
    "support",
    "report",
    "audit",
    "export",
    "import",
    "scheduler",
)
ROLES = ("api", "core", "worker", "store", "sync")
VERSIONS = ("1.0.0", "1.1.0", "1.2.0", "1.3.0")

# family -> (baseline's schema version, production's when it is ahead, weight)
SCHEMA_FAMILIES: dict[str, tuple[str, str, float]] = {
    "pagila": ("4.1.0", "4.1.0-drift", 0.30),
    "optuna": ("3.1.1", "5.0.0", 0.25),
    "prefect": ("3.0.0", "3.9.1", 0.20),
    "synthetic": ("v1", "v2", 0.15),
    "wagtail": ("7.0.3", "8.0.1", 0.10),
}
BEHIND_SHARE = 0.08  # baseline services a release behind production
EDITED_CONFIGS = 5  # baseline test configs edited by hand (the config sync puts the release's back)
SCHEMA_AHEAD_SHARE = 0.12  # production databases a few changes ahead of the baseline's


@dataclass(frozen=True)
class DatabasePlan:
    """One service database: which schema it is created from, per environment prefix."""

    service: str
    database: str
    family: str
    baseline_version: str
    production_version: str

    def version(self, prefix: str) -> str:
        return self.production_version if prefix == "prod" else self.baseline_version


@dataclass(frozen=True)
class CaseStudy:
    """Where the generated files are."""

    directory: Path

    @property
    def topology(self) -> Path:
        return self.directory / "topology.yaml"

    @property
    def catalog(self) -> Path:
        return self.directory / "catalog.yaml"

    @property
    def scenarios(self) -> Path:
        return self.directory / "scenarios"

    @property
    def databases_file(self) -> Path:
        return self.directory / "databases.json"

    def databases(self) -> list[DatabasePlan]:
        return [DatabasePlan(**d) for d in json.loads(self.databases_file.read_text())]


def service_names() -> list[tuple[str, str]]:
    """``(service, module)`` for the 200 services: ``payment-api`` belongs to ``payment``."""
    return [(f"{module}-{role}", module) for module in MODULES for role in ROLES][:SERVICES]


def generate(directory: Path = DEFAULT_DIR, seed: int = SEED) -> CaseStudy:
    """Write the case study's files into ``directory`` (replacing earlier ones); the same seed, the same bytes."""
    rng = random.Random(seed)
    services = service_names()
    names = [s for s, _ in services]
    behind = set(rng.sample(names, round(SERVICES * BEHIND_SHARE)))
    edited = set(rng.sample(sorted(set(names) - behind), EDITED_CONFIGS))
    topology_services, catalog, plans = [], {}, []
    for name, module in services:
        production = rng.choice(VERSIONS[1:])
        baseline = VERSIONS[VERSIONS.index(production) - 1] if name in behind else production
        test_config = _test_config(rng, name, production)
        baseline_config = _test_config(random.Random(f"{seed}:{name}:{baseline}"), name, baseline)
        if name in edited:
            baseline_config = {**test_config, f"{_key(name)}_timeout_ms": "9999"}  # edited by hand
        elif name not in behind:
            baseline_config = test_config
        database = name.replace("-", "_")
        topology_services.append(
            {
                "name": name,
                "module": module,
                "database": database,
                "baseline_version": baseline,
                "production_version": production,
                "test_config": test_config,
                "production_config": _production_config(rng, name),
                "baseline_test_config": baseline_config,
            }
        )
        catalog[name] = [{"version": v, "start_delay_s": 0.2} for v in VERSIONS]
        plans.append(_database_plan(rng, name, database))
    projects = _projects(rng, names)
    topology = {
        "environments": {
            "production": {"db_prefix": "prod", "instances": 2},
            "baseline": {"db_prefix": "baseline", "instances": 2},
        },
        "services": topology_services,
        "project_environments": projects,
    }
    directory.mkdir(parents=True, exist_ok=True)
    study = CaseStudy(directory)
    header = f"# Generated by local_stack.case_study (seed {seed}); do not edit: generate again instead.\n"
    study.topology.write_text(header + yaml.safe_dump(topology, sort_keys=False))
    study.catalog.write_text(header + yaml.safe_dump({"services": catalog}, sort_keys=False))
    study.databases_file.write_text(json.dumps([asdict(p) for p in plans], indent=1) + "\n")
    _write_scenarios(rng, study.scenarios, services, header)
    return study


def _key(name: str) -> str:
    return name.replace("-", "_")


def _test_config(rng: random.Random, name: str, version: str) -> dict[str, str]:
    key = _key(name)
    config = {
        f"{key}_timeout_ms": str(rng.choice((500, 800, 1000, 2000))),
        f"{key}_mode": "test",
        f"{key}_release": version,
        f"{key}_db_pool": str(rng.randint(2, 10)),
    }
    for i in range(rng.randint(0, 4)):
        config[f"{key}_feature_{i}"] = rng.choice(("on", "off"))
    return config


def _production_config(rng: random.Random, name: str) -> dict[str, str]:
    key = _key(name)
    return {
        f"{key}_timeout_ms": str(rng.choice((300, 500, 800))),
        f"{key}_mode": "production",
        f"{key}_endpoint": f"https://{name}.prod.example",
        f"{key}_db_pool": str(rng.randint(10, 50)),
    }


def _database_plan(rng: random.Random, service: str, database: str) -> DatabasePlan:
    families = list(SCHEMA_FAMILIES)
    family = rng.choices(families, weights=[SCHEMA_FAMILIES[f][2] for f in families])[0]
    base, ahead, _ = SCHEMA_FAMILIES[family]
    production = ahead if rng.random() < SCHEMA_AHEAD_SHARE else base
    return DatabasePlan(service, database, family, base, production)


def _projects(rng: random.Random, names: list[str]) -> list[dict[str, Any]]:
    projects = []
    for i in range(1, PROJECTS + 1):
        overrides = sorted(rng.sample(names, rng.randint(2, 5)))
        projects.append(
            {
                "name": f"proj-{i:02d}",
                "services": {
                    s: VERSIONS[-1] for s in overrides
                },  # the newest version: what the project builds
            }
        )
    return projects


def _write_scenarios(rng: random.Random, folder: Path, services: list[tuple[str, str]], header: str) -> None:
    """300 scenarios in 10 suite files: each a chain of 2-4 calls across modules through the gateway."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.yaml"):
        old.unlink()
    per_file = SCENARIOS // 10
    for f in range(10):
        scenarios = []
        for n in range(per_file):
            chain = rng.sample(services, rng.randint(2, 4))
            number = f * per_file + n + 1
            scenarios.append(
                {
                    "name": f"flow-{number:03d}",
                    "description": "A business flow across " + ", ".join(m for _, m in chain) + ".",
                    "tags": ["smoke"] if number % 10 == 1 else [chain[0][1]],
                    "steps": [_step(service, module) for service, module in chain],
                }
            )
        suite = {"description": f"Case-study flows, part {f + 1} of 10 (generated).", "scenarios": scenarios}
        (folder / f"flows-{f + 1:02d}.yaml").write_text(header + yaml.safe_dump(suite, sort_keys=False))


def _step(service: str, module: str) -> dict[str, Any]:
    return {
        "name": f"ask {service}",
        "module": module,
        "interface": "GET /health",
        "path": f"/{service}/health",
        "retry": {"count": 2, "backoff_ms": 100},
        "assert": {
            "status": 200,
            "max_ms": 2000,
            "json": [{"path": "$.status", "equals": "ok"}, {"path": "$.service", "equals": service}],
        },
    }


# --- databases ---------------------------------------------------------------------------------


def template_name(family: str, version: str) -> str:
    return "bg_template_" + f"{family}_{version}".replace(".", "_").replace("-", "_")


@dataclass(frozen=True)
class DatabaseTimes:
    templates_s: float
    databases_s: float
    created: int
    kept: int


def create_databases(
    pg: Any,
    plans: Iterable[DatabasePlan],
    *,
    prefixes: Iterable[str] = ("prod", "baseline"),
    workers: int = 4,
) -> DatabaseTimes:
    """Create every service database (``<prefix>_<database>``) from its family's template; a database
    that exists already is left as it is. Returns how long the templates and the copies took."""
    import psycopg2

    plans = list(plans)
    prefixes = list(prefixes)
    t0 = time.monotonic()
    needed = sorted({(p.family, p.version(prefix)) for p in plans for prefix in prefixes})
    for family, version in needed:
        _create_template(pg, family, version)
    t1 = time.monotonic()
    admin = psycopg2.connect(pg.uri("postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database")
        existing = {r[0] for r in cur.fetchall()}
    admin.close()
    todo = [(prefix, p) for p in plans for prefix in prefixes if f"{prefix}_{p.database}" not in existing]

    def create(item: tuple[str, DatabasePlan]) -> None:
        prefix, plan = item
        name = f"{prefix}_{plan.database}"
        conn = psycopg2.connect(pg.uri("postgres"))
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(
                    f'CREATE DATABASE "{name}" TEMPLATE "{template_name(plan.family, plan.version(prefix))}" '
                    "STRATEGY FILE_COPY"
                )
        finally:
            conn.close()
        own = psycopg2.connect(pg.uri(name))
        try:  # a table of the service's own: no two service schemas are the same
            with own, own.cursor() as cur:
                cur.execute(
                    f'CREATE TABLE public."{plan.database}_outbox" (id bigint GENERATED ALWAYS AS IDENTITY '
                    "PRIMARY KEY, topic text NOT NULL, payload jsonb NOT NULL, created_at timestamptz NOT NULL "
                    "DEFAULT now())"
                )
                cur.execute(
                    f"COMMENT ON DATABASE \"{name}\" IS 'service {plan.service}, {plan.family} schema'"
                )
        finally:
            own.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(create, todo))
    return DatabaseTimes(t1 - t0, time.monotonic() - t1, len(todo), len(plans) * len(prefixes) - len(todo))


def _create_template(pg: Any, family: str, version: str) -> None:
    """Load one schema file into its template database (once; kept closed to connections)."""
    import psycopg2
    import psycopg2.errors

    name = template_name(family, version)
    admin = psycopg2.connect(pg.uri("postgres"))
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT datistemplate FROM pg_database WHERE datname = %s", (name,))
            found = cur.fetchone()
            if found is None:
                try:
                    cur.execute(f'CREATE DATABASE "{name}"')
                except psycopg2.errors.DuplicateDatabase:
                    found = (False,)  # another process is loading it at this moment
            if found is not None:
                _wait_for_template(cur, name)
                return
        sql = (SCHEMAS_DIR / family / f"{version}.sql").read_text(encoding="utf-8")
        conn = psycopg2.connect(pg.uri(name))
        try:
            with conn, conn.cursor() as cur:
                cur.execute(sql)
        except Exception:
            conn.close()
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE "{name}"')  # never a half-loaded template
            raise
        conn.close()
        with admin.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false IS_TEMPLATE true')
    finally:
        admin.close()


def _wait_for_template(cur: Any, name: str, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        cur.execute("SELECT datistemplate FROM pg_database WHERE datname = %s", (name,))
        row = cur.fetchone()
        if row is None:
            raise RuntimeError(f"template database {name} vanished while another process was loading it")
        if row[0]:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"template database {name} is not a template after {timeout_s:.0f} s: drop it")
        time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    """``python -m local_stack.case_study [DIR]``: generate the files and say where they are."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    study = generate(Path(args[0]) if args else DEFAULT_DIR)
    print(f"case study generated in {study.directory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
