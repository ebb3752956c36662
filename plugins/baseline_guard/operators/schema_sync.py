"""Bring a baseline database's schema to production's: safe changes applied, destructive ones held.

:class:`PairDatabasesOperator` pairs the two environments' databases by service,
:class:`SchemaSyncOperator` syncs one pair (mapped), and :func:`summarize_schema_sync` /
:func:`held_plans` turn the results into what the admins are told and asked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import HITLOperator

from baseline_guard.errors import InvalidInput
from baseline_guard.operators.base import EnvironmentApiOperator, pg_tools

if TYPE_CHECKING:
    from airflow.sdk import Context


class PairDatabasesOperator(EnvironmentApiOperator):
    """Pair each target database with the source database of the same service.

    Returns ``[{"source_conn_id": ..., "target_conn_id": ...}, ...]`` (ordered by service), the keyword
    arguments of one :class:`SchemaSyncOperator` each, for ``expand_kwargs``.

    :param source_environment: environment whose schemas are the reference (read only) (templated)
    :param target_environment: environment whose schemas are brought to the source's (templated)
    """

    template_fields: Sequence[str] = ("source_environment", "target_environment")
    ui_color = "#d6eaf8"

    def __init__(self, *, source_environment: str, target_environment: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source_environment = source_environment
        self.target_environment = target_environment

    def execute(self, context: Context) -> list[dict[str, str]]:
        self.bind_trace_id(context)
        sources = {d.service: d for d in self.env_api.list_databases(self.source_environment)}
        pairs = [
            {"source_conn_id": sources[d.service].conn_id, "target_conn_id": d.conn_id}
            for d in sorted(self.env_api.list_databases(self.target_environment), key=lambda d: d.service)
            if d.service in sources
        ]
        self.log.info("database pairs", pairs=len(pairs), targets=[p["target_conn_id"] for p in pairs])
        return pairs


class SchemaSyncOperator(EnvironmentApiOperator):
    """Make the target database's schema match the source's (structure only, never data).

    The source is read through a read-only session. Safe statements are applied to the target
    in one transaction; destructive ones (drops, rewriting type changes, NOT NULL on filled
    tables...) are held and returned for a person, unless ``apply_destructive``. A statement
    PostgreSQL refuses is held too (with its error), with what depends on it, and the rest still
    applies. Afterwards the two schema dumps are compared per object, independently of the diff
    library: whatever still differs is returned as ``not_synced``.

    :param source_conn_id: Airflow connection of the source (production) database (templated)
    :param target_conn_id: Airflow connection of the target (baseline) database (templated)
    :param schemas: schemas to sync (templated)
    :param apply_destructive: apply held statements too; for a person who reviewed them
    :param target_environment: environment the target database belongs to; when given, the
        environment API must confirm it is writable (never ``production``) before any database
        is contacted (templated)
    :param expected_destructive: with ``apply_destructive``: the destructive statements a person
        approved; the sync refuses (nothing applied) when the diff now holds anything else
    :param expected_digest: with ``expected_destructive``: the digest shown with the approval
        (:func:`~baseline_guard.schema.review.plan_digest`); the sync refuses (nothing applied)
        when the statements handed to it are not exactly the ones it was computed from
    :param lock_timeout_ms: how long each statement may wait for a lock on the target (default 5 s)
    :param statement_timeout_ms: how long each statement may run on the target (default 5 min)
    """

    template_fields: Sequence[str] = ("source_conn_id", "target_conn_id", "schemas", "target_environment")
    ui_color = "#d6eaf8"

    def __init__(
        self,
        *,
        source_conn_id: str,
        target_conn_id: str,
        schemas: Sequence[str] = ("public",),
        apply_destructive: bool = False,
        target_environment: str | None = None,
        expected_destructive: Sequence[str] | None = None,
        expected_digest: str | None = None,
        lock_timeout_ms: int | None = None,
        statement_timeout_ms: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source_conn_id = source_conn_id
        self.target_conn_id = target_conn_id
        self.schemas = schemas
        self.apply_destructive = apply_destructive
        self.target_environment = target_environment
        self.expected_destructive = expected_destructive
        self.expected_digest = expected_digest
        self.lock_timeout_ms = lock_timeout_ms
        self.statement_timeout_ms = statement_timeout_ms

    def execute(self, context: Context) -> dict[str, Any]:
        target_kind = None
        if self.target_environment:
            self.bind_trace_id(context)
            target_kind = self.env_api.require_writable(self.target_environment).kind
        source_dsn, target_dsn = pg_tools(self.source_conn_id).dsn(), pg_tools(self.target_conn_id).dsn()
        from baseline_guard.schema import sync_schema  # heavy (migradiff, pglast): not at DAG parse time

        timeouts = {
            k: v
            for k, v in (
                ("lock_timeout_ms", self.lock_timeout_ms),
                ("statement_timeout_ms", self.statement_timeout_ms),
            )
            if v is not None
        }
        approved = self.expected_destructive if self.apply_destructive else None
        if self.expected_digest is not None:
            from baseline_guard.schema.review import plan_digest

            shown = plan_digest(approved or [])
            if shown != self.expected_digest:
                raise InvalidInput(
                    f"the statements to apply to {self.target_conn_id} are not the ones approved "
                    f"(digest {shown}, approved {self.expected_digest}); nothing was applied"
                )
        result = sync_schema(
            source_dsn,
            target_dsn,
            schemas=list(self.schemas),
            apply_destructive=self.apply_destructive,
            approved=list(approved) if approved is not None else None,
            target_kind=target_kind,
            **timeouts,
        )
        for stmt in result.applied:
            self.log.info(
                "applied",
                sql=stmt.sql,
                safe=stmt.safe,
                reason=stmt.reason,
                target_conn_id=self.target_conn_id,
            )
        for stmt in result.held:
            self.log.warning("held", sql=stmt.sql, reason=stmt.reason, target_conn_id=self.target_conn_id)
        for residual in result.not_synced:
            self.log.warning(
                "not synced",
                object=residual.object,
                problem=residual.problem,
                target_conn_id=self.target_conn_id,
            )
        self.log.info(
            "schema sync done",
            applied=len(result.applied),
            held=len(result.held),
            not_synced=len(result.not_synced),
            target_conn_id=self.target_conn_id,
        )
        return {
            "applied": [s.sql for s in result.applied],
            "held": [s.as_dict() for s in result.held],
            "not_synced": [r.as_dict() for r in result.not_synced],
            "source_conn_id": self.source_conn_id,
            "target_conn_id": self.target_conn_id,
        }


def summarize_schema_sync(
    results: Sequence[Mapping[str, Any] | None] | None,
) -> dict[str, list[dict[str, Any]]]:
    """What the syncs applied, held for a person and could not sync, per target (failed syncs left out)."""
    done = [r for r in (results or []) if r]
    return {
        "applied": [{"target": r["target_conn_id"], "sql": r["applied"]} for r in done if r["applied"]],
        "held": [
            {"source": r["source_conn_id"], "target": r["target_conn_id"], "statements": r["held"]}
            for r in done
            if r["held"]
        ],
        "not_synced": [
            {"target": r["target_conn_id"], "objects": r["not_synced"]} for r in done if r.get("not_synced")
        ],
    }


APPLY_NONE = "Apply to none"
APPROVALS_PREFIX = "schema-approvals"
SQL_SHOWN_MAX = (
    4_000  # characters of SQL shown per database (~50 statements); longer is linked (backup store)
)
LINK_EXPIRES_S = 7 * 24 * 3600


def held_plans(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The held statements per pair (with their reasons) and the digest an approval is bound to."""
    from baseline_guard.schema.review import plan_digest

    return [
        {
            "source_conn_id": h["source"],
            "target_conn_id": h["target"],
            "statements": [{"sql": s["sql"], "reason": s["reason"]} for s in h["statements"]],
            "plan_digest": plan_digest(s["sql"] for s in h["statements"]),
        }
        for h in summary["held"]
    ]


def plan_key(environment: str, plan: Mapping[str, Any], leaf: str) -> str:
    """Where a held plan's files live in the backup store: one folder per database and digest."""
    digest = str(plan["plan_digest"]).removeprefix("sha256:")
    return f"{APPROVALS_PREFIX}/{environment}/{plan['target_conn_id']}/{digest}/{leaf}"


def plan_sql(plan: Mapping[str, Any]) -> str:
    """The exact SQL an approval of ``plan`` applies, as one script (the digest in its first line)."""
    lines = [f"-- {plan['target_conn_id']} (from {plan['source_conn_id']}): {plan['plan_digest']}"]
    for statement in plan["statements"]:
        lines += ["", f"-- held: {' '.join(statement['reason'].split())}", statement["sql"]]
    return "\n".join(lines) + "\n"


def approval_body(plans: Sequence[Mapping[str, Any]], links: Mapping[str, str] | None = None) -> str:
    """The question put to an admin (Markdown): per database a summary by kind first, then the SQL.

    The SQL is shown whole when it is short; otherwise ``links[target_conn_id]`` (the script in the
    backup store) is given. Either way the digest is shown: what an approval applies is bound to it.
    """
    from baseline_guard.schema.review import summarize_held

    links = links or {}
    lines = [
        "The baseline schema sync held **destructive** changes: they can lose data in the baseline.",
        "Choose the databases to apply them to; each applies exactly the SQL below (its digest is "
        f"checked before anything runs). *{APPLY_NONE}* (or no answer) applies nothing; a database "
        "not chosen is asked again only when its plan changes.",
    ]
    for plan in plans:
        statements = plan["statements"]
        lines += ["", f"#### {plan['target_conn_id']} (from {plan['source_conn_id']})", ""]
        lines.append(f"{len(statements)} statement(s) held, digest `{plan['plan_digest']}`:")
        lines += [f"- {kind.line()}" for kind in summarize_held(statements)]
        sql = "\n".join(s["sql"] for s in statements)
        link = links.get(plan["target_conn_id"])
        if len(sql) <= SQL_SHOWN_MAX or not link:
            lines += ["", "```sql", sql, "```"]
        else:
            lines += [
                "",
                f"The exact SQL ({len(sql):,} characters) is too long to show here: [{plan['target_conn_id']}.sql]({link})",
            ]
    return "\n".join(lines) + "\n"


def approved_plans(
    plans: Sequence[Mapping[str, Any]], answer: Mapping[str, Any] | None
) -> tuple[list[dict[str, Any]], list[Mapping[str, Any]]]:
    """(keyword arguments of an approved :class:`SchemaSyncOperator` per chosen database, plans not chosen).

    Nothing is approved when the answer includes *Apply to none*, or names a database not asked about.
    """
    chosen = set((answer or {}).get("chosen_options") or [])
    asked = {p["target_conn_id"] for p in plans}
    if APPLY_NONE in chosen or not chosen <= asked:
        chosen = set()
    approved = [
        {
            "source_conn_id": p["source_conn_id"],
            "target_conn_id": p["target_conn_id"],
            "expected_destructive": [s["sql"] for s in p["statements"]],
            "expected_digest": p["plan_digest"],
        }
        for p in plans
        if p["target_conn_id"] in chosen
    ]
    return approved, [p for p in plans if p["target_conn_id"] not in chosen]


class SchemaApprovalOperator(HITLOperator):
    """Ask an admin which databases' held changes to apply: one option per database, several allowed.

    The options are the target connection ids of ``plans`` plus *Apply to none* (the default, also
    taken when nobody answers in time). They are known only at run time, so they are set from the
    rendered ``plans`` when the task starts and again when it resumes with the answer.

    :param plans: the held plans (:func:`held_plans`) (templated)
    """

    template_fields: Sequence[str] = (*HITLOperator.template_fields, "plans")

    def __init__(self, *, plans: Any, **kwargs: Any) -> None:
        super().__init__(options=[APPLY_NONE], defaults=[APPLY_NONE], multiple=True, **kwargs)
        self.plans = plans

    def _options_from_plans(self) -> None:
        self.options = [p["target_conn_id"] for p in self.plans] + [APPLY_NONE]

    def execute(self, context: Any) -> Any:
        self._options_from_plans()
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        self._options_from_plans()
        return super().execute_complete(context, event)


def changed_targets(
    summary: Mapping[str, Any], approved: Sequence[Mapping[str, Any] | None] | None
) -> list[str]:
    """Every target database a sync or an approved apply changed, sorted."""
    changed = [a["target"] for a in summary["applied"]] + [r["target_conn_id"] for r in approved or [] if r]
    return sorted(set(changed))
