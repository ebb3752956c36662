"""Test-data backup: plan the dumps, stream each database to the backup store, commit the manifest.

A backup of an environment is :class:`PlanBackupOperator` (which databases, which backup id), one
:class:`PgDumpToS3Operator` per database (mapped), then one :class:`WriteBackupManifestOperator`:
the manifest is written last and is the commit point. Passwords come from Airflow connections and
reach ``pg_dump`` only in its own minimal environment; they are never logged, never in XCom.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from baseline_guard.clock import run_as_of, task_now
from baseline_guard.errors import InvalidInput
from baseline_guard.operators.base import (
    BackupStoreOperator,
    EnvironmentApiOperator,
    PgToolsOperator,
    push_outputs,
)
from baseline_guard.operators.production import refuse_production_environment_backup, refuse_production_source

if TYPE_CHECKING:
    from airflow.sdk import Context


class PlanBackupOperator(EnvironmentApiOperator):
    """Choose the databases of a backup and give it an id (every later task and retry uses that id).

    Returns the keyword arguments of one :class:`PgDumpToS3Operator` per database (for
    ``expand_kwargs``); pushes ``backup_id``, ``databases`` (names) and ``run_business_checks``
    (``run_business_check``, or by default: yes for ``pre_test``) as XComs of their own.

    :param environment: environment whose databases to back up (templated)
    :param phase: ``pre_test``, ``post_test`` or ``manual`` (templated)
    :param databases: names to back up; empty: all the environment's databases (templated)
    :param run_business_check: run the business checks afterwards; None: yes for ``pre_test`` (templated)
    """

    template_fields: Sequence[str] = ("environment", "phase", "databases", "run_business_check")
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        environment: str,
        phase: str,
        databases: Sequence[str] = (),
        run_business_check: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.environment = environment
        self.phase = phase
        self.databases = databases
        self.run_business_check = run_business_check

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from baseline_guard.backup import choose_databases, make_backup_id

        self.bind_trace_id(context)
        env = self.environment
        refuse_production_environment_backup(self.env_api, env)
        chosen = choose_databases(self.env_api.list_databases_of(env), list(self.databases or ()), env)
        # Dated by the task's clock for a triggered run (a caller sets its dates and its run id); the
        # moment, to the microsecond, joins the run id in the id's hash so a run id never names a backup.
        as_of, now = run_as_of(context), task_now()
        backup_id = make_backup_id(as_of, self.phase, f"{context['run_id']}@{now.isoformat()}")
        names = [d.name for d in chosen]
        self.log.info("backup planned", environment=env, backup_id=backup_id, databases=names)
        wanted = self.run_business_check
        push_outputs(
            context,
            backup_id=backup_id,
            databases=names,
            run_business_checks=self.phase == "pre_test" if wanted is None else bool(wanted),
        )
        return [
            {
                "postgres_conn_id": d.conn_id,
                "database": d.name,
                "service": d.service,
                "environment": env,
                "backup_id": backup_id,
            }
            for d in chosen
        ]


class PgDumpToS3Operator(EnvironmentApiOperator, BackupStoreOperator, PgToolsOperator):
    """Stream ``pg_dump -Fc`` of one database into the backup store (multipart, checksummed, never overwriting).

    A database that *is* one of production's (by server identity, asked of the environment API) is
    refused before anything is read: production is never backed up into the test bucket. The key is ``key`` or, when not given, ``backups/<environment>/<backup_id>/<database>.dump``.
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
        "key",
        "environment",
        "backup_id",
        "service",
        "compression",
        "sse",
        "kms_key_id",
    )
    ui_color = "#e8f0fe"

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

    def execute(self, context: Context) -> dict[str, Any]:
        from baseline_guard.backup import ServerSideEncryption, backup_database
        from baseline_guard.backup.s3io import MIB

        pg = self.pg(self.postgres_conn_id)
        source = pg.connection_info(self.database)
        key = self.key or self._derived_key(source.database)
        refuse_production_source(self.env_api, source)
        bucket = self.store.bucket
        self.log.info(
            "dump starting", database=source.database, bucket=bucket, key=key, compression=self.compression
        )
        outcome = backup_database(
            self.store.client,
            source=source,
            bucket=bucket,
            key=key,
            compression=self.compression,
            sse=ServerSideEncryption.parse(self.sse, self.kms_key_id),
            service=self.service,
            part_size=self.part_size_mib * MIB,
            exact_row_counts=self.exact_row_counts,
            pg_bin_dir=pg.tools_dir,
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
        from baseline_guard.backup import dump_key

        if not (self.environment and self.backup_id):
            raise InvalidInput("no key given: expected key, or environment and backup_id to derive it")
        return dump_key(self.environment, self.backup_id, database)


class WriteBackupManifestOperator(BackupStoreOperator):
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
        "environment",
        "backup_id",
        "databases",
        "ci_pipeline_id",
        "sse",
        "kms_key_id",
    )
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        environment: str,
        backup_id: str,
        databases: Sequence[str],
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

    def execute(self, context: Context) -> dict[str, Any]:
        from baseline_guard.backup import ServerSideEncryption, commit_backup, manifest_key

        manifest = commit_backup(
            self.store.client,
            self.store.bucket,
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
