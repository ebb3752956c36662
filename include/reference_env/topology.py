"""Load and check the sandbox topology (``topology.yaml``) and release catalog (``catalog.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from baseline_guard.environment_contract import CatalogVersion
from pydantic import ValidationError

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_TOPOLOGY = PACKAGE_DIR / "topology.yaml"
DEFAULT_CATALOG = PACKAGE_DIR / "catalog.yaml"
HOTELS_DATA = PACKAGE_DIR / "data" / "hotels.json"

PRODUCTION = "production"
BASELINE = "baseline"


class TopologyError(ValueError):
    """The topology or catalog file is malformed; the message names the file, the entry and what is expected."""


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    database: str
    baseline_version: str
    production_version: str
    test_config: dict[str, str] = field(default_factory=dict)
    production_config: dict[str, str] = field(default_factory=dict)
    # the test config the baseline runs when the sandbox is seeded; None: none applied yet
    baseline_test_config: dict[str, str] | None = None


@dataclass(frozen=True)
class ProjectSpec:
    """A project environment seeded with the sandbox: the services it overrides, at their versions."""

    name: str
    services: dict[str, str]
    owners_notify_url: str | None = None


@dataclass(frozen=True)
class Topology:
    services: tuple[ServiceSpec, ...]
    db_prefixes: dict[str, str]
    instances: dict[str, int]
    projects: tuple[ProjectSpec, ...] = ()

    def service(self, name: str) -> ServiceSpec | None:
        return next((s for s in self.services if s.name == name), None)

    @property
    def service_names(self) -> list[str]:
        return [s.name for s in self.services]


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise TopologyError(f"{path}: file not found") from exc
    except yaml.YAMLError as exc:
        raise TopologyError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise TopologyError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _str_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TopologyError(f"{where}: expected a mapping of strings, got {type(value).__name__}")
    return {str(k): str(v) for k, v in value.items()}


def load_topology(path: Path = DEFAULT_TOPOLOGY) -> Topology:
    data = _read_yaml(path)
    envs = data.get("environments") or {}
    db_prefixes: dict[str, str] = {}
    instances: dict[str, int] = {}
    for kind in (PRODUCTION, BASELINE):
        spec = envs.get(kind)
        if not isinstance(spec, dict) or "db_prefix" not in spec:
            raise TopologyError(f"{path}: environments.{kind} must be a mapping with a db_prefix")
        db_prefixes[kind] = str(spec["db_prefix"])
        count = spec.get("instances", 2)
        if not isinstance(count, int) or not 1 <= count <= 4:
            raise TopologyError(
                f"{path}: environments.{kind}.instances must be an integer 1..4, got {count!r}"
            )
        instances[kind] = count
    raw_services = data.get("services")
    if not isinstance(raw_services, list) or not raw_services:
        raise TopologyError(f"{path}: 'services' must be a non-empty list")
    services: list[ServiceSpec] = []
    for i, raw in enumerate(raw_services):
        where = f"{path}: services[{i}]"
        missing = [
            k
            for k in ("name", "module", "database", "baseline_version", "production_version")
            if not isinstance(raw, dict) or k not in raw
        ]
        if missing:
            raise TopologyError(f"{where}: missing keys {missing}")
        services.append(
            ServiceSpec(
                name=str(raw["name"]),
                module=str(raw["module"]),
                database=str(raw["database"]),
                baseline_version=str(raw["baseline_version"]),
                production_version=str(raw["production_version"]),
                test_config=_str_map(raw.get("test_config"), f"{where}.test_config"),
                production_config=_str_map(raw.get("production_config"), f"{where}.production_config"),
                baseline_test_config=(
                    _str_map(raw["baseline_test_config"], f"{where}.baseline_test_config")
                    if raw.get("baseline_test_config") is not None
                    else None
                ),
            )
        )
    names = [s.name for s in services]
    if len(set(names)) != len(names):
        raise TopologyError(f"{path}: service names must be unique, got {names}")
    projects = _projects(path, data.get("project_environments"), set(names))
    return Topology(services=tuple(services), db_prefixes=db_prefixes, instances=instances, projects=projects)


def _projects(path: Path, raw: Any, services: set[str]) -> tuple[ProjectSpec, ...]:
    """``project_environments``: ``[{name, services: {service: version}, owners_notify_url?}]`` (optional)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise TopologyError(f"{path}: 'project_environments' must be a list, got {type(raw).__name__}")
    projects: list[ProjectSpec] = []
    for i, entry in enumerate(raw):
        where = f"{path}: project_environments[{i}]"
        if (
            not isinstance(entry, dict)
            or not entry.get("name")
            or not isinstance(entry.get("services"), dict)
        ):
            raise TopologyError(f"{where}: expected a mapping with a name and services: {{service: version}}")
        overrides = _str_map(entry["services"], f"{where}.services")
        unknown = sorted(set(overrides) - services)
        if not overrides or unknown:
            raise TopologyError(
                f"{where}: services must name at least one service of the topology; unknown: {unknown}"
            )
        name = str(entry["name"])
        if name in (PRODUCTION, BASELINE) or name in {p.name for p in projects}:
            raise TopologyError(f"{where}: environment name {name!r} is taken")
        url = entry.get("owners_notify_url")
        projects.append(
            ProjectSpec(name=name, services=overrides, owners_notify_url=str(url) if url else None)
        )
    return tuple(projects)


def load_catalog(path: Path, topology: Topology) -> list[CatalogVersion]:
    """The declared versions; every service of the topology must declare its initial versions."""
    data = _read_yaml(path)
    raw_services = data.get("services")
    if not isinstance(raw_services, dict):
        raise TopologyError(f"{path}: 'services' must be a mapping of service name -> list of versions")
    catalog: list[CatalogVersion] = []
    for service, versions in raw_services.items():
        if topology.service(service) is None:
            raise TopologyError(
                f"{path}: service {service!r} is not in the topology ({topology.service_names})"
            )
        for i, raw in enumerate(versions or []):
            try:
                catalog.append(
                    CatalogVersion.model_validate({**raw, "service": service, "version": str(raw["version"])})
                )
            except (ValidationError, KeyError, TypeError) as exc:
                raise TopologyError(
                    f"{path}: services.{service}[{i}] is not a valid catalog version: {exc}"
                ) from exc
    declared = {(c.service, c.version) for c in catalog}
    for spec in topology.services:
        for version in (spec.baseline_version, spec.production_version):
            if (spec.name, version) not in declared:
                raise TopologyError(
                    f"{path}: initial version {version} of {spec.name!r} is not declared in the catalog"
                )
    return catalog
