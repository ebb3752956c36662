"""Test-data restore: plan it once, restore each database into a verified copy, swap all copies in at once.

:class:`PlanRestoreOperator` refuses a production (or unknown) environment, resolves the backup and
reads its manifest, once per run; each :class:`RestoreFromBackupOperator` (mapped, one per database)
gets its dump record from the plan and restores into a copy beside the live database;
:class:`SwapRestoredDatabasesOperator` swaps every verified copy in together, or none.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from baseline_guard.errors import InvalidInput
from baseline_guard.operators.base import (
    BackupStoreOperator,
    EnvironmentApiOperator,
    PgToolsOperator,
    push_outputs,
)
from baseline_guard.operators.production import production_identities, writable_environment_kind

if TYPE_CHECKING:
    from airflow.sdk import Context


def new_restore_id() -> str:
    """A fresh random restore id (8 hex) naming one restore's copies.

    Never derived from the run id, the dates or the conf, which the caller of a REST trigger
    chooses: a chosen id would let a caller aim the copy name ``<db>__restore_<id>`` at a
    database that exists. The plan draws it once per run; every restore and the swap get it from
    the plan's XCom, so each try of one run finds the same copies.

    It starts with a letter: the DAGs render templates as native objects, and an id of digits only
    (``53522432``, one in 43) or of a float's shape (``12345e67``) would reach the operators as a
    number.
    """
    return secrets.choice("abcdef") + secrets.token_hex(4)[1:]


class PlanRestoreOperator(EnvironmentApiOperator, BackupStoreOperator):
    """Check the environment, resolve the backup, read its manifest: everything the restores need, once.

    Returns the keyword arguments of one :class:`RestoreFromBackupOperator` per database, each with
    its dump record from the manifest and the run's random restore id (for ``expand_kwargs``);
    pushes ``backup_id``, ``restore_id`` and ``targets`` (for :class:`SwapRestoredDatabasesOperator`)
    as XComs of their own.

    :param environment: environment to restore; production (and an unknown one) is refused first (templated)
    :param backup: backup id, ``latest`` or ``latest:<phase>`` (templated)
    :param databases: databases to restore; empty: every database of the backup the environment has (templated)
    """

    template_fields: Sequence[str] = ("environment", "backup", "databases")
    ui_color = "#e8f0fe"

    def __init__(
        self, *, environment: str, backup: str = "latest", databases: Sequence[str] = (), **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.environment = environment
        self.backup = backup
        self.databases = databases

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from baseline_guard.backup import choose_databases, load_manifest, resolve_backup_id

        self.bind_trace_id(context)
        env = self.environment
        kind = writable_environment_kind(self.env_api, env)
        backup_id = resolve_backup_id(self.store.client, self.store.bucket, env, self.backup)
        manifest = load_manifest(self.store.client, self.store.bucket, env, backup_id)
        in_backup = {d.database for d in manifest.databases}
        targets = [d for d in self.env_api.list_databases_of(env) if d.name in in_backup]
        chosen = choose_databases(targets, list(self.databases or ()), env)
        restore_id = new_restore_id()
        self.log.info(
            "restore planned",
            environment=env,
            backup_id=backup_id,
            restore_id=restore_id,
            databases=[d.name for d in chosen],
        )
        push_outputs(
            context,
            backup_id=backup_id,
            restore_id=restore_id,
            targets=[{"postgres_conn_id": d.conn_id, "database": d.name} for d in chosen],
        )
        return [
            {
                "postgres_conn_id": d.conn_id,
                "database": d.name,
                "backup_id": backup_id,
                "record": manifest.database(d.name).model_dump(mode="json"),
                "target_kind": kind,
                "restore_id": restore_id,
            }
            for d in chosen
        ]


class RestoreFromBackupOperator(EnvironmentApiOperator, BackupStoreOperator, PgToolsOperator):
    """Restore one dump of a committed backup into a verified copy of a database, then (optionally) swap it in.

    The dump record (key, SHA-256, size, row counts, database properties) comes from the backup's
    manifest, read once by :class:`PlanRestoreOperator`. The database is rebuilt beside the live one;
    with ``swap=False`` (an environment restore) the verified copy waits for
    :class:`SwapRestoredDatabasesOperator`. A target that *is* one of production's databases (by server
    identity), or of an environment of kind production, is refused before anything is written.

    :param postgres_conn_id: Airflow connection of the target server (templated)
    :param record: the dump's record in the manifest (``DumpRecord`` as JSON; not templated: it holds
        database comments)
    :param backup_id: the backup the record belongs to, returned with the result (templated)
    :param database: target database; default the connection's schema (templated)
    :param target_kind: kind of the target's environment, as the plan found it (templated)
    :param maintenance_database: database on each server holding the restore ledger
    :param no_owner: restore with ``--no-owner``
    :param swap: swap the verified copy in at once (a single-database restore)
    :param restore_id: 8 hex naming the restore, from the plan (templated); required with
        ``swap=False``; a single-database restore that swaps at once draws a fresh one
    """

    template_fields: Sequence[str] = (
        "postgres_conn_id",
        "backup_id",
        "database",
        "target_kind",
        "restore_id",
    )
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        postgres_conn_id: str,
        record: Mapping[str, Any],
        backup_id: str | None = None,
        database: str | None = None,
        target_kind: str | None = None,
        maintenance_database: str = "postgres",
        no_owner: bool = False,
        swap: bool = True,
        restore_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.postgres_conn_id = postgres_conn_id
        self.record = record
        self.backup_id = backup_id
        self.database = database
        self.target_kind = target_kind
        self.maintenance_database = maintenance_database
        self.no_owner = no_owner
        self.swap = swap
        self.restore_id = restore_id

    def execute(self, context: Context) -> dict[str, Any]:
        from baseline_guard.backup import DumpRecord, ExpectedDump
        from baseline_guard.backup.restore import prepare_restore, refuse_production
        from baseline_guard.backup.s3io import MIB
        from baseline_guard.backup.swap import swap_restored

        pg = self.pg(self.postgres_conn_id)
        target = pg.connection_info(self.database)
        refuse_production(self.target_kind, target.database)
        record = DumpRecord.model_validate(self.record)
        production = production_identities(self.env_api)
        restore_id = self._restore_id()
        self.log.info(
            "restore starting",
            database=target.database,
            key=record.key,
            backup_id=self.backup_id,
            restore_id=restore_id,
            production_databases=len(production),
        )
        prepared = prepare_restore(
            self.store.client,
            bucket=self.store.bucket,
            key=record.key,
            expected=ExpectedDump.from_record(record),
            target=target,
            production=production,
            restore_id=restore_id,
            target_kind=self.target_kind,
            maintenance_database=self.maintenance_database,
            no_owner=self.no_owner,
            pg_bin_dir=pg.tools_dir,
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
            "backup_id": self.backup_id,
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

    def _restore_id(self) -> str:
        if self.restore_id:
            return self.restore_id
        if not self.swap:
            raise InvalidInput(
                "restore_id is missing: a restore whose copy waits for the swap step needs the "
                "plan's restore id (PlanRestoreOperator's XCom restore_id)"
            )
        return new_restore_id()


class SwapRestoredDatabasesOperator(EnvironmentApiOperator, PgToolsOperator):
    """Swap every verified copy of one restore in for its database, all together or none.

    Runs after the per-database restores whatever their outcome (``all_done_min_one_success``):
    when any database has no verified copy, nothing is swapped, the restore's copies are dropped
    and the task fails naming each database and why.

    :param targets: ``[{"postgres_conn_id": ..., "database": ...}, ...]`` (templated)
    :param restore_id: 8 hex naming the restore, from the plan's XCom ``restore_id`` (templated)
    :param maintenance_database: database on each server holding the restore ledger
    :param swap_timeout_s: how long to wait for sessions to end before giving up (nothing swapped)
    """

    template_fields: Sequence[str] = ("targets", "restore_id")
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        targets: Sequence[Mapping[str, Any]],
        restore_id: str,
        maintenance_database: str = "postgres",
        swap_timeout_s: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.targets = targets
        self.restore_id = restore_id
        self.maintenance_database = maintenance_database
        self.swap_timeout_s = swap_timeout_s

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from baseline_guard.backup.swap import swap_restored

        targets = [self.pg(t["postgres_conn_id"]).connection_info(t.get("database")) for t in self.targets]
        if not self.restore_id:
            raise InvalidInput("restore_id is missing: expected the plan's restore id (its XCom restore_id)")
        restore_id = self.restore_id
        outcomes = swap_restored(
            targets,
            restore_id,
            production=production_identities(self.env_api),
            maintenance_database=self.maintenance_database,
            timeout_s=self.swap_timeout_s,
            on_step=lambda step: self.log.info("swap step", step=step, restore_id=restore_id),
        )
        self.log.info("databases swapped in", databases=[o.database for o in outcomes], restore_id=restore_id)
        return [asdict(o) for o in outcomes]


def restore_report(backup_id: str, results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What a restore put back, per database: tables, rows and the dump's checksum."""
    return {
        "backup_id": backup_id,
        "databases": [
            {
                "database": r["database"],
                "tables": r["table_count"],
                "rows": sum(r["row_counts"].values()),
                "sha256": r["sha256"],
            }
            for r in results
        ],
    }
