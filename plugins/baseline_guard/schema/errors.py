"""Errors of the schema sync engine (no Airflow import). Messages never contain a password."""

from __future__ import annotations

from baseline_guard.errors import BaselineGuardError


class SchemaSyncError(BaselineGuardError):
    """Base class of schema sync failures."""


class DatabaseUnreachable(SchemaSyncError):
    """A database could not be reached or logged into; the message names which one."""


class SchemaApplyFailed(SchemaSyncError):
    """A statement failed while applying; the transaction was rolled back, the target is unchanged."""

    def __init__(self, message: str, *, statement: str) -> None:
        super().__init__(message)
        self.statement = statement
