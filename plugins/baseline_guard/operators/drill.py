"""Restore drills: prove each environment's newest pre-test backup restorable, flag stale proofs.

Thin wrappers over :mod:`baseline_guard.protection.drill` (the restore engine's verified copy,
used as a scratch database, then dropped) and :mod:`baseline_guard.protection.drill_records`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from baseline_guard.clock import run_as_of
from baseline_guard.environment_contract import EnvironmentKind
from baseline_guard.errors import InvalidInput, RestoreDrillFailed
from baseline_guard.operators.base import BackupStoreOperator, EnvironmentApiOperator, PgToolsOperator
from baseline_guard.operators.production import production_identities
from baseline_guard.operators.restore import new_restore_id


class PlanDrillsOperator(EnvironmentApiOperator, BackupStoreOperator):
    """The environments to drill: every one (never production) with a committed pre-test backup.

    :param environments: only these (templated); empty: all of them. A named environment that has
        no pre-test backup (or is production, or unknown) is bad input.
    """

    template_fields: Sequence[str] = ("environments",)
    ui_color = "#fdebd0"

    def __init__(self, *, environments: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.environments = environments

    def execute(self, context: Any) -> list[str]:
        from baseline_guard.backup.manifest import Phase, list_backups

        self.bind_trace_id(context)
        client, bucket = self.store.client, self.store.bucket
        names = [
            env.name
            for env in self.env_api.list_environments()
            if env.kind != EnvironmentKind.PRODUCTION
            and list_backups(client, bucket, env.name, Phase.PRE_TEST)
        ]
        wanted = list(self.environments or ())
        unknown = [w for w in wanted if w not in names]
        if unknown:
            raise InvalidInput(
                f"{', '.join(unknown)}: no committed pre_test backup to drill (or production, or unknown); "
                f"environments that have one: {', '.join(names) or 'none'}"
            )
        chosen = [n for n in names if n in wanted] if wanted else names
        self.log.info("drills planned", environments=chosen)
        return chosen


class RestoreDrillOperator(EnvironmentApiOperator, BackupStoreOperator, PgToolsOperator):
    """Restore the newest pre-test backup of an environment into scratch databases, verify, drop, record.

    The result (passed or failed, per database) is written to ``drills/<env>/<drill_id>.json`` in
    the bucket before the task ends; a failed drill then fails the task without retries.

    :param environment: environment to drill (templated); production is refused
    :param maintenance_database: database on each server holding the restore ledger
    """

    template_fields: Sequence[str] = ("environment",)
    ui_color = "#fdebd0"

    def __init__(self, *, environment: str, maintenance_database: str = "postgres", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.environment = environment
        self.maintenance_database = maintenance_database

    def execute(self, context: Any) -> dict[str, Any]:
        from baseline_guard.backup.manifest import Phase, list_backups
        from baseline_guard.backup.restore import refuse_production
        from baseline_guard.protection.drill import drill_environment
        from baseline_guard.protection.drill_records import make_drill_id, record_drill, summary

        self.bind_trace_id(context)
        env = self.env_api.get_environment(self.environment)
        refuse_production(env.kind, self.environment)
        client, bucket = self.store.client, self.store.bucket
        backups = list_backups(client, bucket, env.name, Phase.PRE_TEST)
        if not backups:
            raise RestoreDrillFailed(f"environment {env.name} has no committed pre_test backup to drill")
        run_key = f"{getattr(context.get('dag'), 'dag_id', '')}/{context.get('run_id') or ''}/{env.name}"
        targets = {
            d.name: self.pg(d.conn_id).connection_info(d.name)
            for d in self.env_api.list_databases_of(env.name)
        }
        self.log.info(
            "drill starting", environment=env.name, backup_id=backups[0].backup_id, databases=len(targets)
        )
        result = drill_environment(
            client,
            bucket=bucket,
            environment=env.name,
            backup_id=backups[0].backup_id,
            targets=targets,
            production=production_identities(self.env_api),
            restore_id=new_restore_id(),  # random: the run id is the caller's
            drill_id=make_drill_id(run_as_of(context), run_key),
            target_kind=env.kind,
            pg_bin_dir=self.tools_dir,
            maintenance_database=self.maintenance_database,
            airflow_run_id=context.get("run_id"),
        )
        key = record_drill(client, bucket, result)
        self.log.info("drill recorded", environment=env.name, passed=result.passed, key=key)
        if not result.passed:
            raise RestoreDrillFailed(
                f"restore drill of {env.name} (backup {result.backup_id}) failed: "
                + "; ".join(result.failures())
            )
        return summary(result)


class FlagStaleRestoreProofsOperator(EnvironmentApiOperator, BackupStoreOperator):
    """Flag every environment whose last proven restore is older than 25 h; tell its owners once.

    The flag lives in ``drills/<env>/stale.json``: raising it sends one message (to the environment's
    owners, the admins for the baseline), later runs stay silent while it stands, a proven restore
    clears it. Fails at the end when an environment's newest drill failed, naming them (the failed
    drill's own task told the admins already: the DAG gives this task no failure message).

    :param environments: environments to look at (templated; a list)
    """

    template_fields: Sequence[str] = ("environments",)
    ui_color = "#fdebd0"

    def __init__(self, *, environments: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.environments = environments

    def execute(self, context: Any) -> dict[str, Any]:
        from baseline_guard.protection.drill_records import drill_history, update_stale_flag

        as_of = run_as_of(context)
        client, bucket = self.store.client, self.store.bucket
        report: dict[str, Any] = {}
        failed: list[str] = []
        for name in self.environments:
            history = drill_history(client, bucket, name)
            stale = history.is_stale(as_of)
            proven = history.last_proven_at
            change = update_stale_flag(client, bucket, name, stale=stale, as_of=as_of, last_proven_at=proven)
            told = self._tell_stale(name, history) if change == "raised" else ""
            if history.latest is not None and not history.latest.passed:
                failed.append(name)
            report[name] = {
                "stale": stale,
                "last_proven_at": proven.isoformat() if proven else None,
                "flag": change,
                "told": told,
            }
            self.log.info("restore proof", environment=name, stale=stale, flag=change, told=told)
        if failed:
            raise RestoreDrillFailed(f"the newest restore drill failed for: {', '.join(failed)}")
        return report

    def _tell_stale(self, name: str, history: Any) -> str:
        """One message to the environment's owners (admins for the baseline); returns who was told."""
        from baseline_guard.notifiers.owners import notify_environment
        from baseline_guard.protection.drill_records import PROVEN_MAX_AGE

        proven, latest = history.last_proven_at, history.latest
        since = proven.isoformat() if proven else "never"
        why = "; ".join(latest.failures()) if latest is not None and not latest.passed else "no drill passed"
        return notify_environment(
            self.env_api.get_environment(name),
            f"Backups of {name} not proven restorable",
            f"The last proven restore of {name} is older than {PROVEN_MAX_AGE} (last: {since}). "
            f"Newest drill: {why}.",
            failure=True,
        )
