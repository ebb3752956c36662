"""Errors of the backup engine. No Airflow import: operators let them propagate as task failures."""

from __future__ import annotations

from baseline_guard.errors import BaselineGuardError, InvalidInput


class BackupError(BaselineGuardError):
    """A backup or restore could not be completed; nothing half-written was left behind."""


class ToolVersionError(BackupError):
    """A PostgreSQL client tool is too old for the server or the archive. Retrying cannot help."""


class PgToolFailed(BackupError):
    """``pg_dump`` or ``pg_restore`` exited non-zero; the message carries its (password-free) stderr."""


class BackupExists(BackupError):
    """The target key is already taken and may not be overwritten."""


class BackupNotFound(BackupError, InvalidInput):
    """No backup (manifest) matches the selector."""


class ChecksumMismatch(BackupError):
    """The object read back does not match the SHA-256 or size recorded at backup time."""


class RestoreVerificationFailed(BackupError):
    """The restored database does not hold the tables or rows the manifest recorded."""
