"""Bring a baseline database's schema to production's: safe changes applied, destructive ones held."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.postgres.hooks.postgres import PostgresHook
from airflow.sdk.log import mask_secret

from baseline_guard.operators.base import EnvironmentApiOperator


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
        lock_timeout_ms: int | None = None,
        statement_timeout_ms: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source_conn_id = source_conn_id
        self.target_conn_id = target_conn_id
        self.schemas = list(schemas)
        self.apply_destructive = apply_destructive
        self.target_environment = target_environment
        self.expected_destructive = list(expected_destructive) if expected_destructive is not None else None
        self.lock_timeout_ms = lock_timeout_ms
        self.statement_timeout_ms = statement_timeout_ms

    def execute(self, context: Any) -> dict[str, Any]:
        target_kind = None
        if self.target_environment:
            self.bind_trace_id(context)
            target_kind = self.env_api.require_writable(self.target_environment).kind
        source_dsn, target_dsn = _dsn(self.source_conn_id), _dsn(self.target_conn_id)
        from baseline_guard.schema import sync_schema  # heavy (migradiff, pglast): not at DAG parse time

        timeouts = {k: v for k, v in (("lock_timeout_ms", self.lock_timeout_ms),
                                      ("statement_timeout_ms", self.statement_timeout_ms)) if v is not None}  # fmt: skip
        result = sync_schema(
            source_dsn,
            target_dsn,
            schemas=self.schemas,
            apply_destructive=self.apply_destructive,
            approved=self.expected_destructive if self.apply_destructive else None,
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


def _dsn(conn_id: str) -> str:
    """A ``postgresql://`` DSN for the connection (holds the password: masked, never logged)."""
    url = PostgresHook(postgres_conn_id=conn_id).sqlalchemy_url
    if url.password:
        mask_secret(str(url.password))
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    mask_secret(dsn)
    return dsn
