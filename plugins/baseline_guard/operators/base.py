"""Team base operators: one per outside system, each owning its connection id and a cached hook.

The ``AwsBaseOperator[S3Hook]`` pattern: an operator inherits the bases of the systems it talks to
(cooperative keyword-only ``__init__``), and finds its hook on ``self.env_api`` / ``self.store`` /
``self.pg(conn_id)``.
Hooks are imported when first used, so parsing a DAG loads no driver.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from baseline_guard.hooks.environment import EnvironmentHook

if TYPE_CHECKING:
    from airflow.sdk import Context

    from baseline_guard.backup.dump import Progress, ProgressCallback
    from baseline_guard.hooks.backup_store import BackupStoreHook
    from baseline_guard.hooks.guard_db import GuardDbHook
    from baseline_guard.hooks.postgres import PgToolsHook

BACKUPS_CONN_ID = "aws_backups"  # = hooks.backup_store.BACKUPS_CONN_ID, without importing boto at parse
GUARD_DB_CONN_ID = (
    "baseline_guard_db"  # = hooks.guard_db.GUARD_DB_CONN_ID, without importing the driver at parse
)


class EnvironmentApiOperator(BaseOperator):
    """Base for operators that talk to the environment API.

    :param env_api_conn_id: Airflow connection id of the environment API
    """

    def __init__(self, *, env_api_conn_id: str = EnvironmentHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.env_api_conn_id = env_api_conn_id

    @cached_property
    def env_api(self) -> EnvironmentHook:
        return EnvironmentHook(self.env_api_conn_id)

    def bind_trace_id(self, context: Context) -> str:
        """Name every API call of this try after the task instance, so API and task logs line up."""
        ti = context.get("ti") if hasattr(context, "get") else None
        if ti is not None:
            map_index = getattr(ti, "map_index", -1)
            self.env_api.trace_id = f"{ti.dag_id}.{ti.run_id}.{ti.task_id}.{map_index}.{ti.try_number}"
        return self.env_api.trace_id


class BackupStoreOperator(BaseOperator):
    """Base for operators that read or write the backup store (S3).

    :param aws_conn_id: Airflow connection of the backup store; its extra names the bucket
    """

    def __init__(self, *, aws_conn_id: str = BACKUPS_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id

    @cached_property
    def store(self) -> BackupStoreHook:
        from baseline_guard.hooks.backup_store import BackupStoreHook

        return BackupStoreHook(aws_conn_id=self.aws_conn_id)


class GuardDbOperator(BaseOperator):
    """Base for operators that keep state between runs in the guard's database (decisions, incidents).

    :param guard_db_conn_id: Airflow connection of the ``baseline_guard`` database
    """

    def __init__(self, *, guard_db_conn_id: str = GUARD_DB_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.guard_db_conn_id = guard_db_conn_id

    @cached_property
    def guard_db(self) -> GuardDbHook:
        from baseline_guard.hooks.guard_db import GuardDbHook

        return GuardDbHook(self.guard_db_conn_id)


def push_outputs(context: Context, **outputs: Any) -> None:
    """Push XComs beside an operator's return value (which ``expand_kwargs`` maps over), for ``.output[key]``."""
    ti = context["ti"]
    for key, value in outputs.items():
        ti.xcom_push(key=key, value=value)


def pg_tools(postgres_conn_id: str, pg_bin_dir: str | None = None) -> PgToolsHook:
    """The :class:`PgToolsHook` of a server (operators often handle several, one per mapped database)."""
    from baseline_guard.hooks.postgres import PgToolsHook

    return PgToolsHook(postgres_conn_id=postgres_conn_id, pg_bin_dir=pg_bin_dir)


class PgToolsOperator(BaseOperator):
    """Base for operators that reach PostgreSQL servers and run ``pg_dump``/``pg_restore`` on them.

    The servers' connection ids come from the environment API's database list (one per database),
    so the hook is asked for per connection: ``self.pg(conn_id)``.

    :param pg_bin_dir: directory of the client tools; default ``$BASELINE_GUARD_PG_BIN_DIR``, else PATH
    :param progress_every_mib: log streaming progress every this many MiB
    """

    def __init__(
        self, *, pg_bin_dir: str | None = None, progress_every_mib: int = 256, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.pg_bin_dir = pg_bin_dir
        self.progress_every_mib = progress_every_mib

    def pg(self, postgres_conn_id: str) -> PgToolsHook:
        return pg_tools(postgres_conn_id, self.pg_bin_dir)

    @property
    def tools_dir(self) -> str | None:
        from baseline_guard.hooks.postgres import tools_dir

        return tools_dir(self.pg_bin_dir)

    def progress_logger(self, event: str, **fields: Any) -> ProgressCallback:
        """A callback for the engines' streaming progress, logging ``event`` with bytes and rate."""

        def log_progress(progress: Progress) -> None:
            self.log.info(event, bytes=progress.bytes_done, mib_per_s=round(progress.rate_mib_s, 1), **fields)

        return log_progress
