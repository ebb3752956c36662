"""The check history in PostgreSQL: record a check run in one transaction, read what the page shows.

Writes keep ``incident``, ``environment_state`` and ``module_state`` current (per environment under
an advisory lock, so concurrent runs and late arrivals give the same incidents as a replay would),
which keeps reads small whatever the history's size.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
import psycopg2.extensions
from psycopg2.extras import execute_values

from baseline_guard.health import measures
from baseline_guard.health.measures import Incident, RunObservation
from baseline_guard.health.records import CheckRecord, EnvironmentChange


@dataclass(frozen=True)
class RunRef:
    """Where a check run lives in Airflow, and its report."""

    id: int
    dag_id: str | None
    run_id: str | None
    report_url: str | None
    started_at: datetime


@dataclass(frozen=True)
class EnvironmentState:
    environment: str
    routing_key: str | None
    first_checked_at: datetime
    last_checked_at: datetime
    passed: bool
    last_run: RunRef


@dataclass(frozen=True)
class ModuleState:
    environment: str
    module: str
    passed: bool
    checked_at: datetime
    interface: str | None
    instance: str | None
    version: str | None


@dataclass(frozen=True)
class StoredIncident:
    environment: str
    incident: Incident
    first_failed: RunRef
    cause: EnvironmentChange | None


@dataclass(frozen=True)
class HistoryTotals:
    """Counts over the whole history (they only grow while it is kept), for monotonic metrics.

    ``runs``: (environment, passed, check runs, scenario results); ``failed_scenarios``: (environment,
    module, interface, failed scenario results); ``failed_module_checks``: (environment, module, check
    runs that failed in it); ``downtime_s``: environment -> seconds inside its incidents (an open one up
    to ``as_of``); ``incident_times``: (environment, time to detect or None, time to recover or None) of
    every incident of the whole environment; ``last_changes``: (environment, source, last change).
    """

    as_of: datetime
    runs: list[tuple[str, bool, int, int]]
    failed_scenarios: list[tuple[str, str, str, int]]
    failed_module_checks: list[tuple[str, str, int]]
    downtime_s: dict[str, float]
    incident_times: list[tuple[str, float | None, float | None]]
    last_changes: list[tuple[str, str, datetime]]


_RUN_COLUMNS = "id, started_at, finished_at, passed, modules, failed_modules"


class HistoryStore:
    """Check history over one psycopg2 connection (the caller owns and closes it)."""

    def __init__(self, conn: psycopg2.extensions.connection) -> None:
        self.conn = conn

    @classmethod
    def connect(cls, dsn: str, **kwargs: Any) -> HistoryStore:
        return cls(psycopg2.connect(dsn, **kwargs))

    # --- write ---------------------------------------------------------------------------------

    def record(self, check: CheckRecord, changes: Sequence[EnvironmentChange] = ()) -> int:
        """Store a check run, its scenario results and the changes it followed; returns the run's id.
        Recording the same Airflow try again changes nothing."""
        with self.conn, self.conn.cursor() as cur:
            self._insert_changes(cur, changes)
            cur.execute(  # one round trip: take the environment's lock, then insert the run
                """SELECT pg_advisory_xact_lock(hashtext(%s));
                   INSERT INTO check_run (environment, routing_key, dag_id, run_id, task_id, try_number, trigger,
                       started_at, finished_at, duration_ms, passed, scenarios, failed, modules, failed_modules,
                       report_url)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT ON CONSTRAINT check_run_airflow_try DO NOTHING RETURNING id""",
                (
                    f"baseline_guard:{check.environment}",
                    check.environment,
                    check.routing_key,
                    check.dag_id,
                    check.run_id,
                    check.task_id,
                    check.try_number,
                    str(check.trigger),
                    check.started_at,
                    check.finished_at,
                    check.duration_ms,
                    check.passed,
                    len(check.scenarios),
                    sum(1 for s in check.scenarios if not s.passed),
                    check.modules,
                    check.failed_modules,
                    check.report_url,
                ),
            )
            row = cur.fetchone()
            if row is None:
                cur.execute(
                    "SELECT id FROM check_run WHERE dag_id = %s AND run_id = %s AND task_id = %s AND try_number = %s",
                    (check.dag_id, check.run_id, check.task_id, check.try_number),
                )
                return int(cur.fetchone()[0])
            run = int(row[0])
            execute_values(
                cur,
                """INSERT INTO check_result (run, environment, checked_at, suite, scenario, passed, duration_ms,
                       module, interface, instance, version) VALUES %s""",
                [
                    (
                        run,
                        check.environment,
                        check.started_at,
                        s.suite,
                        s.scenario,
                        s.passed,
                        s.duration_ms,
                        s.module,
                        s.interface,
                        s.instance,
                        s.version,
                    )
                    for s in check.scenarios
                ],
                page_size=10_000,
            )
            self._refresh_incidents(cur, check.environment, check.started_at)
            self._update_state(cur, run, check)
            return run

    def rebuild(self, environment: str) -> None:
        """Recompute the environment's incidents and current state from its whole history (after a
        bulk import or a backfill that bypassed :meth:`record`)."""
        with self.conn, self.conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"baseline_guard:{environment}",))
            self._refresh_incidents(cur, environment, datetime.min.replace(tzinfo=UTC))
            cur.execute("DELETE FROM environment_state WHERE environment = %s", (environment,))
            cur.execute(
                """INSERT INTO environment_state (environment, routing_key, first_checked_at, last_checked_at,
                       last_run, passed)
                   SELECT r.environment, r.routing_key, (SELECT min(started_at) FROM check_run
                          WHERE environment = %(env)s), r.started_at, r.id, r.passed
                   FROM check_run r WHERE r.environment = %(env)s ORDER BY r.started_at DESC, r.id DESC LIMIT 1""",
                {"env": environment},
            )
            cur.execute("DELETE FROM module_state WHERE environment = %s", (environment,))
            cur.execute(
                """INSERT INTO module_state (environment, module, checked_at, run, passed, interface, instance,
                       version)
                   SELECT l.environment, l.module, l.started_at, l.id, l.passed, f.interface, f.instance,
                          f.version
                   FROM (SELECT DISTINCT ON (m.module) r.environment, m.module, r.started_at, r.id,
                                NOT (m.module = ANY (r.failed_modules)) AS passed
                         FROM check_run r CROSS JOIN LATERAL unnest(r.modules) AS m(module)
                         WHERE r.environment = %s ORDER BY m.module, r.started_at DESC, r.id DESC) l
                   LEFT JOIN LATERAL (SELECT interface, instance, version FROM check_result c
                                      WHERE c.run = l.id AND c.module = l.module AND NOT c.passed LIMIT 1) f
                          ON NOT l.passed""",
                (environment,),
            )

    def record_changes(self, changes: Sequence[EnvironmentChange]) -> None:
        with self.conn, self.conn.cursor() as cur:
            self._insert_changes(cur, changes)

    @staticmethod
    def _insert_changes(cur: Any, changes: Sequence[EnvironmentChange]) -> None:
        if changes:
            execute_values(
                cur,
                # once per (environment, source, time), and once per Airflow run that made it
                "INSERT INTO environment_change (environment, changed_at, source, changes, dag_id, run_id) "
                "VALUES %s ON CONFLICT DO NOTHING",
                [
                    (
                        c.environment,
                        c.changed_at,
                        c.source,
                        json.dumps(c.changes, default=str),
                        c.dag_id,
                        c.run_id,
                    )
                    for c in changes
                ],
            )

    def _refresh_incidents(self, cur: Any, environment: str, since: datetime) -> None:
        """Recompute the environment's incidents that a run at ``since`` can change."""
        rebuild_from, affected = since, False
        while True:  # widen until no incident reaching past rebuild_from starts before it
            cur.execute(
                "SELECT min(started_at) FROM incident WHERE environment = %s AND (ended_at IS NULL OR ended_at >= %s)",
                (environment, rebuild_from),
            )
            earliest = cur.fetchone()[0]
            affected = affected or earliest is not None
            if earliest is None or earliest >= rebuild_from:
                break
            rebuild_from = earliest
        if affected:
            cur.execute(
                "DELETE FROM incident WHERE environment = %s AND (ended_at IS NULL OR ended_at >= %s)",
                (environment, rebuild_from),
            )
        cur.execute(
            f"""(SELECT {_RUN_COLUMNS} FROM check_run WHERE environment = %(env)s AND started_at < %(from)s
                 ORDER BY started_at DESC, id DESC LIMIT 1)
                UNION ALL
                (SELECT {_RUN_COLUMNS} FROM check_run WHERE environment = %(env)s AND started_at >= %(from)s)""",
            {"env": environment, "from": rebuild_from},
        )
        runs = [RunObservation(r[0], r[1], r[2], r[3], tuple(r[4]), tuple(r[5])) for r in cur.fetchall()]
        found = measures.incidents(runs)
        if not found:
            return
        # the changes that can be a cause (measures.cause): after the check before each incident (any
        # time before it when the incident began at the environment's first check), not after its start
        previous = [i.previous_check_at for i in found]
        cur.execute(
            "SELECT id, environment, changed_at, source, changes FROM environment_change "
            "WHERE environment = %s AND changed_at <= %s AND (%s::timestamptz IS NULL OR changed_at > %s)",
            (
                environment,
                max(i.started_at for i in found),
                *[None if None in previous else min(previous)] * 2,
            ),
        )
        known = [(r[0], EnvironmentChange(r[1], r[2], r[3], r[4])) for r in cur.fetchall()]
        change_ids = {id(change): change_id for change_id, change in known}
        rows = []
        for i in found:
            cause = measures.cause(i, [change for _, change in known])
            rows.append(
                (
                    environment,
                    i.scope,
                    i.started_at,
                    i.detected_at,
                    i.ended_at,
                    i.first_failed_run,
                    i.last_failed_run,
                    i.recovered_run,
                    i.failed_checks,
                    i.previous_check_at,
                    change_ids[id(cause)] if cause else None,
                )
            )
        execute_values(
            cur,
            """INSERT INTO incident (environment, module, started_at, detected_at, ended_at, first_failed_run,
                   last_failed_run, recovered_run, failed_checks, previous_check_at, cause) VALUES %s""",
            rows,
        )

    @staticmethod
    def _update_state(cur: Any, run: int, check: CheckRecord) -> None:
        cur.execute(
            """INSERT INTO environment_state AS s (environment, routing_key, first_checked_at, last_checked_at,
                   last_run, passed) VALUES (%s, %s, %s, %s, %s, %s)
               ON CONFLICT (environment) DO UPDATE SET
                   first_checked_at = LEAST(s.first_checked_at, EXCLUDED.first_checked_at),
                   last_checked_at = GREATEST(s.last_checked_at, EXCLUDED.last_checked_at),
                   routing_key = CASE WHEN EXCLUDED.last_checked_at >= s.last_checked_at
                                      THEN EXCLUDED.routing_key ELSE s.routing_key END,
                   last_run = CASE WHEN EXCLUDED.last_checked_at >= s.last_checked_at
                                   THEN EXCLUDED.last_run ELSE s.last_run END,
                   passed = CASE WHEN EXCLUDED.last_checked_at >= s.last_checked_at
                                 THEN EXCLUDED.passed ELSE s.passed END""",
            (check.environment, check.routing_key, check.started_at, check.started_at, run, check.passed),
        )
        failures = {}
        for s in check.scenarios:
            if not s.passed:
                failures.setdefault(s.module, s)
        rows = []
        for module in check.modules:
            f = failures.get(module)
            rows.append(
                (
                    check.environment,
                    module,
                    check.started_at,
                    run,
                    f is None,
                    f and f.interface,
                    f and f.instance,
                    f and f.version,
                )
            )
        execute_values(
            cur,
            """INSERT INTO module_state AS m (environment, module, checked_at, run, passed, interface, instance,
                   version) VALUES %s
               ON CONFLICT (environment, module) DO UPDATE SET checked_at = EXCLUDED.checked_at,
                   run = EXCLUDED.run, passed = EXCLUDED.passed, interface = EXCLUDED.interface,
                   instance = EXCLUDED.instance, version = EXCLUDED.version
               WHERE EXCLUDED.checked_at >= m.checked_at""",
            rows,
        )

    # --- read ----------------------------------------------------------------------------------

    def _query(self, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            rows = cur.fetchall()
        self.conn.rollback()  # end the read transaction: the next read sees new writes
        return rows

    def environments(self) -> list[EnvironmentState]:
        rows = self._query(
            """SELECT s.environment, s.routing_key, s.first_checked_at, s.last_checked_at, s.passed,
                      r.id, r.dag_id, r.run_id, r.report_url, r.started_at
               FROM environment_state s JOIN check_run r ON r.id = s.last_run ORDER BY s.environment"""
        )
        return [EnvironmentState(r[0], r[1], r[2], r[3], r[4], RunRef(*r[5:10])) for r in rows]

    def modules(self) -> list[ModuleState]:
        rows = self._query(
            "SELECT environment, module, passed, checked_at, interface, instance, version FROM module_state "
            "ORDER BY environment, module"
        )
        return [ModuleState(*r) for r in rows]

    def incidents(self, since: datetime) -> list[StoredIncident]:
        """Incidents open now or ended at or after ``since``, oldest first."""
        rows = self._query(
            """SELECT i.environment, i.module, i.started_at, i.detected_at, i.first_failed_run, i.last_failed_run,
                      i.failed_checks, i.ended_at, i.recovered_run, i.previous_check_at,
                      r.id, r.dag_id, r.run_id, r.report_url, r.started_at,
                      c.environment, c.changed_at, c.source, c.changes, c.dag_id, c.run_id
               FROM incident i JOIN check_run r ON r.id = i.first_failed_run
               LEFT JOIN environment_change c ON c.id = i.cause
               WHERE i.ended_at IS NULL OR i.ended_at >= %s ORDER BY i.started_at, i.id""",
            (since,),
        )
        return [
            StoredIncident(
                r[0], Incident(*r[1:10]), RunRef(*r[10:15]), EnvironmentChange(*r[15:21]) if r[15] else None
            )
            for r in rows
        ]

    def flaky(
        self, since: datetime, window: timedelta = measures.RECHECK_WINDOW
    ) -> list[measures.FlakyScenario]:
        """:func:`measures.flaky_scenarios` in SQL: each failure since ``since`` against the scenario's
        next result on the same environment."""
        rows = self._query(
            """SELECT f.environment, f.scenario,
                      (array_agg(f.module ORDER BY f.checked_at DESC) FILTER (WHERE n.flaky))[1],
                      (array_agg(f.interface ORDER BY f.checked_at DESC) FILTER (WHERE n.flaky))[1],
                      count(*), count(*) FILTER (WHERE n.flaky)
               FROM check_result f
               LEFT JOIN LATERAL (
                   SELECT x.passed AND x.checked_at - f.checked_at <= %(window)s AS flaky
                   FROM check_result x
                   WHERE x.environment = f.environment AND x.scenario = f.scenario AND x.checked_at > f.checked_at
                   ORDER BY x.checked_at LIMIT 1) n ON true
               WHERE NOT f.passed AND f.checked_at >= %(since)s
               GROUP BY f.environment, f.scenario
               HAVING count(*) FILTER (WHERE n.flaky) > 0""",
            {"since": since, "window": window},
        )
        found = [measures.FlakyScenario(r[0], r[1], r[2], r[3], int(r[4]), int(r[5])) for r in rows]
        return sorted(found, key=lambda f: (-f.flaky_failures, f.environment, f.scenario))

    def totals(self, as_of: datetime) -> HistoryTotals:
        """:class:`HistoryTotals` in one read-only snapshot (REPEATABLE READ: the counts agree)."""
        statements = {
            "runs": "SELECT environment, passed, count(*), sum(scenarios) FROM check_run "
            "GROUP BY environment, passed ORDER BY 1, 2",
            # failures only (the partial index check_result_failures): small whatever the history's size
            "failed_scenarios": "SELECT environment, module, interface, count(*) FROM check_result "
            "WHERE NOT passed GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            "failed_module_checks": "SELECT environment, m.module, count(*) FROM check_run "
            "CROSS JOIN LATERAL unnest(failed_modules) AS m(module) WHERE NOT passed GROUP BY 1, 2 ORDER BY 1, 2",
            "incidents": "SELECT i.environment, EXTRACT(EPOCH FROM COALESCE(i.ended_at, %(as_of)s) - i.started_at), "
            "EXTRACT(EPOCH FROM i.detected_at - c.changed_at), EXTRACT(EPOCH FROM i.ended_at - i.started_at) "
            "FROM incident i LEFT JOIN environment_change c ON c.id = i.cause "
            "WHERE i.module = '' AND i.started_at <= %(as_of)s ORDER BY i.environment, i.started_at",
            "last_changes": "SELECT environment, source, max(changed_at) FROM environment_change "
            "GROUP BY 1, 2 ORDER BY 1, 2",
        }
        found: dict[str, list[tuple[Any, ...]]] = {}
        self.conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        try:
            with self.conn.cursor() as cur:
                for name, sql in statements.items():
                    cur.execute(sql, {"as_of": as_of})
                    found[name] = cur.fetchall()
        finally:
            self.conn.rollback()
            self.conn.set_session(isolation_level="DEFAULT", readonly="DEFAULT")
        downtime: dict[str, float] = {}
        for env, down, _, _ in found["incidents"]:
            downtime[env] = downtime.get(env, 0.0) + max(float(down), 0.0)
        return HistoryTotals(
            as_of=as_of,
            runs=[(e, bool(p), int(n), int(s or 0)) for e, p, n, s in found["runs"]],
            failed_scenarios=[(e, m, i, int(n)) for e, m, i, n in found["failed_scenarios"]],
            failed_module_checks=[(e, m, int(n)) for e, m, n in found["failed_module_checks"]],
            downtime_s=downtime,
            incident_times=[
                (e, None if d is None else float(d), None if r is None else float(r))
                for e, _, d, r in found["incidents"]
            ],
            last_changes=[(e, s, t) for e, s, t in found["last_changes"]],
        )

    def changes(self, environment: str, since: datetime) -> list[EnvironmentChange]:
        rows = self._query(
            "SELECT environment, changed_at, source, changes, dag_id, run_id FROM environment_change "
            "WHERE environment = %s AND changed_at >= %s ORDER BY changed_at",
            (environment, since),
        )
        return [EnvironmentChange(*r) for r in rows]
