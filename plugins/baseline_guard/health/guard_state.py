"""The state the hourly DAGs decide by, a row each in the guard's PostgreSQL database. No Airflow.

- :class:`ConfigDecisionStore`: per service, the production config digest last seen and what the
  on-call person decided about it (the record of :mod:`baseline_guard.configsync.decisions`).
- :class:`PatrolIncidentStore`: per instance, the open patrol incident
  (:mod:`baseline_guard.protection.patrol_incidents`).

Every change is one read-modify-write transaction: the rows it is about are locked first
(``SELECT ... FOR UPDATE``, in key order), the new records are computed from what is stored *now*,
then written. Two overlapping runs (an hourly run and a pending question's answer, a patrol and its
retry) therefore never overwrite one another; a row another transaction inserted meanwhile makes the
transaction start again (a unique violation), so a first sighting is not decided twice either.

Records travel as the JSON-shaped dicts the pure logic takes (timestamps as ISO strings, absent
fields left out), so the logic does not know where they are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from psycopg2.extras import execute_values

from baseline_guard.configsync.decisions import (
    STATUS_ASKED,
    STATUS_DECIDED,
    STATUS_RECORDED,
    STATUS_TIMED_OUT,
)

T = TypeVar("T")
Records = dict[str, dict[str, Any]]
ATTEMPTS = 8  # a transaction that lost an insert race (or a deadlock) starts again at most this often

DECISION_FIELDS = (
    "digest",
    "seen_at",
    "status",
    "asked_at",
    "expires_at",
    "asked_in",
    "decision",
    "decided_by",
    "decided_at",
    "timed_out_at",
)
INCIDENT_FIELDS = ("since", "last_told", "reason")
STATUSES = (STATUS_RECORDED, STATUS_ASKED, STATUS_DECIDED, STATUS_TIMED_OUT)


def connect(dsn: str, **kwargs: Any) -> psycopg2.extensions.connection:
    """A connection whose session runs in UTC (timestamps come back as ``+00:00``)."""
    conn: psycopg2.extensions.connection = psycopg2.connect(dsn, options="-c timezone=UTC", **kwargs)
    return conn


def _as_record(fields: Iterable[str], row: Iterable[Any]) -> dict[str, Any]:
    return {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in zip(fields, row, strict=True)
        if value is not None
    }


def _in_transaction(conn: psycopg2.extensions.connection, body: Callable[[Any], T]) -> T:
    """Run ``body(cursor)`` in a transaction; start again when it lost a race for a new row or a lock."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with conn, conn.cursor() as cur:
                return body(cur)
        except (psycopg2.errors.UniqueViolation, psycopg2.errors.DeadlockDetected):
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")


class ConfigDecisionStore:
    """The config sync's decision records, one row per service (table ``config_decision``).

    :param conn: a psycopg2 connection to the guard's database (the caller owns and closes it)
    """

    def __init__(self, conn: psycopg2.extensions.connection) -> None:
        self.conn = conn

    def load(self, services: Iterable[str] | None = None) -> Records:
        """The records (of ``services``, default all), without locking them."""
        where, args = ("WHERE service = ANY(%s)", (sorted(services),)) if services is not None else ("", ())
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT service, {', '.join(DECISION_FIELDS)} FROM config_decision {where}", args)
            rows = cur.fetchall()
        self.conn.rollback()  # end the read: the next read sees newer writes
        return {r[0]: _as_record(DECISION_FIELDS, r[1:]) for r in rows}

    def pending(self) -> Records:
        """The services whose question is put to the on-call person and not answered (``asked``)."""
        with self.conn.cursor() as cur:
            cur.execute(
                f"SELECT service, {', '.join(DECISION_FIELDS)} FROM config_decision WHERE status = %s "
                "ORDER BY service",
                (STATUS_ASKED,),
            )
            rows = cur.fetchall()
        self.conn.rollback()
        return {r[0]: _as_record(DECISION_FIELDS, r[1:]) for r in rows}

    def update(self, services: Iterable[str], decide: Callable[[Records], Records]) -> Records:
        """Lock the rows of ``services``, let ``decide(current records)`` say which records to replace,
        write those, commit. ``decide`` may run more than once (a lost race starts again): keep it pure.

        :return: the records written
        """
        keys = sorted(set(services))

        def body(cur: Any) -> Records:
            cur.execute(
                f"SELECT service, {', '.join(DECISION_FIELDS)} FROM config_decision "
                "WHERE service = ANY(%s) ORDER BY service FOR UPDATE",
                (keys,),
            )
            current = {r[0]: _as_record(DECISION_FIELDS, r[1:]) for r in cur.fetchall()}
            updates = decide(current)
            unknown = set(updates) - set(keys)
            if unknown:
                raise ValueError(f"decide() returned records of services it was not given: {sorted(unknown)}")
            self._write(cur, {s: r for s, r in updates.items() if s in current}, replace=True)
            self._write(cur, {s: r for s, r in updates.items() if s not in current}, replace=False)
            return updates

        return _in_transaction(self.conn, body)

    @staticmethod
    def _write(cur: Any, records: Mapping[str, Mapping[str, Any]], *, replace: bool) -> None:
        if not records:
            return
        for service, record in records.items():
            if not record.get("digest") or not record.get("status"):
                raise ValueError(
                    f"a decision record needs a digest and a status, got {record!r} for {service}"
                )
        columns = ", ".join(DECISION_FIELDS)
        conflict = (
            " ON CONFLICT (service) DO UPDATE SET "
            + ", ".join(f"{f} = EXCLUDED.{f}" for f in DECISION_FIELDS)
            + ", updated_at = now()"
            if replace
            else ""  # a new row: another transaction inserting it first is a unique violation (start again)
        )
        execute_values(
            cur,
            f"INSERT INTO config_decision (service, {columns}) VALUES %s{conflict}",
            [(s, *(r.get(f) for f in DECISION_FIELDS)) for s, r in sorted(records.items())],
        )

    def import_records(self, records: Mapping[str, Mapping[str, Any]]) -> int:
        """Copy records in (the old Variable's JSON); a service already stored keeps its row. Returns rows added."""
        for service, record in records.items():
            if (
                not isinstance(record, Mapping)
                or not record.get("digest")
                or record.get("status") not in STATUSES
            ):
                raise ValueError(
                    f"config decision record of {service!r}: expected an object with a digest and a status "
                    f"out of {', '.join(STATUSES)}, got {record!r}"
                )
        added = 0
        with self.conn, self.conn.cursor() as cur:
            for service, record in sorted(records.items()):
                cur.execute(
                    f"INSERT INTO config_decision (service, {', '.join(DECISION_FIELDS)}) "
                    f"VALUES (%s, {', '.join(['%s'] * len(DECISION_FIELDS))}) ON CONFLICT (service) DO NOTHING",
                    (service, *(record.get(f) for f in DECISION_FIELDS)),
                )
                added += cur.rowcount
        return added


class PatrolIncidentStore:
    """The patrol's open incidents, one row per instance (table ``patrol_incident``).

    :param conn: a psycopg2 connection to the guard's database (the caller owns and closes it)
    """

    def __init__(self, conn: psycopg2.extensions.connection) -> None:
        self.conn = conn

    def load(self) -> Records:
        with self.conn.cursor() as cur:
            cur.execute(
                f"SELECT instance, {', '.join(INCIDENT_FIELDS)} FROM patrol_incident ORDER BY instance"
            )
            rows = cur.fetchall()
        self.conn.rollback()
        return {r[0]: _as_record(INCIDENT_FIELDS, r[1:]) for r in rows}

    def advance(self, step: Callable[[Records], tuple[Records, T]]) -> T:
        """Lock every open incident, let ``step(previous)`` give the incidents after this run (and what to
        tell), make the table say exactly that, commit. ``step`` may run more than once: keep it pure.

        :return: the second value ``step`` returned
        """

        def body(cur: Any) -> T:
            cur.execute(
                f"SELECT instance, {', '.join(INCIDENT_FIELDS)} FROM patrol_incident ORDER BY instance FOR UPDATE"
            )
            previous = {r[0]: _as_record(INCIDENT_FIELDS, r[1:]) for r in cur.fetchall()}
            incidents, outcome = step(previous)
            closed = sorted(set(previous) - set(incidents))
            if closed:
                cur.execute("DELETE FROM patrol_incident WHERE instance = ANY(%s)", (closed,))
            changed = {k: v for k, v in incidents.items() if k in previous and v != previous[k]}
            new = {k: v for k, v in incidents.items() if k not in previous}
            self._write(cur, changed, replace=True)
            self._write(cur, new, replace=False)
            return outcome

        return _in_transaction(self.conn, body)

    @staticmethod
    def _write(cur: Any, incidents: Mapping[str, Mapping[str, Any]], *, replace: bool) -> None:
        if not incidents:
            return
        conflict = (
            " ON CONFLICT (instance) DO UPDATE SET "
            + ", ".join(f"{f} = EXCLUDED.{f}" for f in INCIDENT_FIELDS)
            if replace
            else ""
        )
        execute_values(
            cur,
            f"INSERT INTO patrol_incident (instance, environment, {', '.join(INCIDENT_FIELDS)}) VALUES %s{conflict}",
            [
                (key, key.split("/", 1)[0], *(i[f] for f in INCIDENT_FIELDS))
                for key, i in sorted(incidents.items())
            ],
        )

    def import_incidents(self, incidents: Mapping[str, Mapping[str, Any]]) -> int:
        """Copy incidents in (the old Variable's JSON); an instance already stored keeps its row. Returns rows added."""
        for key, i in incidents.items():
            if "/" not in key or not isinstance(i, Mapping) or not i.get("since") or not i.get("last_told"):
                raise ValueError(
                    f"patrol incident {key!r}: expected an '<environment>/<service>#<index>' key and an object "
                    f"with since and last_told, got {i!r}"
                )
        added = 0
        with self.conn, self.conn.cursor() as cur:
            for key, i in sorted(incidents.items()):
                cur.execute(
                    "INSERT INTO patrol_incident (instance, environment, since, last_told, reason) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (instance) DO NOTHING",
                    (key, key.split("/", 1)[0], i["since"], i["last_told"], i.get("reason", "")),
                )
                added += cur.rowcount
        return added
