"""Operators for test-data backup and restore: thin wrappers over :mod:`baseline_guard.backup`.

A backup of an environment is one ``PgDumpToS3Operator`` per database (mapped), then one
``WriteBackupManifestOperator``: the manifest is written last and is the commit point. A restore
is ``RestoreFromBackupOperator`` (by backup id or ``latest``) or ``S3ToPgRestoreOperator`` (by key
and checksum), each into a verified copy, then ``SwapRestoredDatabasesOperator`` swapping every copy
in at once (or none). ``BackupRetentionOperator`` deletes old backups and cleans up leftovers.
Passwords come from Airflow connections and reach the tools only in their own minimal
environment; they are never logged, never in XCom.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator

from baseline_guard.backup import (
    ExpectedDump,
    PgConnectionInfo,
    Progress,
    ServerSideEncryption,
    backup_database,
    commit_backup,
    dump_key,
    load_manifest,
    manifest_key,
    resolve_backup_id,
)
from baseline_guard.backup.identity import DatabaseIdentity, read_system_identifier
from baseline_guard.backup.restore import prepare_restore, restore_id_for
from baseline_guard.backup.retention import apply_retention
from baseline_guard.backup.s3io import MIB
from baseline_guard.backup.swap import swap_restored
from baseline_guard.environment_contract import EnvironmentKind
from baseline_guard.errors import InvalidInput

PG_BIN_DIR_ENV = "BASELINE_GUARD_PG_BIN_DIR"


def pg_connection_info(postgres_conn_id: str, database: str | None = None) -> PgConnectionInfo:
    """Connection details from an Airflow postgres connection (``schema`` is the database)."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    conn = PostgresHook.get_connection(postgres_conn_id)
    name = database or conn.schema
    if not name:
        raise InvalidInput(f"connection {postgres_conn_id} names no database (schema) and none was given")
    extra = conn.extra_dejson
    return PgConnectionInfo(
        host=conn.host or "localhost",
        port=int(conn.port or 5432),
        user=conn.login or "postgres",
        password=conn.password or None,
        database=name,
        sslmode=extra.get("sslmode"),
    )


class BackupBaseOperator(BaseOperator):
    """Owns the AWS connection id, the lazily built S3 client, the pg tools dir and progress logging.

    :param aws_conn_id: Airflow connection id of the S3 endpoint
    :param bucket: bucket holding the backups (templated)
    :param pg_bin_dir: directory of pg_dump/pg_restore; default ``$BASELINE_GUARD_PG_BIN_DIR``, else PATH
    :param progress_every_mib: log progress every this many MiB
    """

    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        bucket: str,
        aws_conn_id: str = "aws_default",
        pg_bin_dir: str | None = None,
        progress_every_mib: int = 256,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bucket = bucket
        self.aws_conn_id = aws_conn_id
        self.pg_bin_dir = pg_bin_dir
        self.progress_every_mib = progress_every_mib

    @cached_property
    def s3_client(self) -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id).get_conn()

    @property
    def tools_dir(self) -> str | None:
        return self.pg_bin_dir or os.environ.get(PG_BIN_DIR_ENV) or None

    def progress_logger(self, event: str, **fields: Any) -> Any:
        def log_progress(progress: Progress) -> None:
            self.log.info(event, bytes=progress.bytes_done, mib_per_s=round(progress.rate_mib_s, 1), **fields)

        return log_progress


class PgDumpToS3Operator(BackupBaseOperator):
    """Stream ``pg_dump -Fc`` of one database into S3 (multipart, checksummed, never overwriting).

    The key is ``key`` or, when not given, ``backups/<environment>/<backup_id>/<database>.dump``.
    A retry of the same backup reuses a complete dump after checking its SHA-256.

    :param postgres_conn_id: Airflow connection of the database server (templated)
    :param database: database to dump; default the connection's schema (templated)
    :param key: object key (templated)
    :param environment: environment name, to derive the key (templated)
    :param backup_id: backup id, to derive the key (templated)
    :param service: service owning the database, recorded in the manifest (templated)
    :param compression: ``auto``, ``gzip[:level]``, ``zstd[:level]``, ``lz4[:level]`` or ``none`` (templated)
    :param sse: ``AES256``, ``aws:kms`` or ``none`` (templated)
    :param kms_key_id: KMS key for ``aws:kms`` (templated)
    :param part_size_mib: multipart part size; memory use is about three parts
    :param exact_row_counts: count rows (in the dump's snapshot) instead of planner estimates
    """

    template_fields: Sequence[str] = (
        "postgres_conn_id",
        "database",
        "bucket",
        "key",
        "environment",
        "backup_id",
        "service",
        "compression",
        "sse",
        "kms_key_id",
    )

    def __init__(
        self,
        *,
        postgres_conn_id: str,
        database: str | None = None,
        key: str | None = None,
        environment: str | None = None,
        backup_id: str | None = None,
        service: str | None = None,
        compression: str = "auto",
        sse: str | None = "AES256",
        kms_key_id: str | None = None,
        part_size_mib: int = 16,
        exact_row_counts: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.postgres_conn_id = postgres_conn_id
        self.database = database
        self.key = key
        self.environment = environment
        self.backup_id = backup_id
        self.service = service
        self.compression = compression
        self.sse = sse
        self.kms_key_id = kms_key_id
        self.part_size_mib = part_size_mib
        self.exact_row_counts = exact_row_counts

    def execute(self, context: Any) -> dict[str, Any]:
        source = pg_connection_info(self.postgres_conn_id, self.database)
        key = self.key or self._derived_key(source.database)
        self.log.info(
            "dump starting",
            database=source.database,
            bucket=self.bucket,
            key=key,
            compression=self.compression,
        )
        outcome = backup_database(
            self.s3_client,
            source=source,
            bucket=self.bucket,
            key=key,
            compression=self.compression,
            sse=ServerSideEncryption.parse(self.sse, self.kms_key_id),
            service=self.service,
            part_size=self.part_size_mib * MIB,
            exact_row_counts=self.exact_row_counts,
            pg_bin_dir=self.tools_dir,
            progress=self.progress_logger("dump progress", database=source.database),
            progress_every=self.progress_every_mib * MIB,
        )
        record = outcome.record
        self.log.info(
            "dump uploaded",
            database=record.database,
            key=record.key,
            bytes=record.size,
            sha256=record.sha256,
            tables=record.table_count,
            reused=outcome.reused,
        )
        return {**record.model_dump(mode="json"), "reused": outcome.reused}

    def _derived_key(self, database: str) -> str:
        if not (self.environment and self.backup_id):
            raise InvalidInput("no key given: expected key, or environment and backup_id to derive it")
        return dump_key(self.environment, self.backup_id, database)


class WriteBackupManifestOperator(BackupBaseOperator):
    """Commit a backup: check every expected dump and its record, then write ``manifest.json`` once.

    Returns a summary (backup id, manifest key, per-database key/size/sha256) for downstream tasks.

    :param environment: environment the backup belongs to (templated)
    :param backup_id: the backup's id (templated)
    :param databases: names of the databases the backup must hold (templated)
    :param ci_pipeline_id: CI pipeline that asked for the backup, if any (templated)
    :param sse: ``AES256``, ``aws:kms`` or ``none`` for the manifest (templated)
    :param kms_key_id: KMS key for ``aws:kms`` (templated)
    """

    template_fields: Sequence[str] = (
        "bucket",
        "environment",
        "backup_id",
        "databases",
        "ci_pipeline_id",
        "sse",
        "kms_key_id",
    )

    def __init__(
        self,
        *,
        environment: str,
        backup_id: str,
        databases: list[str],
        ci_pipeline_id: str | None = None,
        sse: str | None = "AES256",
        kms_key_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.environment = environment
        self.backup_id = backup_id
        self.databases = databases
        self.ci_pipeline_id = ci_pipeline_id
        self.sse = sse
        self.kms_key_id = kms_key_id

    def execute(self, context: Any) -> dict[str, Any]:
        manifest = commit_backup(
            self.s3_client,
            self.bucket,
            environment=self.environment,
            backup_id=self.backup_id,
            databases=list(self.databases),
            ci_pipeline_id=self.ci_pipeline_id or None,
            airflow_run_id=context.get("run_id"),
            sse=ServerSideEncryption.parse(self.sse, self.kms_key_id),
        )
        total = sum(d.size for d in manifest.databases)
        self.log.info(
            "backup committed", backup_id=manifest.backup_id, databases=len(manifest.databases), bytes=total
        )
        return {
            "backup_id": manifest.backup_id,
            "environment": manifest.environment,
            "phase": manifest.phase.value,
            "manifest_key": manifest_key(manifest.environment, manifest.backup_id),
            "databases": [
                {"database": d.database, "key": d.key, "size": d.size, "sha256": d.sha256}
                for d in manifest.databases
            ],
        }


def production_identities(env_api_conn_id: str) -> list[DatabaseIdentity]:
    """Every database the environment API lists for an environment of kind production, identified.

    Host, port and name come from the Airflow connection the API names; the server's
    ``system_identifier`` is read over a read-only connection when it can be reached (else the
    comparison falls back to host, port and name).
    """
    from baseline_guard.hooks.environment import EnvironmentHook

    hook = EnvironmentHook(env_api_conn_id)
    identities: list[DatabaseIdentity] = []
    for env in hook.list_environments():
        if env.kind != EnvironmentKind.PRODUCTION:
            continue
        for database in hook.list_databases(env.name):
            try:
                info = pg_connection_info(database.conn_id, database.name)
            except Exception as err:  # no connection on this worker: the name alone still counts
                hook.log.warning("production database %s: %s", database.name, type(err).__name__)
                identities.append(
                    DatabaseIdentity("", 0, database.name, None, f"{env.name}/{database.service}")
                )
                continue
            identities.append(_identify_quietly(info, f"{env.name}/{database.service}"))
    return identities


def _identify_quietly(info: PgConnectionInfo, label: str) -> DatabaseIdentity:
    try:
        sysid = read_system_identifier(info, info.database)
    except Exception:
        sysid = None
    return DatabaseIdentity(info.host, info.port, info.database, sysid, label)


def writable_environment_kind(env_api_conn_id: str, environment: str) -> str:
    """The environment's kind after refusing production; an unknown environment is bad input."""
    from baseline_guard.hooks.environment import EnvironmentApiError, EnvironmentHook

    try:
        return EnvironmentHook(env_api_conn_id).require_writable(environment).kind.value
    except EnvironmentApiError as err:
        if err.status == 404:
            raise InvalidInput(f"environment {environment!r} is not known to the environment API") from err
        raise


def restore_id_of(context: Any) -> str:
    """The run's restore id: the same for every task and try of one run, fresh for a run-less call."""
    run_id = context.get("run_id")
    if not run_id:
        return secrets.token_hex(4)
    dag_id = getattr(context.get("dag"), "dag_id", "") or ""
    return restore_id_for(f"{dag_id}/{run_id}")


class _RestoreOperatorBase(BackupBaseOperator):
    def __init__(
        self,
        *,
        postgres_conn_id: str,
        database: str | None = None,
        target_environment: str | None = None,
        env_api_conn_id: str = "baseline_env_api",
        maintenance_database: str = "postgres",
        no_owner: bool = False,
        swap: bool = True,
        restore_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.postgres_conn_id = postgres_conn_id
        self.database = database
        self.target_environment = target_environment
        self.env_api_conn_id = env_api_conn_id
        self.maintenance_database = maintenance_database
        self.no_owner = no_owner
        self.swap = swap
        self.restore_id = restore_id

    def _target_kind(self) -> str | None:
        """Ask the environment API first: a production target is refused before anything else happens."""
        if not self.target_environment:
            return None
        return writable_environment_kind(self.env_api_conn_id, self.target_environment)

    def _restore(
        self, key: str, expected: ExpectedDump, target_kind: str | None, context: Any
    ) -> dict[str, Any]:
        target = pg_connection_info(self.postgres_conn_id, self.database)
        production = production_identities(self.env_api_conn_id)
        restore_id = self.restore_id or restore_id_of(context)
        self.log.info(
            "restore starting",
            database=target.database,
            bucket=self.bucket,
            key=key,
            environment=self.target_environment,
            restore_id=restore_id,
            production_databases=len(production),
        )
        prepared = prepare_restore(
            self.s3_client,
            bucket=self.bucket,
            key=key,
            expected=expected,
            target=target,
            production=production,
            restore_id=restore_id,
            target_kind=target_kind,
            maintenance_database=self.maintenance_database,
            no_owner=self.no_owner,
            pg_bin_dir=self.tools_dir,
            progress=self.progress_logger("restore progress", database=target.database),
            progress_every=self.progress_every_mib * MIB,
        )
        self.log.info(
            "restored copy verified",
            database=prepared.database,
            copy=prepared.copy,
            bytes=prepared.size,
            tables=prepared.table_count,
            properties_from=prepared.properties_from,
        )
        result = {
            "database": prepared.database,
            "postgres_conn_id": self.postgres_conn_id,
            "restore_id": restore_id,
            "key": prepared.key,
            "sha256": prepared.sha256,
            "size": prepared.size,
            "table_count": prepared.table_count,
            "row_counts": prepared.row_counts,
            "swapped": False,
        }
        if self.swap:
            swap_restored(
                [target], restore_id, production=production, maintenance_database=self.maintenance_database
            )
            self.log.info("restore verified and swapped in", database=prepared.database)
            result["swapped"] = True
        return result


class S3ToPgRestoreOperator(_RestoreOperatorBase):
    """Restore one dump object into a database, checking its SHA-256 (and size) while streaming.

    The database is rebuilt beside the old one and swapped in only once verified (``swap=False``
    leaves the verified copy for :class:`SwapRestoredDatabasesOperator`). A target that is one of
    production's databases (by server identity) or in a production environment is refused before
    anything is read or written.

    :param key: dump object key (templated)
    :param sha256: SHA-256 recorded in the manifest (templated)
    :param postgres_conn_id: Airflow connection of the target server (templated)
    :param database: target database; default the connection's schema (templated)
    :param size: size recorded in the manifest, checked before and while streaming (templated)
    :param expected_row_counts: ``{"schema.table": rows}`` from the manifest, checked before the swap
    :param target_environment: environment of the target; checked writable with the environment API (templated)
    :param env_api_conn_id: Airflow connection id of the environment API
    :param swap: swap the verified copy in at once (a single-database restore)
    :param restore_id: 8 hex naming the restore; default derived from the run (templated)
    """

    template_fields: Sequence[str] = (
        "bucket",
        "key",
        "sha256",
        "size",
        "postgres_conn_id",
        "database",
        "target_environment",
        "expected_row_counts",
        "restore_id",
    )

    def __init__(
        self,
        *,
        key: str,
        sha256: str,
        size: int | None = None,
        expected_row_counts: dict[str, int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.key = key
        self.sha256 = sha256
        self.size = size
        self.expected_row_counts = expected_row_counts

    def execute(self, context: Any) -> dict[str, Any]:
        target_kind = self._target_kind()
        size = int(self.size) if self.size not in (None, "") else None
        expected = ExpectedDump(sha256=self.sha256, size=size, row_counts=self.expected_row_counts or None)
        return self._restore(self.key, expected, target_kind, context)


class RestoreFromBackupOperator(_RestoreOperatorBase):
    """Restore one database of a committed backup, chosen by id, ``latest`` or ``latest:<phase>``.

    Checksum, size, row counts and database properties come from the backup's manifest. With
    ``swap=False`` (an environment restore) the verified copy waits for
    :class:`SwapRestoredDatabasesOperator`.

    :param environment: environment the backup was taken of (templated)
    :param backup: backup id, ``latest`` or ``latest:<phase>`` (templated)
    :param source_database: database name in the backup; default the target database (templated)
    :param postgres_conn_id: Airflow connection of the target server (templated)
    :param database: target database; default the connection's schema (templated)
    :param target_environment: environment of the target; checked writable with the environment API (templated)
    :param swap: swap the verified copy in at once (a single-database restore)
    :param restore_id: 8 hex naming the restore; default derived from the run (templated)
    """

    template_fields: Sequence[str] = (
        "bucket",
        "environment",
        "backup",
        "source_database",
        "postgres_conn_id",
        "database",
        "target_environment",
        "restore_id",
    )

    def __init__(
        self, *, environment: str, backup: str = "latest", source_database: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.environment = environment
        self.backup = backup
        self.source_database = source_database

    def execute(self, context: Any) -> dict[str, Any]:
        target_kind = self._target_kind()
        backup_id = resolve_backup_id(self.s3_client, self.bucket, self.environment, self.backup)
        manifest = load_manifest(self.s3_client, self.bucket, self.environment, backup_id)
        name = self.source_database or self.database or pg_connection_info(self.postgres_conn_id).database
        record = manifest.database(name)
        result = self._restore(record.key, ExpectedDump.from_record(record), target_kind, context)
        return {**result, "backup_id": backup_id}


class SwapRestoredDatabasesOperator(BaseOperator):
    """Swap every verified copy of one restore in for its database, all together or none.

    Runs after the per-database restores whatever their outcome (``all_done_min_one_success``):
    when any database has no verified copy, nothing is swapped, the restore's copies are dropped
    and the task fails naming each database and why.

    :param targets: ``[{"postgres_conn_id": ..., "database": ...}, ...]`` (templated)
    :param restore_id: 8 hex naming the restore; default derived from the run (templated)
    :param env_api_conn_id: Airflow connection id of the environment API
    :param swap_timeout_s: how long to wait for sessions to end before giving up (nothing swapped)
    """

    template_fields: Sequence[str] = ("targets", "restore_id")
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        targets: list[dict[str, Any]],
        restore_id: str | None = None,
        env_api_conn_id: str = "baseline_env_api",
        maintenance_database: str = "postgres",
        swap_timeout_s: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.targets = targets
        self.restore_id = restore_id
        self.env_api_conn_id = env_api_conn_id
        self.maintenance_database = maintenance_database
        self.swap_timeout_s = swap_timeout_s

    def execute(self, context: Any) -> list[dict[str, Any]]:
        targets = [pg_connection_info(t["postgres_conn_id"], t.get("database")) for t in self.targets]
        restore_id = self.restore_id or restore_id_of(context)
        outcomes = swap_restored(
            targets,
            restore_id,
            production=production_identities(self.env_api_conn_id),
            maintenance_database=self.maintenance_database,
            timeout_s=self.swap_timeout_s,
            on_step=lambda step: self.log.info("swap step", step=step, restore_id=restore_id),
        )
        self.log.info("databases swapped in", databases=[o.database for o in outcomes], restore_id=restore_id)
        return [asdict(o) for o in outcomes]


class BackupRetentionOperator(BackupBaseOperator):
    """Delete an environment's old backups (whole, manifest first) and clean up leftovers.

    Per phase, the newest ``keep_last_n`` backups and every backup younger than ``max_age_days``
    are kept. Manifest-less dumps and incomplete uploads older than ``leftover_grace_hours`` are
    removed. "Now" is the run's time (``data_interval_end`` or ``run_after``), so a retry decides
    the same way.

    :param environment: environment whose backups to prune (templated)
    :param keep_last_n: backups kept per phase whatever their age (at least 1)
    :param max_age_days: backups younger than this are kept; None keeps only the newest ``keep_last_n``
    :param leftover_grace_hours: leftovers younger than this may belong to a backup being written
    :param dry_run: only report what would be deleted
    """

    template_fields: Sequence[str] = ("bucket", "environment")

    def __init__(
        self,
        *,
        environment: str,
        keep_last_n: int = 7,
        max_age_days: float | None = 14,
        leftover_grace_hours: float = 24,
        dry_run: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.environment = environment
        self.keep_last_n = keep_last_n
        self.max_age_days = max_age_days
        self.leftover_grace_hours = leftover_grace_hours
        self.dry_run = dry_run

    def execute(self, context: Any) -> dict[str, Any]:
        report = apply_retention(
            self.s3_client,
            self.bucket,
            self.environment,
            keep_last_n=self.keep_last_n,
            max_age_days=self.max_age_days,
            now=run_time(context),
            leftover_grace=timedelta(hours=self.leftover_grace_hours),
            dry_run=self.dry_run,
        )
        self.log.info(
            "retention applied",
            environment=self.environment,
            dry_run=self.dry_run,
            deleted=len(report.deleted_backups),
            kept=len(report.kept_backups),
            leftover_objects=len(report.deleted_leftover_objects),
            aborted_uploads=len(report.aborted_uploads),
        )
        return asdict(report)


def run_time(context: Any) -> datetime:
    """The run's reference time: ``data_interval_end``, else ``dag_run.run_after`` (never the wall clock)."""
    moment = context.get("data_interval_end") or getattr(context.get("dag_run"), "run_after", None)
    if moment is None:
        raise InvalidInput("the task context has neither data_interval_end nor dag_run.run_after")
    return moment
