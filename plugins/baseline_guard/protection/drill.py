"""Restore drill: prove a backup restorable without touching the environment's own databases.

For each database of a backup, :func:`drill_environment` uses the restore engine's
:func:`~baseline_guard.backup.restore.prepare_restore` with a *scratch target* ``<db>__drill_scratch``
(never created): the engine records, creates and verifies its copy
``<db>__drill_scratch__restore_<id>`` on the same server as the environment's database (SHA-256 and
size while streaming, tables and rows against the manifest). The drill then runs a smoke query
on that scratch database and drops it through the ledger (name and OID), so a crashed drill is
cleaned up by the next one and nothing else is ever dropped. The environment's own databases are
only identified, never written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from os import PathLike
from typing import TYPE_CHECKING

from psycopg2 import sql

from baseline_guard.backup import ledger
from baseline_guard.backup.identity import DatabaseIdentity, identify, refuse_production_target
from baseline_guard.backup.manifest import DumpRecord, load_manifest
from baseline_guard.backup.names import derived_name
from baseline_guard.backup.pgtools import PgConnectionInfo, fetch_value
from baseline_guard.backup.restore import ExpectedDump, prepare_restore, refuse_production
from baseline_guard.backup.swap import copy_name
from baseline_guard.environment_contract import EnvironmentKind
from baseline_guard.protection.drill_records import DrilledDatabase, DrillResult

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SCRATCH_TAG = "drill"
SCRATCH_ID = "scratch"

Clock = Callable[[], datetime]


def scratch_target(database: str) -> str:
    """The pseudo-target ``<db>__drill_scratch`` a drill restores for; it is never created itself."""
    return derived_name(database, SCRATCH_TAG, SCRATCH_ID)


def scratch_database(database: str, restore_id: str) -> str:
    """The scratch database a drill of ``database`` creates (the restore engine's copy of the pseudo-target)."""
    return copy_name(scratch_target(database), restore_id)


def drill_environment(
    client: S3Client,
    *,
    bucket: str,
    environment: str,
    backup_id: str,
    targets: Mapping[str, PgConnectionInfo],
    production: Sequence[DatabaseIdentity],
    restore_id: str,
    drill_id: str,
    target_kind: EnvironmentKind | str | None = None,
    maintenance_database: str = "postgres",
    pg_bin_dir: str | PathLike[str] | None = None,
    airflow_run_id: str | None = None,
    clock: Clock = lambda: datetime.now(UTC),
) -> DrillResult:
    """Drill every database of backup ``backup_id`` of ``environment``; never raises for a failed drill.

    :param targets: database name -> connection to the environment's own database (the scratch
        database is created on the same server; the database itself is only identified)
    :param production: every database the environment API lists for production: an environment
        database that is one of them is refused, whatever the environment is called
    :param target_kind: kind of the environment; ``production`` is refused before anything else
    """
    started = clock()
    manifest = load_manifest(client, bucket, environment, backup_id)
    refuse_production(target_kind, environment)
    databases = [
        _drill_database(
            client,
            bucket=bucket,
            record=record,
            target=targets.get(record.database),
            production=production,
            restore_id=restore_id,
            target_kind=target_kind,
            maintenance_database=maintenance_database,
            pg_bin_dir=pg_bin_dir,
        )
        for record in manifest.databases
    ]
    return DrillResult(
        environment=environment,
        drill_id=drill_id,
        backup_id=manifest.backup_id,
        backup_finished_at=manifest.finished_at,
        started_at=started,
        finished_at=clock(),
        passed=all(d.passed for d in databases),
        databases=databases,
        airflow_run_id=airflow_run_id,
    )


def _drill_database(
    client: S3Client,
    *,
    bucket: str,
    record: DumpRecord,
    target: PgConnectionInfo | None,
    production: Sequence[DatabaseIdentity],
    restore_id: str,
    target_kind: EnvironmentKind | str | None,
    maintenance_database: str,
    pg_bin_dir: str | PathLike[str] | None,
) -> DrilledDatabase:
    scratch = scratch_database(record.database, restore_id)
    outcome = DrilledDatabase(database=record.database, scratch=scratch, key=record.key, passed=False)
    if target is None:
        return outcome.model_copy(
            update={"error": f"no connection for database {record.database}: the environment API lists none"}
        )
    try:
        refuse_production_target(identify(target, maintenance_database), production)
    except Exception as err:
        return outcome.model_copy(update={"error": _reason(err)})
    scratch_info = target.with_database(scratch_target(record.database))
    try:
        prepared = prepare_restore(
            client,
            bucket=bucket,
            key=record.key,
            expected=ExpectedDump.from_record(record),
            target=scratch_info,
            production=production,
            restore_id=restore_id,
            target_kind=target_kind,
            maintenance_database=maintenance_database,
            no_owner=True,
            pg_bin_dir=pg_bin_dir,
        )
        smoke = smoke_query(target.with_database(prepared.copy), prepared.row_counts)
        outcome = outcome.model_copy(
            update={
                "sha256": prepared.sha256,
                "size": prepared.size,
                "tables": prepared.table_count,
                "rows": sum(prepared.row_counts.values()),
                "smoke": smoke,
                "passed": True,
            }
        )
    except Exception as err:
        outcome = outcome.model_copy(update={"error": _reason(err)})
    dropped, drop_error = _drop_scratch(target, record.database, scratch, maintenance_database)
    if not dropped:
        return outcome.model_copy(
            update={
                "passed": False,
                "error": outcome.error or f"scratch database {scratch} not dropped: {drop_error}",
            }
        )
    return outcome.model_copy(update={"scratch_dropped": True})


def smoke_query(scratch: PgConnectionInfo, row_counts: Mapping[str, int]) -> str:
    """Read one row of the largest table of the restored scratch database (read-only); say what was read."""
    conn = scratch.connect()
    try:
        conn.set_session(readonly=True)
        with conn.cursor() as cur:
            filled = sorted(((n, t) for t, n in row_counts.items() if n > 0), reverse=True)
            if not filled:
                cur.execute("SELECT count(*) FROM pg_catalog.pg_class")
                return f"no rows to read; catalog answers ({fetch_value(cur)} relations)"
            rows, table = filled[0]
            schema, _, name = table.partition(".")
            cur.execute(
                sql.SQL("SELECT * FROM {}.{} LIMIT 1").format(sql.Identifier(schema), sql.Identifier(name))
            )
            if cur.fetchone() is None:
                raise RuntimeError(
                    f"smoke query read no row from {table}, which the manifest says holds {rows}"
                )
            return f"read a row of {table} ({rows} rows)"
    finally:
        conn.close()


def _drop_scratch(
    target: PgConnectionInfo, database: str, scratch: str, maintenance_database: str
) -> tuple[bool, str]:
    """Drop what the ledger recorded for the scratch target; True when ``scratch`` no longer exists."""
    try:
        admin = target.connect(maintenance_database)
    except Exception as err:
        return False, _reason(err)
    try:
        admin.autocommit = True
        ledger.ensure_ledger(admin)
        ledger.take_lock(admin, scratch_target(database))
        ledger.clean_up_target(admin, scratch_target(database))
        gone = ledger.database_oid(admin, scratch) is None
        return gone, "" if gone else "it still exists after the ledger clean-up"
    except Exception as err:
        return False, _reason(err)
    finally:
        with contextlib.suppress(Exception):
            admin.close()


def _reason(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).strip()[:1500]}"
