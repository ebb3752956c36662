"""Protection state of the environments, as plain data a page or a CLI can show.

Per environment: which services run another version than production and since when, the schema
changes held for a person's approval, the production configuration changes waiting for the
on-call decision, the last backup and the last *proven* restore (a passed restore drill).

Everything is read from where it really lives: the environment API (instance versions, production
release records), Airflow's human-in-the-loop details (``GET /api/v2/dags/baseline_schema_sync/dagRuns/~/hitlDetails``,
passed in as their JSON), the config sync's decision records (rows of the guard's database, as dicts), and the
backup bucket (manifests, drill results). No Airflow import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, Field

from baseline_guard.backup.manifest import list_backups
from baseline_guard.codesync.versions import production_versions
from baseline_guard.environment_contract import Environment, EnvironmentKind, Release, Service
from baseline_guard.protection.drill_records import PROVEN_MAX_AGE, drill_history

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SCHEMA_SYNC_DAG_ID = "baseline_schema_sync"


class EnvironmentApi(Protocol):
    """What the protection state reads from the environment API (an ``EnvironmentHook`` has it)."""

    def list_environments(self) -> Sequence[Environment]: ...

    def list_services(self, environment: str) -> Sequence[Service]: ...

    def list_releases(self) -> Sequence[Release]: ...


class ServiceDrift(BaseModel):
    """A service whose instances run another version than production; ``since`` when production moved on."""

    service: str
    production_version: str
    versions: list[str]
    since: datetime | None


class HeldApproval(BaseModel):
    """A schema change waiting for a person (a human-in-the-loop task not yet answered)."""

    dag_id: str
    run_id: str
    task_id: str
    subject: str
    since: datetime


class PendingDecision(BaseModel):
    """A production configuration change put to the on-call person, not yet decided."""

    service: str
    digest: str
    seen_at: datetime | None
    asked_at: datetime | None
    expires_at: datetime | None


class BackupProof(BaseModel):
    """The last backup of an environment and its last proven restore."""

    last_backup_id: str | None
    last_backup_at: datetime | None
    last_pre_test_backup_id: str | None
    last_proven_restore_at: datetime | None
    last_proven_backup_id: str | None
    last_drill_passed: bool | None
    restore_proof_stale: bool


class EnvironmentProtection(BaseModel):
    environment: str
    kind: EnvironmentKind
    drift: list[ServiceDrift]
    backups: BackupProof


class ProtectionState(BaseModel):
    as_of: datetime
    environments: list[EnvironmentProtection]
    held_schema_approvals: list[HeldApproval]
    pending_config_decisions: list[PendingDecision]
    approvals_known: bool = Field(
        default=True,
        description="False: the HITL details or decision records could not be read (lists empty).",
    )


def service_drift(
    services: Iterable[Service], releases: Sequence[Release], as_of: datetime
) -> list[ServiceDrift]:
    """Services whose instances differ from the version production runs at ``as_of``.

    ``since`` is when production released the first version after the last one the service runs
    here (the moment they started to differ); None when no release record says.
    """
    wanted = production_versions(releases, as_of)
    drift = []
    for svc in sorted(services, key=lambda s: s.name):
        target = wanted.get(svc.name)
        versions = sorted({i.version for i in svc.instances})
        if target is None or versions == [target]:
            continue
        drift.append(
            ServiceDrift(
                service=svc.name,
                production_version=target,
                versions=versions,
                since=_differs_since(svc.name, versions, releases, as_of),
            )
        )
    return drift


def _differs_since(
    service: str, running: list[str], releases: Sequence[Release], as_of: datetime
) -> datetime | None:
    history = sorted(
        (r for r in releases if r.service == service and r.released_at <= as_of), key=lambda r: r.released_at
    )
    last_same = max((i for i, r in enumerate(history) if r.version in running), default=None)
    later = history[last_same + 1 :] if last_same is not None else history
    moved_on = [r for r in later if r.version not in running]
    return moved_on[0].released_at if moved_on else None


def held_schema_approvals(hitl_details: Iterable[Mapping[str, Any]]) -> list[HeldApproval]:
    """Unanswered human-in-the-loop tasks of the schema sync, from Airflow's ``hitlDetails`` JSON."""
    held = []
    for detail in hitl_details:
        ti = detail.get("task_instance") or {}
        if detail.get("response_received") or ti.get("dag_id") != SCHEMA_SYNC_DAG_ID:
            continue
        held.append(
            HeldApproval(
                dag_id=ti["dag_id"],
                run_id=ti.get("dag_run_id") or ti.get("run_id") or "",
                task_id=ti.get("task_id", ""),
                subject=detail.get("subject", ""),
                since=detail["created_at"],
            )
        )
    return sorted(held, key=lambda h: h.since)


def pending_config_decisions(records: Mapping[str, Mapping[str, Any]]) -> list[PendingDecision]:
    """Services whose production config change was put to the on-call person and is not decided yet."""
    return [
        PendingDecision(
            service=service,
            digest=str(record.get("digest", "")),
            seen_at=record.get("seen_at"),
            asked_at=record.get("asked_at"),
            expires_at=record.get("expires_at"),
        )
        for service, record in sorted(records.items())
        if record.get("status") == "asked"
    ]


def backup_proof(client: S3Client, bucket: str, environment: str, as_of: datetime) -> BackupProof:
    backups = list_backups(client, bucket, environment)
    pre_test = [b for b in backups if b.phase.value == "pre_test"]
    history = drill_history(client, bucket, environment)
    proven = history.last_proven
    return BackupProof(
        last_backup_id=backups[0].backup_id if backups else None,
        last_backup_at=backups[0].created_at if backups else None,
        last_pre_test_backup_id=pre_test[0].backup_id if pre_test else None,
        last_proven_restore_at=history.last_proven_at,
        last_proven_backup_id=proven.backup_id if proven else None,
        last_drill_passed=history.latest.passed if history.latest else None,
        restore_proof_stale=bool(pre_test) and history.is_stale(as_of, PROVEN_MAX_AGE),
    )


def collect_protection_state(
    env_api: EnvironmentApi,
    client: S3Client,
    bucket: str,
    as_of: datetime,
    *,
    hitl_details: Iterable[Mapping[str, Any]] = (),
    config_records: Mapping[str, Mapping[str, Any]] | None = None,
) -> ProtectionState:
    """Protection state of every non-production environment.

    :param env_api: an :class:`~baseline_guard.hooks.environment.EnvironmentHook` (or another
        :class:`EnvironmentApi`)
    """
    releases = env_api.list_releases()
    environments: list[EnvironmentProtection] = []
    for env in env_api.list_environments():
        if env.kind == EnvironmentKind.PRODUCTION:
            continue
        environments.append(_environment(env, env_api, releases, client, bucket, as_of))
    return ProtectionState(
        as_of=as_of,
        environments=environments,
        held_schema_approvals=held_schema_approvals(hitl_details),
        pending_config_decisions=pending_config_decisions(config_records or {}),
    )


def _environment(
    env: Environment,
    env_api: EnvironmentApi,
    releases: Sequence[Release],
    client: S3Client,
    bucket: str,
    as_of: datetime,
) -> EnvironmentProtection:
    # a project environment runs its own versions on purpose: only the baseline drifts from production
    drift = (
        service_drift(env_api.list_services(env.name), releases, as_of)
        if env.kind == EnvironmentKind.BASELINE
        else []
    )
    return EnvironmentProtection(
        environment=env.name,
        kind=env.kind,
        drift=drift,
        backups=backup_proof(client, bucket, env.name, as_of),
    )
