"""Errors of the backup engine. No Airflow import: operators let them propagate as task failures."""

from __future__ import annotations

from baseline_guard.errors import BaselineGuardError, InvalidInput, ProductionWriteRefused


class BackupError(BaselineGuardError):
    """A backup or restore could not be completed; nothing half-written was left behind."""


class PermanentBackupError(BackupError):
    """A failure no retry can fix (corrupt or tampered dump, wrong tools, a mismatched restore).

    Listed in ``dag_defaults.NO_RETRY_FOR``: the task fails at once instead of retrying.
    """


class ToolVersionError(PermanentBackupError):
    """A PostgreSQL client tool is too old for the server or the archive. Retrying cannot help."""


class PgToolFailed(BackupError):
    """``pg_dump`` or ``pg_restore`` exited non-zero; the message carries its (password-free) stderr."""


class BackupExists(BackupError):
    """The target key is already taken and may not be overwritten."""


class BackupNotFound(BackupError, InvalidInput):
    """No backup (manifest) matches the selector."""


class ChecksumMismatch(PermanentBackupError):
    """The object read back does not match the SHA-256 or size recorded at backup time."""


class RestoreVerificationFailed(PermanentBackupError):
    """The restored database does not hold the tables or rows the manifest recorded."""


class TargetNotIdentified(ProductionWriteRefused):
    """The restore target's server could not be identified, so it cannot be told apart from production."""


class RestoreAborted(PermanentBackupError):
    """An environment restore stopped before the swap: no database was replaced."""


class DatabaseBusy(BackupError):
    """A database still had sessions when the swap's bounded wait ran out; nothing was swapped."""
