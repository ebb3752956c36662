"""Run business-check scenario suites against an environment, publish the reports, fail naming the break.

Who hears about it is decided here and told once by the task's own notifier
(:class:`~baseline_guard.notifiers.owners.BusinessCheckNotifier`), after the last try.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

from baseline_guard.clock import run_as_of
from baseline_guard.environment_contract import Environment, EnvironmentKind
from baseline_guard.errors import BusinessChecksFailed, InvalidInput
from baseline_guard.hooks.environment import EnvironmentHook
from baseline_guard.hooks.gateway import GATEWAY_CONN_ID, GatewayHook
from baseline_guard.notifiers.admins import AdminsNotifier
from baseline_guard.notifiers.owners import CHECK_ALERT_XCOM_KEY, BusinessCheckNotifier
from baseline_guard.operators.base import BackupStoreOperator, EnvironmentApiOperator, pg_tools

if TYPE_CHECKING:
    from airflow.sdk import Context

    from baseline_guard.checks.results import CheckRun
    from baseline_guard.health.records import EnvironmentChange

# the project's suites; a deployment (the case-study stack) names its own with BASELINE_GUARD_SCENARIOS_DIR
DEFAULT_SUITES = Path(
    os.environ.get("BASELINE_GUARD_SCENARIOS_DIR")
    or Path(__file__).resolve().parents[3] / "include" / "scenarios"
)
REPORT_URL_TTL_S = 7 * 24 * 3600
HISTORY_CONN_ID = "baseline_guard_db"


class BusinessCheckReportLink(BaseOperatorLink):
    """'Business check report' button on the task: the HTML report (a presigned URL, valid 7 days)."""

    name = "Business check report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return XCom.get_value(ti_key=ti_key, key=self.xcom_key) or ""


class BusinessCheckOperator(EnvironmentApiOperator, BackupStoreOperator):
    """Run the scenario suites against an environment through its gateway.

    Writes a JSON result, a JUnit XML file and an HTML report to the backup store under the run,
    links the HTML report from the task, records the run in the check history, logs a summary table,
    and fails naming the broken scenario, module and interface. Whether the outcome is worth a
    message (it started failing, broke elsewhere, passes again) is decided here and pushed as the
    XCom ``check_alert``; the task's :class:`BusinessCheckNotifier` (set here as its failure and
    success callback, in place of the default one) sends it once, after the last try.

    :param environment: environment to check (templated)
    :param routing_key: routing key of a project environment (templated; default: the
        environment's own, found through the environment API)
    :param tags: run only scenarios with any of these tags; empty runs all (templated; a list)
    :param suites_path: file or folder of scenario suites
    :param gateway_conn_id: HTTP connection of the environments' gateway
    :param report_prefix: key prefix for this run's reports (templated)
    :param concurrency: scenarios in flight at once (default: the engine's)
    :param timeout_s: per-step timeout
    :param notify_on_failure: tell the environment's owners (admins for the baseline) when the outcome
        changes: checks start failing, break elsewhere, or pass again
    :param history_conn_id: Postgres connection of the check history (``baseline_guard`` database);
        ``None`` records nothing. A failure to record is logged and never fails the check.
    :param history_trigger: why the check ran, as the history records it (``re-check``); default: from
        the run (hourly, environment change, CI, manual)
    :param environment_change: the change of ``environment`` this check follows, when its own DAG made
        it: ``{"source": <who changed it>, "changes": [...]}`` (templated). Recorded in the history with
        the check, as changed when this step starts (the change ended before it), so the time to detect
        a breakage it caused is known without publishing ``environment_changed`` (which would start a
        second check). The check is then recorded as run for an ``environment_change``.

    The backup store's connection (``aws_conn_id``, default ``aws_backups``) names the bucket; ``None``
    uploads no report and keeps no outcome (every failure is then told).
    """

    template_fields: Sequence[str] = (
        "environment",
        "routing_key",
        "tags",
        "report_prefix",
        "environment_change",
    )
    operator_extra_links = (BusinessCheckReportLink(),)
    ui_color = "#d5f5e3"

    def __init__(
        self,
        *,
        environment: str = "baseline",
        routing_key: str | None = None,
        tags: Sequence[str] = (),
        suites_path: str | Path = DEFAULT_SUITES,
        gateway_conn_id: str = GATEWAY_CONN_ID,
        report_prefix: str = "reports/{{ dag.dag_id }}/{{ run_id }}/{{ ti.task_id }}",
        concurrency: int | None = None,
        timeout_s: float = 10.0,
        notify_on_failure: bool = True,
        history_conn_id: str | None = HISTORY_CONN_ID,
        history_trigger: str | None = None,
        environment_change: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**_outcome_callbacks(kwargs))
        self.environment = environment
        self.routing_key = routing_key
        self.tags = tags
        self.suites_path = suites_path
        self.gateway_conn_id = gateway_conn_id
        self.report_prefix = report_prefix
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.notify_on_failure = notify_on_failure
        self.history_conn_id = history_conn_id
        self.history_trigger = history_trigger
        self.environment_change = environment_change

    @cached_property
    def gateway(self) -> GatewayHook:
        return GatewayHook(self.gateway_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        self.bind_trace_id(context)
        changed = self._change_followed(datetime.now(UTC), context)
        env = self.env_api.get_environment(self.environment)
        run = self._run_checks(env, checked_route(env, self.routing_key))
        report_url = self._publish(run, context)
        self._record_history(run, context, report_url, changed)
        summary = None if run.passed else failure_message(run)
        result = {
            "environment": env.name,
            "passed": run.passed,
            "scenarios": len(run.scenarios),
            "failed": [s.name for s in run.failed_scenarios],
            "broken": [{"module": m, "interface": i, "scenarios": n} for m, i, n in run.broken_interfaces()],
            "report_url": report_url,
        }
        if self.notify_on_failure:
            result["alert"] = self._decide_alert(run, context, summary, report_url)
        if summary is not None:
            raise BusinessChecksFailed(summary)
        return result

    def _run_checks(self, env: Environment, routing_key: str | None) -> CheckRun:
        from baseline_guard.checks import load_suites, run_checks
        from baseline_guard.checks.reports import summary_table

        tags = [t for t in self.tags if t]
        tuning = {"concurrency": self.concurrency} if self.concurrency else {}
        self.log.info(
            "running business checks",
            environment=env.name,
            routing_key=routing_key,
            tags=tags,
            gateway=self.gateway.base_url,
        )
        run = run_checks(
            load_suites(self.suites_path),
            self.gateway.base_url,
            environment=env.name,
            routing_key=routing_key,
            tags=tags,
            timeout_s=self.timeout_s,
            **tuning,
        )
        self.log.info("business checks finished\n%s", summary_table(run))
        return run

    def _decide_alert(
        self, run: CheckRun, context: Context, summary: str | None, report_url: str | None
    ) -> str | None:
        """Is this outcome worth a message? Kept in the bucket per environment; pushed for the notifier."""
        from baseline_guard.protection.check_alerts import record_outcome

        alert: str | None = None if run.passed else "failed"
        if self.aws_conn_id:  # the last outcome is kept per environment in the bucket
            broken = [f"{m} · {i}" for m, i, _ in run.broken_interfaces()]
            alert, _ = record_outcome(
                self.store.client,
                self.store.bucket,
                run.environment,
                passed=run.passed,
                broken=broken,
                at=run_as_of(context),
                tags=run.tags,
                decided_by=task_instance_key(context),
            )
        decision = {
            "environment": run.environment,
            "alert": alert,
            "summary": summary,
            "report_url": report_url,
        }
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key=CHECK_ALERT_XCOM_KEY, value=decision)
        self.log.info("outcome decided", environment=run.environment, alert=alert or "none: unchanged")
        return alert

    def _publish(self, run: CheckRun, context: Context) -> str | None:
        """Upload JSON, JUnit and HTML reports; return a presigned URL of the HTML one."""
        from baseline_guard.checks.html_report import to_html
        from baseline_guard.checks.reports import to_json, to_junit_xml

        if not self.aws_conn_id:
            self.log.warning("no backup store connection: reports are not uploaded")
            return None
        prefix = self.report_prefix.rstrip("/")
        files = {
            "result.json": (to_json(run), "application/json"),
            "junit.xml": (to_junit_xml(run), "application/xml"),
            "report.html": (to_html(run), "text/html; charset=utf-8"),
        }
        bucket = self.store.bucket
        for name, (text, content_type) in files.items():
            self.store.client.put_object(
                Bucket=bucket, Key=f"{prefix}/{name}", Body=text.encode(), ContentType=content_type
            )
        url = self.store.generate_presigned_url(
            "get_object",
            params={"Bucket": bucket, "Key": f"{prefix}/report.html"},
            expires_in=REPORT_URL_TTL_S,
        )
        self.log.info("reports uploaded", bucket=bucket, prefix=prefix, files=sorted(files))
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key=BusinessCheckReportLink().xcom_key, value=url)
        return url

    def _change_followed(self, at: datetime, context: Context) -> list[EnvironmentChange]:
        """The change of ``environment_change``, made by this run (refused before any check when it
        breaks the contract)."""
        if self.environment_change is None:
            return []
        from baseline_guard.health.trigger import change_event
        from baseline_guard.strict_conf import excerpt

        given, what = self.environment_change, f"environment_change of task {self.task_id}"
        if not isinstance(given, Mapping) or "environment" in given:
            raise InvalidInput(
                f'{what}: expected {{"source": ..., "changes": [...]}} (the environment is '
                f"the one checked), got {type(given).__name__} {excerpt(str(given))}"
            )
        try:
            dag_run = context.get("dag_run")
            return [
                change_event(
                    {**given, "environment": self.environment},
                    at,
                    getattr(dag_run, "dag_id", None),
                    getattr(dag_run, "run_id", None),
                )
            ]
        except InvalidInput as err:
            raise InvalidInput(f"{what}: {err}") from None

    def _record_history(
        self,
        run: CheckRun,
        context: Context,
        report_url: str | None,
        changed: Sequence[EnvironmentChange] = (),
    ) -> None:
        """Add the run to the check history; if that fails, log it and go on (the check result stands)."""
        if not self.history_conn_id:
            return
        from baseline_guard.health.recorder import record_check
        from baseline_guard.health.records import Trigger
        from baseline_guard.health.store import HistoryStore

        started = time.monotonic()
        try:
            store = HistoryStore.connect(pg_tools(self.history_conn_id).dsn(), connect_timeout=5)
            try:
                ti = context.get("ti")
                record_check(
                    store,
                    run,
                    dag_run=context.get("dag_run"),
                    task_id=self.task_id,
                    try_number=getattr(ti, "try_number", None),
                    report_url=report_url,
                    trigger=Trigger(self.history_trigger) if self.history_trigger else None,
                    changed=changed,
                )
            finally:
                store.conn.close()
        except Exception as exc:  # the history is a by-product: never fail the check for it
            self.log.warning(
                "check not recorded in the history", conn_id=self.history_conn_id, error=str(exc)
            )
            return
        self.log.info("check recorded in the history", ms=round((time.monotonic() - started) * 1000, 1))


class ProjectEnvironmentsOperator(EnvironmentApiOperator):
    """Every project environment the environment API lists, with its routing key (one check each)."""

    def execute(self, context: Context) -> list[dict[str, Any]]:
        self.bind_trace_id(context)
        envs = [e for e in self.env_api.list_environments() if e.kind == EnvironmentKind.PROJECT]
        self.log.info("project environments", environments=[e.name for e in envs])
        return [{"environment": e.name, "routing_key": e.routing_key} for e in envs]


class FailingEnvironmentsOperator(BaseOperator):
    """Environments to re-check now: failing, in an outage that began at most ``within`` ago (from the history).

    :param within: how long after an outage began it is still re-checked
    :param history_conn_id: Postgres connection of the check history
    """

    def __init__(
        self, *, within: timedelta = timedelta(hours=1), history_conn_id: str = HISTORY_CONN_ID, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.within = within
        self.history_conn_id = history_conn_id

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from baseline_guard.health.recheck import failing_environments
        from baseline_guard.health.store import HistoryStore

        store = HistoryStore.connect(pg_tools(self.history_conn_id).dsn(), connect_timeout=5)
        try:
            names = failing_environments(store, as_of=run_as_of(context), within=self.within)
        finally:
            store.conn.close()
        self.log.info("failing environments to re-check", environments=names)
        return [{"environment": name} for name in names]


def checked_route(env: Environment, routing_key: str | None) -> str | None:
    """The routing key a check of ``env`` goes through: the one the environment API lists for it.

    A check is recorded for the environment it names, so it must reach that environment: a routing
    key that is not the environment's own (another project's, a made-up one, any for the baseline)
    is refused before anything runs. No key given: the environment's own.
    """
    own = env.routing_key if env.kind == EnvironmentKind.PROJECT else None
    if not routing_key or routing_key == own:
        if env.kind == EnvironmentKind.PROJECT and not own:
            raise InvalidInput(
                f"the environment API lists no routing key for project environment {env.name}: "
                "its check could not be told from the baseline's, refused"
            )
        return own
    if own is None:
        raise InvalidInput(
            f"{env.name} is reached without a routing key, got {routing_key!r}: a check through it "
            f"would test another environment and be recorded for {env.name}; leave routing_key empty"
        )
    raise InvalidInput(
        f"routing key {routing_key!r} is not the one the environment API lists for {env.name}: a check "
        f"through it would test another environment and be recorded for {env.name}; "
        "leave routing_key empty to use the environment's own"
    )


def check_target(params: Mapping[str, Any], triggering_asset_events: Any = None) -> dict[str, Any]:
    """What to check: the environment named by the latest asset event that triggered the run, with its
    own routing key and every scenario; else the params.

    Every event is checked against the ``environment_changed`` contract first: one that breaks it fails
    the run (``InvalidInput``, naming the event and what is expected) rather than being skipped unseen.
    """
    changed = changed_environments(triggering_asset_events)
    if changed:
        return {"environment": changed[-1], "tags": [], "routing_key": None}
    return {
        "environment": params["environment"],
        "tags": params["tags"],
        "routing_key": params["routing_key"],
    }


def also_changed(triggering_asset_events: Any = None) -> list[dict[str, Any]]:
    """The other environments the run's events name, beside the latest one :func:`check_target` picks
    (a run consumes every event queued since the last one), as mapping kwargs: one check each."""
    changed = changed_environments(triggering_asset_events)
    return [{"environment": name} for name in dict.fromkeys(changed) if name != changed[-1]]


def changed_environments(triggering_asset_events: Any) -> list[str]:
    """The environment of each ``environment_changed`` event the run consumed, oldest event first
    (validated; Airflow hands them over in no particular order)."""
    from baseline_guard.health.trigger import environment_changes

    changes = [c for events in (triggering_asset_events or {}).values() for c in environment_changes(events)]
    return [c.environment for c in sorted(changes, key=lambda c: c.changed_at)]


def task_instance_key(context: Context) -> str | None:
    """``dag/run/task/map`` of the running task instance (the same for all its tries)."""
    ti = context.get("ti")
    if ti is None:
        return None
    return f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{getattr(ti, 'map_index', -1)}"


def failure_message(run: CheckRun, limit: int = 5) -> str:
    """Which scenarios failed and where: ``business checks failed on baseline: 3 of 40 scenarios; broken: ...``."""
    from baseline_guard.checks.findings import broken_lines

    names = [s.name for s in run.failed_scenarios]
    shown = ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
    return (
        f"business checks failed on {run.environment}: {len(names)} of {len(run.scenarios)} scenarios ({shown}); "
        f"broken: {'; '.join(broken_lines(run))}"
    )


def _outcome_callbacks(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with the task's own notifier as failure and success callback, in place of the default
    :class:`AdminsNotifier` (whose ``what`` it keeps for failures that are not a check's outcome)."""
    default = kwargs.get("on_failure_callback") or (kwargs.get("default_args") or {}).get(
        "on_failure_callback"
    )
    defaults = default if isinstance(default, list) else [default]
    what = next((d.what for d in defaults if isinstance(d, AdminsNotifier)), "business checks")
    env_api_conn_id = kwargs.get("env_api_conn_id", EnvironmentHook.default_conn_name)
    told = {"what": what, "env_api_conn_id": env_api_conn_id}
    return {
        **kwargs,
        "on_failure_callback": BusinessCheckNotifier(**told, failure=True),
        "on_success_callback": BusinessCheckNotifier(**told, failure=False),
    }
