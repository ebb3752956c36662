"""The release catalog: each declared version of a service and how it behaves when it runs."""

from __future__ import annotations

import logging
from typing import Any

from baseline_guard.environment_contract import CatalogVersion

from reference_env.errors import Conflict

log = logging.getLogger(__name__)


class Catalog:
    """The versions from ``catalog.yaml`` plus those declared at run time (the store persists those)."""

    def __init__(self, declared: list[CatalogVersion]) -> None:
        self.entries: dict[tuple[str, str], CatalogVersion] = {(c.service, c.version): c for c in declared}
        self.additions: list[CatalogVersion] = []

    def load(self, saved: dict[str, Any]) -> None:
        self.additions = [CatalogVersion.model_validate(c) for c in saved.get("catalog_additions", [])]
        for entry in self.additions:
            self.entries.setdefault((entry.service, entry.version), entry)

    def to_state(self) -> dict[str, Any]:
        return {"catalog_additions": [c.model_dump(mode="json") for c in self.additions]}

    def declares(self, service: str, version: str) -> bool:
        return (service, version) in self.entries

    def declared(self, service: str, version: str) -> CatalogVersion:
        """The entry of a declared version; an undeclared one is refused (409) with the declared ones."""
        entry = self.entries.get((service, version))
        if entry is None:
            declared = sorted(v for s, v in self.entries if s == service)
            raise Conflict(
                f"version {version!r} of service {service!r} is not declared in the release catalog; "
                f"declared versions: {declared}"
            )
        return entry

    def declare(self, entry: CatalogVersion) -> bool:
        """Add a version; False when the same entry is already there, 409 when a different one is."""
        existing = self.entries.get((entry.service, entry.version))
        if existing is not None:
            if existing == entry:
                return False
            raise Conflict(
                f"version {entry.version!r} of {entry.service!r} is already declared with a different behaviour: "
                f"{existing.model_dump(mode='json')}"
            )
        self.entries[(entry.service, entry.version)] = entry
        self.additions.append(entry)
        log.info("catalog: declared %s %s (%s)", entry.service, entry.version, entry.behaviour.value)
        return True
