"""Choosing the databases a test-data backup or restore works on. No Airflow import."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from baseline_guard.environment_contract import Database
from baseline_guard.errors import InvalidInput


def choose_databases(
    available: Iterable[Database], wanted: Sequence[str], environment: str
) -> list[Database]:
    """The databases named in ``wanted`` (all of ``available`` when empty), or a clear error."""
    available = list(available)
    if not available:
        raise InvalidInput(f"environment {environment!r} has no databases to work on")
    if not wanted:
        return available
    by_name = {d.name: d for d in available}
    unknown = [w for w in wanted if w not in by_name]
    if unknown:
        raise InvalidInput(
            f"{', '.join(map(repr, unknown))} not a database of environment {environment!r}; "
            f"expected some of: {', '.join(sorted(by_name))}"
        )
    return [by_name[w] for w in dict.fromkeys(wanted)]
