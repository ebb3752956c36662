"""Restore drills: prove each environment's newest pre-test backup restorable, flag stale proofs.

Thin wrappers over :mod:`baseline_guard.protection.drill` (the restore engine's verified copy,
used as a scratch database, then dropped) and :mod:`baseline_guard.protection.drill_records`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from baseline_guard.backup.manifest import Phase, list_backups
from baseline_guard.backup.restore import refuse_production, restore_id_for
from baseline_guard.environment_contract import EnvironmentKind
from baseline_guard.errors import RestoreDrillFailed
from baseline_guard.hooks.environment import EnvironmentHook
from baseline_guard.operators.backup import (
    BackupBaseOperator,
    pg_connection_info,
    production_identities,
    run_time,
)
from baseline_guard.protection.drill import drill_environment
from baseline_guard.protection.drill_records import (
    PROVEN_MAX_AGE,
    drill_history,
    make_drill_id,
    record_drill,
    summary,
    update_stale_flag,
)


class _DrillBaseOperator(BackupBaseOperator):
    def __init__(self, *, env_api_conn_id: str = EnvironmentHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.env_api_conn_id = env_api_conn_id

    @cached_property
    def env_api(self) -> EnvironmentHook:
        return EnvironmentHook(self.env_api_conn_id)


class RestoreDrillOperator(_DrillBaseOperator):
    """Restore the newest pre-test backup of an environment into scratch databases, verify, drop, record.

    The result (passed or failed, per database) is written to ``drills/<env>/<drill_id>.json`` in
    the bucket before the task ends; a failed drill then fails the task without retries.

    :param environment: environment to drill (templated); production is refused
    :param maintenance_database: database on each server holding the restore ledger
    """

    template_fields: Sequence[str] = ("environment", "bucket")
    ui_color = "#fdebd0"

    def __init__(self, *, environment: str, maintenance_database: str = "postgres", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.environment = environment
        self.maintenance_database = maintenance_database

    def execute(self, context: Any) -> dict[str, Any]:
        env = self.env_api.get_environment(self.environment)
        refuse_production(env.kind, self.environment)
        backups = list_backups(self.s3_client, self.bucket, env.name, Phase.PRE_TEST)
        if not backups:
            raise RestoreDrillFailed(f"environment {env.name} has no committed pre_test backup to drill")
        run_key = f"{getattr(context.get('dag'), 'dag_id', '')}/{context.get('run_id') or ''}/{env.name}"
        targets = {
            d.name: pg_connection_info(d.conn_id, d.name) for d in self.env_api.list_databases_of(env.name)
        }
        self.log.info(
            "drill starting", environment=env.name, backup_id=backups[0].backup_id, databases=len(targets)
        )
        result = drill_environment(
            self.s3_client,
            bucket=self.bucket,
            environment=env.name,
            backup_id=backups[0].backup_id,
            targets=targets,
            production=production_identities(self.env_api_conn_id),
            restore_id=restore_id_for(run_key),
            drill_id=make_drill_id(run_time(context), run_key),
            target_kind=env.kind,
            pg_bin_dir=self.tools_dir,
            maintenance_database=self.maintenance_database,
            airflow_run_id=context.get("run_id"),
        )
        key = record_drill(self.s3_client, self.bucket, result)
        self.log.info("drill recorded", environment=env.name, passed=result.passed, key=key)
        if not result.passed:
            raise RestoreDrillFailed(
                f"restore drill of {env.name} (backup {result.backup_id}) failed: "
                + "; ".join(result.failures())
            )
        return summary(result)


class FlagStaleRestoreProofsOperator(_DrillBaseOperator):
    """Flag every environment whose last proven restore is older than 25 h; tell its admins once.

    The flag lives in ``drills/<env>/stale.json``: raising it sends one message (to the environment's
    owners, the admins for the baseline), later runs stay silent while it stands, a proven restore
    clears it. Fails at the end when an environment's newest drill failed, naming them.

    :param environments: environments to look at (templated; a list)
    """

    template_fields: Sequence[str] = ("environments", "bucket")

    def __init__(self, *, environments: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.environments = environments

    def execute(self, context: Any) -> dict[str, Any]:
        from baseline_guard.notifiers.owners import notify_environment

        as_of = run_time(context)
        report: dict[str, Any] = {}
        failed: list[str] = []
        for name in self.environments:
            history = drill_history(self.s3_client, self.bucket, name)
            stale = history.is_stale(as_of)
            proven = history.last_proven_at
            change = update_stale_flag(
                self.s3_client, self.bucket, name, stale=stale, as_of=as_of, last_proven_at=proven
            )
            told = ""
            if change == "raised":
                env = self.env_api.get_environment(name)
                since = proven.isoformat() if proven else "never"
                latest = history.latest
                why = (
                    "; ".join(latest.failures())
                    if latest is not None and not latest.passed
                    else "no drill passed"
                )
                told = notify_environment(
                    env,
                    f"Backups of {name} not proven restorable",
                    f"The last proven restore of {name} is older than {PROVEN_MAX_AGE} (last: {since}). "
                    f"Newest drill: {why}.",
                    failure=True,
                )
            if history.latest is not None and not history.latest.passed:
                failed.append(name)
            report[name] = {"stale": stale, "last_proven_at": proven.isoformat() if proven else None,
                            "flag": change, "told": told}  # fmt: skip
            self.log.info("restore proof", environment=name, stale=stale, flag=change, told=told)
        if failed:
            raise RestoreDrillFailed(f"the newest restore drill failed for: {', '.join(failed)}")
        return report


def environments_with_backups(env_api: EnvironmentHook, client: Any, bucket: str) -> list[str]:
    """Every non-production environment with at least one committed pre-test backup."""
    return [
        env.name
        for env in env_api.list_environments()
        if env.kind != EnvironmentKind.PRODUCTION and list_backups(client, bucket, env.name, Phase.PRE_TEST)
    ]
