"""Every error Baseline Guard raises, under one root. No Airflow import, so engines can raise them.

Two families matter to the DAGs:

- :class:`RetryCannotHelp`: bad input, safety refusals, corrupt data, a rollout that already
  rolled back. ``dag_defaults.default_args`` makes these fail the task at once instead of
  burning retries.
- everything else is an outside system that may answer next time: retried with backoff.

Messages say what was wrong and what is expected, and never carry a password.
"""

from __future__ import annotations


class BaselineGuardError(Exception):
    """Base class of the project's own errors."""


class RetryCannotHelp(BaselineGuardError):
    """A failure no retry can fix: the task fails at once (see ``dag_defaults.NO_RETRY_FOR``)."""


# -- input and safety ---------------------------------------------------------------------------


class InvalidInput(RetryCannotHelp, ValueError):
    """Input is malformed; the message says what was wrong and what is expected."""


class ProductionWriteRefused(RetryCannotHelp):
    """An action would write to an environment of kind ``production``: never allowed."""


class TargetNotIdentified(ProductionWriteRefused):
    """The restore target's server could not be identified, so it cannot be told apart from production."""


# -- outside systems -------------------------------------------------------------------------


class EnvironmentApiError(BaselineGuardError):
    """The environment API answered with an error, or could not be reached.

    :param call: what was asked, e.g. ``deploy baseline/quote#0``
    :param status: HTTP status, or None when no answer came
    :param detail: the server's explanation (or the transport error)
    """

    def __init__(self, call: str, status: int | None, detail: str) -> None:
        self.call = call
        self.status = status
        self.detail = detail
        where = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"environment API call '{call}' failed ({where}): {detail}")


class EnvironmentApiUnavailable(EnvironmentApiError):
    """No answer or a 5xx from the environment API: the hook retries these, then raises the last one."""


class NotificationFailed(BaselineGuardError):
    """A notification channel did not accept the message."""


# -- test-data backup and restore ----------------------------------------------------------------


class BackupError(BaselineGuardError):
    """A backup or restore could not be completed; nothing half-written was left behind."""


class PermanentBackupError(BackupError, RetryCannotHelp):
    """A backup failure no retry can fix (corrupt or tampered dump, wrong tools, a mismatched restore)."""


class ToolVersionError(PermanentBackupError):
    """A PostgreSQL client tool is too old for the server or the archive."""


class PgToolFailed(BackupError):
    """``pg_dump`` or ``pg_restore`` exited non-zero; the message carries its (password-free) stderr."""


class BackupExists(BackupError):
    """The target key is already taken and may not be overwritten."""


class BackupNotFound(BackupError, InvalidInput):
    """No backup (manifest) matches the selector."""


class ManifestRejected(PermanentBackupError):
    """A backup's manifest cannot be built from what it was given; the backup's uploaded objects were deleted."""


class ManifestMismatch(PermanentBackupError):
    """A manifest read back names another environment or backup than the one it is stored as."""


class ChecksumMismatch(PermanentBackupError):
    """The object read back does not match the SHA-256 or size recorded at backup time."""


class RestoreVerificationFailed(PermanentBackupError):
    """The restored database does not hold the tables or rows the manifest recorded."""


class RestoreAborted(PermanentBackupError):
    """An environment restore stopped before the swap: no database was replaced."""


class DatabaseBusy(BackupError):
    """A database still had sessions when the swap's bounded wait ran out; nothing was swapped."""


class RestoreDrillFailed(PermanentBackupError):
    """A drill's backup could not be restored and verified; the message names each database and why."""


# -- schema sync --------------------------------------------------------------------------------


class SchemaSyncError(BaselineGuardError):
    """Base class of schema sync failures."""


class DatabaseUnreachable(SchemaSyncError):
    """A database could not be reached or logged into; the message names which one."""


class SchemaApplyFailed(SchemaSyncError):
    """A statement failed while applying; the transaction was rolled back, the target is unchanged."""

    def __init__(self, message: str, *, statement: str) -> None:
        super().__init__(message)
        self.statement = statement


# -- code sync and business checks ---------------------------------------------------------------


class RolloutFailed(RetryCannotHelp):
    """An instance failed its rollout; it was rolled back and put back into rotation."""


class RolloutStuck(RetryCannotHelp):
    """An instance could not be rolled back: it is left OUT of rotation and needs a person."""


class SmokeCheckFailed(BaselineGuardError):
    """A new instance answered a smoke-check request with an error, or not at all."""


class BusinessChecksFailed(BaselineGuardError):
    """At least one scenario failed; the message names scenario, module and interface."""


class ExpressionError(InvalidInput):
    """A check expression is malformed, names an unknown variable, or does arithmetic on a non-number."""


class TriggerError(BaselineGuardError):
    """The CI client could not trigger or follow a run; the message says why."""
