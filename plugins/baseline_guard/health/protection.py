"""Slots of the health report that other parts of Baseline Guard fill: drift, held approvals, last
backup, last proven restore.

A provider is a function ``(environment names, now) -> {environment: {slot: ProtectionItem}}``;
register it with :func:`register`. Until a provider fills a slot it reads "not available".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field

SLOTS = ("drift", "held_approvals", "last_backup", "last_proven_restore")
Slot = Literal["drift", "held_approvals", "last_backup", "last_proven_restore"]


class ProtectionItem(BaseModel):
    """One protection fact about an environment, e.g. the last proven restore."""

    status: Literal["not_available", "ok", "attention"] = "not_available"
    summary: str | None = Field(
        default=None, description="One line a person reads, e.g. '2 services behind'."
    )
    since: datetime | None = Field(
        default=None, description="Since when this holds (drift, a held approval)."
    )
    at: datetime | None = Field(default=None, description="When it happened (a backup, a proven restore).")
    link: str | None = None
    details: list[dict[str, Any]] = Field(default_factory=list)


class Protection(BaseModel):
    drift: ProtectionItem = Field(default_factory=ProtectionItem)
    held_approvals: ProtectionItem = Field(default_factory=ProtectionItem)
    last_backup: ProtectionItem = Field(default_factory=ProtectionItem)
    last_proven_restore: ProtectionItem = Field(default_factory=ProtectionItem)


log = logging.getLogger(__name__)

Provider = Callable[[Sequence[str], datetime], Mapping[str, Mapping[Slot, ProtectionItem]]]
_PROVIDERS: list[Provider] = []
_P = TypeVar("_P", bound=Provider)


def register(provider: _P) -> _P:
    """Add a provider (usable as a decorator); later providers win on the same slot."""
    _PROVIDERS.append(provider)
    return provider


def providers() -> list[Provider]:
    return list(_PROVIDERS)


def collect(environments: Sequence[str], now: datetime, sources: Sequence[Provider]) -> dict[str, Protection]:
    """Every environment's protection slots from the providers; a failing provider leaves its slots
    "not available" (logged) and the report is built all the same."""
    found = {name: Protection() for name in environments}
    for source in sources:
        try:
            provided = source(environments, now)
        except Exception as exc:
            log.warning(
                "protection provider %r failed, its slots stay not available: %s: %s",
                source,
                type(exc).__name__,
                exc,
            )
            continue
        for environment, items in provided.items():
            if environment in found:
                for slot, item in items.items():
                    setattr(found[environment], slot, item)
    return found
