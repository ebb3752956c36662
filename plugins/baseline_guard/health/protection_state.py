"""The provider that fills the health report's protection slots from the protection state.

:func:`protection_slots` maps a :class:`~baseline_guard.protection.state.ProtectionState` (drift,
backups, restore proof, held approvals) into the slots; :class:`CachedProtectionState` is the
provider, reading the state at most once a ``ttl`` (a failed read is remembered as long, so an API
that is down does not slow every page); :func:`airflow_protection_state` reads it in the api-server.
Airflow and the protection engine are imported inside the functions: the plugin module that imports
this one is loaded by every Airflow component.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from baseline_guard.health.protection import ProtectionItem, Slot

if TYPE_CHECKING:
    from baseline_guard.protection.state import EnvironmentProtection, ProtectionState

log = logging.getLogger(__name__)

# Airflow UI pages where a person acts on a slot
CODE_SYNC_URL = "/dags/baseline_code_sync"
REQUIRED_ACTIONS_URL = "/required_actions"
BACKUP_URL = "/dags/test_data_backup"
DRILL_URL = "/dags/restore_drill"

StateReader = Callable[[datetime], "ProtectionState"]


def protection_slots(state: ProtectionState) -> dict[str, dict[Slot, ProtectionItem]]:
    """Every environment's slots; held approvals go to the baseline (only its syncs ask a person)."""
    from baseline_guard.environment_contract import EnvironmentKind

    slots: dict[str, dict[Slot, ProtectionItem]] = {}
    for env in state.environments:
        mine: dict[Slot, ProtectionItem] = {
            "last_backup": last_backup(env),
            "last_proven_restore": last_proven_restore(env),
        }
        if env.kind == EnvironmentKind.BASELINE:
            mine["drift"] = drift(env)
            if state.approvals_known:
                mine["held_approvals"] = held_approvals(state)
        slots[env.environment] = mine
    return slots


def drift(env: EnvironmentProtection) -> ProtectionItem:
    if not env.drift:
        return ProtectionItem(
            status="ok", summary="every service runs production's version", link=CODE_SYNC_URL
        )
    behind = ", ".join(
        f"{d.service} {'/'.join(d.versions)} (production {d.production_version})" for d in env.drift
    )
    known = [d.since for d in env.drift if d.since]
    return ProtectionItem(
        status="attention",
        summary=f"{_count(len(env.drift), 'service')} differ from production: {behind}",
        since=min(known) if known else None,
        link=CODE_SYNC_URL,
        details=[d.model_dump(mode="json") for d in env.drift],
    )


def held_approvals(state: ProtectionState) -> ProtectionItem:
    held, pending = state.held_schema_approvals, state.pending_config_decisions
    if not held and not pending:
        return ProtectionItem(status="ok", summary="nothing waiting for a person", link=REQUIRED_ACTIONS_URL)
    parts = [
        f"{_count(len(held), 'schema change')} held for approval" if held else "",
        f"{_count(len(pending), 'config change')} awaiting the on-call decision" if pending else "",
    ]
    since = [h.since for h in held] + [t for p in pending if (t := p.asked_at or p.seen_at)]
    return ProtectionItem(
        status="attention",
        summary=", ".join(filter(None, parts)),
        since=min(since) if since else None,
        link=REQUIRED_ACTIONS_URL,
        details=[{"kind": "schema", **h.model_dump(mode="json")} for h in held]
        + [{"kind": "config", **p.model_dump(mode="json")} for p in pending],
    )


def last_backup(env: EnvironmentProtection) -> ProtectionItem:
    b = env.backups
    if b.last_backup_id is None:
        return ProtectionItem(status="attention", summary="no backup yet", link=BACKUP_URL)
    return ProtectionItem(
        status="ok",
        summary=f"backup {b.last_backup_id}",
        at=b.last_backup_at,
        link=BACKUP_URL,
        details=[{"backup_id": b.last_backup_id, "last_pre_test_backup_id": b.last_pre_test_backup_id}],
    )


def last_proven_restore(env: EnvironmentProtection) -> ProtectionItem:
    from baseline_guard.protection.drill_records import PROVEN_MAX_AGE

    b = env.backups
    details = [b.model_dump(mode="json", include={"last_proven_backup_id", "last_drill_passed"})]
    if b.last_proven_restore_at is None:
        summary = "no restore proven yet" + (
            " (the last drill failed)" if b.last_drill_passed is False else ""
        )
        return ProtectionItem(status="attention", summary=summary, link=DRILL_URL, details=details)
    status: Literal["ok", "attention"]
    if b.restore_proof_stale or b.last_drill_passed is False:
        why = (
            "the last drill failed"
            if b.last_drill_passed is False
            else f"older than {_hours(PROVEN_MAX_AGE)}"
        )
        summary, status = f"backup {b.last_proven_backup_id} restored, but {why}", "attention"
    else:
        summary, status = f"backup {b.last_proven_backup_id} restored and verified", "ok"
    return ProtectionItem(
        status=status, summary=summary, at=b.last_proven_restore_at, link=DRILL_URL, details=details
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _hours(age: timedelta) -> str:
    return f"{age.total_seconds() / 3600:g} h"


class CachedProtectionState:
    """A provider: the slots of the protection state read by ``read``, read at most once per ``ttl``.

    A failed read raises for the whole ``ttl`` too (the report leaves the slots "not available").

    :param read: reads the protection state as of the given time
    :param ttl: how long a read (or its failure) is reused
    """

    def __init__(
        self,
        read: StateReader,
        *,
        ttl: timedelta = timedelta(seconds=60),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._ttl = ttl.total_seconds()
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, dict[Slot, ProtectionItem]] | Exception] | None = None

    def __repr__(self) -> str:
        return f"CachedProtectionState({getattr(self._read, '__name__', self._read)!r})"

    @property
    def ttl(self) -> timedelta:
        return timedelta(seconds=self._ttl)

    def refresh(self, now: datetime | None = None) -> None:
        """Read the state now and cache it (a background refresher calls this). The first read holds the
        lock, so a request arriving meanwhile waits for it rather than reading too; later reads happen
        outside it, and requests meanwhile are served from the previous read."""
        if self._cached is None:
            with self._lock:
                if self._cached is None:
                    self._cached = (self._clock(), self._slots(now))
                result = self._cached[1]
        else:
            result = self._slots(now)
            with self._lock:
                self._cached = (self._clock(), result)
        if isinstance(result, Exception):
            raise result

    def _slots(self, now: datetime | None) -> dict[str, dict[Slot, ProtectionItem]] | Exception:
        try:
            return protection_slots(self._read(now or datetime.now(UTC)))
        except Exception as exc:
            return exc

    def __call__(
        self, environments: Sequence[str], now: datetime
    ) -> Mapping[str, Mapping[Slot, ProtectionItem]]:
        with self._lock:  # one read at a time: concurrent page requests wait for it instead of repeating it
            if self._cached is None or self._clock() - self._cached[0] >= self._ttl:
                try:
                    result: dict[str, dict[Slot, ProtectionItem]] | Exception = protection_slots(
                        self._read(now)
                    )
                except Exception as exc:
                    result = exc
                self._cached = (self._clock(), result)
            found = self._cached[1]
        if isinstance(found, Exception):
            raise found
        return found


_registered: list[CachedProtectionState] = []


def register_airflow_provider() -> CachedProtectionState:
    """Register (once) the provider that reads the protection state in Airflow's api-server."""
    from baseline_guard.health.protection import register

    if not _registered:
        _registered.append(register(CachedProtectionState(airflow_protection_state)))
    return _registered[0]


def airflow_protection_state(as_of: datetime) -> ProtectionState:
    """The protection state from the api-server: environment API, backup store, config decisions
    awaiting the on-call person (the guard's database) and the schema sync's unanswered HITL details (metadata DB).

    When Airflow's side cannot be read, drift and backups are still shown; only the held approvals are not.
    """
    from baseline_guard.hooks.backup_store import BackupStoreHook
    from baseline_guard.hooks.environment import EnvironmentHook
    from baseline_guard.protection.state import collect_protection_state

    try:
        hitl, records = list(pending_schema_hitl()), config_decision_records()
    except Exception as exc:
        log.warning("held approvals not readable: %s: %s", type(exc).__name__, exc)
        hitl, records = None, None
    store = BackupStoreHook()
    state = collect_protection_state(
        EnvironmentHook(), store.client, store.bucket, as_of, hitl_details=hitl or (), config_records=records
    )
    return state if hitl is not None else state.model_copy(update={"approvals_known": False})


def config_decision_records() -> dict[str, dict[str, Any]]:
    """The config changes awaiting the on-call decision, from the guard's database (``baseline_guard_db``)."""
    from airflow.models.connection import Connection

    from baseline_guard.health.dburl import CONN_ID, dsn
    from baseline_guard.health.guard_state import ConfigDecisionStore, connect

    c = Connection.get_connection_from_secrets(CONN_ID)
    conn = connect(dsn(c.host, c.port, c.login, c.password, c.schema), connect_timeout=5)
    try:
        return ConfigDecisionStore(conn).pending()
    finally:
        conn.close()


def pending_schema_hitl() -> Iterator[dict[str, Any]]:
    """The schema sync's approvals a person still has to answer, from Airflow's metadata DB, shaped as
    the REST API's ``hitlDetails`` JSON.

    Pending means what Airflow's own *Required actions* means: no response yet (``responded_at`` is
    null) **and** the task is still waiting for one (deferred or awaiting input). A detail whose task
    stopped waiting without an answer (its run marked failed, the task failed or cleared, a timeout
    without defaults) keeps a null ``responded_at`` but holds nothing anymore.
    """
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    from baseline_guard.protection.state import SCHEMA_SYNC_DAG_ID

    query = (
        select(
            HITLDetail.subject,
            HITLDetail.created_at,
            TaskInstance.dag_id,
            TaskInstance.run_id,
            TaskInstance.task_id,
        )
        .join(TaskInstance, HITLDetail.ti_id == TaskInstance.id)
        .where(
            TaskInstance.dag_id == SCHEMA_SYNC_DAG_ID,
            HITLDetail.responded_at.is_(None),
            TaskInstance.state.in_((TaskInstanceState.DEFERRED, TaskInstanceState.AWAITING_INPUT)),
        )
        .order_by(HITLDetail.created_at)
    )
    with create_session() as session:
        rows = session.execute(query).all()
    for subject, created_at, dag_id, run_id, task_id in rows:
        yield {
            "subject": subject,
            "created_at": created_at,
            "response_received": False,
            "task_instance": {"dag_id": dag_id, "dag_run_id": run_id, "task_id": task_id},
        }
