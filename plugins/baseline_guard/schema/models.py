"""Result types of the schema sync engine."""

from __future__ import annotations

from dataclasses import dataclass, field

from baseline_guard.schema.snapshot import Residual, Snapshot


@dataclass(frozen=True)
class ClassifiedStatement:
    """One DDL statement of a plan, with the verdict a person can read.

    :param sql: the statement, as the diff library wrote it
    :param safe: True when it may be applied without a person looking at it
    :param reason: why it is safe or why it is held, in words
    :param required: False for a step the safe subset does not need (migra re-creating an
        unchanged view only because its table has held changes); it runs only with the held ones
    """

    sql: str
    safe: bool
    reason: str
    required: bool = True

    def as_dict(self) -> dict[str, str]:
        return {"sql": self.sql, "reason": self.reason}


@dataclass(frozen=True)
class SchemaDiff:
    """The plan that turns the target schema into the source's, in a valid order."""

    statements: list[ClassifiedStatement] = field(default_factory=list)
    source_snapshot: Snapshot = field(default_factory=dict, compare=False, repr=False)

    @property
    def safe(self) -> list[ClassifiedStatement]:
        """What the hourly sync applies: safe statements the safe subset needs, in plan order."""
        return [s for s in self.statements if s.safe and s.required]

    @property
    def destructive(self) -> list[ClassifiedStatement]:
        return [s for s in self.statements if not s.safe]

    def __bool__(self) -> bool:
        return bool(self.statements)


@dataclass(frozen=True)
class SyncResult:
    """What one sync did: statements applied, statements held for a person, and what is still not synced.

    :param not_synced: every difference the independent check (production's and the baseline's
        schema dumps, compared per object) still finds after the apply, held changes included
    """

    applied: list[ClassifiedStatement] = field(default_factory=list)
    held: list[ClassifiedStatement] = field(default_factory=list)
    not_synced: list[Residual] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        """True when nothing but column order (which needs a rebuild) differs from production."""
        return all(r.needs_rebuild for r in self.not_synced)
