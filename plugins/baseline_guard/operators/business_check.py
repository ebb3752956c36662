"""Run business-check scenario suites against an environment, publish the reports, fail loudly."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.sdk import BaseHook, BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

from baseline_guard.checks import CheckRun, load_suites, reports, run_checks
from baseline_guard.checks.html_report import to_html
from baseline_guard.checks.runner import DEFAULT_CONCURRENCY
from baseline_guard.environment_contract import Environment, EnvironmentKind
from baseline_guard.errors import BusinessChecksFailed
from baseline_guard.health.dburl import dsn
from baseline_guard.health.recorder import record_check
from baseline_guard.health.store import HistoryStore
from baseline_guard.hooks.environment import connection_base_url
from baseline_guard.operators.base import EnvironmentApiOperator

DEFAULT_SUITES = Path(__file__).resolve().parents[3] / "include" / "scenarios"
REPORT_URL_TTL_S = 7 * 24 * 3600


class BusinessCheckReportLink(BaseOperatorLink):
    """'Business check report' button on the task: the HTML report (a presigned URL, valid 7 days)."""

    name = "Business check report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return XCom.get_value(ti_key=ti_key, key=self.xcom_key) or ""


class BusinessCheckOperator(EnvironmentApiOperator):
    """Run the scenario suites against an environment through its gateway.

    Writes a JSON result, a JUnit XML file and an HTML report to S3 under the run, links the
    HTML report from the task, logs a summary table, and fails naming the broken scenario,
    module and interface. On failure the environment admins are notified with the summary.

    :param environment: environment to check (templated)
    :param routing_key: routing key of a project environment (templated; default: the
        environment's own, found through the environment API)
    :param tags: run only scenarios with any of these tags; empty runs all (templated)
    :param suites_path: file or folder of scenario suites
    :param gateway_conn_id: HTTP connection of the environments' gateway
    :param aws_conn_id: S3 connection for the reports
    :param bucket: bucket for the reports (templated)
    :param report_prefix: key prefix for this run's reports (templated)
    :param concurrency: scenarios in flight at once
    :param timeout_s: per-step timeout
    :param notify_on_failure: tell the environment's owners (admins for the baseline) when the outcome
        changes: checks start failing, break elsewhere, or pass again
    :param history_conn_id: Postgres connection of the check history (``baseline_guard`` database);
        ``None`` records nothing. A failure to record is logged and never fails the check.
    """

    template_fields: Sequence[str] = ("environment", "routing_key", "tags", "bucket", "report_prefix")
    operator_extra_links = (BusinessCheckReportLink(),)
    ui_color = "#d5f5e3"

    def __init__(
        self,
        *,
        environment: str = "baseline",
        routing_key: str | None = None,
        tags: Sequence[str] | str = (),
        suites_path: str | Path = DEFAULT_SUITES,
        gateway_conn_id: str = "baseline_gateway",
        aws_conn_id: str | None = "aws_backups",
        bucket: str | None = None,
        report_prefix: str = "reports/{{ dag.dag_id }}/{{ run_id }}/{{ ti.task_id }}",
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout_s: float = 10.0,
        notify_on_failure: bool = True,
        history_conn_id: str | None = "baseline_guard_db",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.environment = environment
        self.routing_key = routing_key
        self.tags = tags
        self.suites_path = suites_path
        self.gateway_conn_id = gateway_conn_id
        self.aws_conn_id = aws_conn_id
        self.bucket = bucket
        self.report_prefix = report_prefix
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.notify_on_failure = notify_on_failure
        self.history_conn_id = history_conn_id

    @cached_property
    def gateway_url(self) -> str:
        return connection_base_url(BaseHook.get_connection(self.gateway_conn_id))

    def execute(self, context: Any) -> dict[str, Any]:
        self.bind_trace_id(context)
        env = self.env_api.get_environment(self.environment)
        routing_key = self.routing_key or (env.routing_key if env.kind == EnvironmentKind.PROJECT else None)
        tags = [t for t in (self.tags.split(",") if isinstance(self.tags, str) else self.tags) if t]
        suites = load_suites(self.suites_path)
        self.log.info(
            "running business checks",
            environment=env.name,
            routing_key=routing_key,
            tags=tags,
            gateway=self.gateway_url,
        )
        run = run_checks(
            suites, self.gateway_url, environment=env.name, routing_key=routing_key, tags=tags,
            concurrency=self.concurrency, timeout_s=self.timeout_s,
        )  # fmt: skip
        self.log.info("business checks finished\n%s", reports.summary_table(run))
        report_url = self._publish(run, context)
        self._record_history(run, context, report_url)
        result = {
            "environment": env.name,
            "passed": run.passed,
            "scenarios": len(run.scenarios),
            "failed": [s.name for s in run.failed_scenarios],
            "broken": [{"module": m, "interface": i, "scenarios": n} for m, i, n in run.broken_interfaces()],
            "report_url": report_url,
        }
        message = None if run.passed else failure_message(run)
        if self.notify_on_failure:
            result["notified"] = self._tell_owners(env, run, tags, message, report_url)
        if message is not None:
            raise BusinessChecksFailed(message)
        return result

    def _tell_owners(
        self, env: Environment, run: CheckRun, tags: list[str], message: str | None, report_url: str | None
    ) -> str:
        """One message per change of outcome to the environment's owners (admins for the baseline)."""
        from baseline_guard.notifiers.owners import notify_environment
        from baseline_guard.protection.check_alerts import record_outcome

        broken = [f"{m} · {i}" for m, i, _ in run.broken_interfaces()]
        alert: str | None = "failed" if message else None
        if self.aws_conn_id and self.bucket:  # the last outcome is kept per environment in the bucket
            client = S3Hook(aws_conn_id=self.aws_conn_id).get_conn()
            alert, _ = record_outcome(
                client,
                self.bucket,
                env.name,
                passed=run.passed,
                broken=broken,
                at=datetime.now(UTC),
                tags=tags,
            )
        if alert is None:
            self.log.info("no message: the outcome did not change", environment=env.name)
            return ""
        if alert == "recovered":
            title, body = f"Business checks pass again on {env.name}", f"every scenario passed on {env.name}"
        else:
            title, body = (
                f"Business checks failed on {env.name}",
                f"{message}\nReport: {report_url or 'not uploaded'}",
            )
        who = notify_environment(env, title, body, failure=alert != "recovered")
        self.log.info("outcome sent", environment=env.name, alert=alert, to=who)
        return who

    def _publish(self, run: CheckRun, context: Any) -> str | None:
        """Upload JSON, JUnit and HTML reports; return a presigned URL of the HTML one."""
        if not (self.aws_conn_id and self.bucket):
            self.log.warning("no report bucket configured: reports are not uploaded")
            return None
        s3 = S3Hook(aws_conn_id=self.aws_conn_id)
        prefix = self.report_prefix.rstrip("/")
        files = {
            "result.json": (reports.to_json(run), "application/json"),
            "junit.xml": (reports.to_junit_xml(run), "application/xml"),
            "report.html": (to_html(run), "text/html; charset=utf-8"),
        }
        client = s3.get_conn()
        for name, (text, content_type) in files.items():
            client.put_object(
                Bucket=self.bucket, Key=f"{prefix}/{name}", Body=text.encode(), ContentType=content_type
            )
        url = client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": f"{prefix}/report.html"},
            ExpiresIn=REPORT_URL_TTL_S,
        )
        self.log.info("reports uploaded", bucket=self.bucket, prefix=prefix, files=sorted(files))
        ti = context.get("ti") if hasattr(context, "get") else None
        if ti is not None:
            ti.xcom_push(key=BusinessCheckReportLink().xcom_key, value=url)
        return url

    def _record_history(self, run: CheckRun, context: Any, report_url: str | None) -> None:
        """Add the run to the check history; if that fails, log it and go on (the check result stands)."""
        if not self.history_conn_id:
            return
        started = time.monotonic()
        try:
            c = BaseHook.get_connection(self.history_conn_id)
            store = HistoryStore.connect(
                dsn(c.host, c.port, c.login, c.password, c.schema), connect_timeout=5
            )
            try:
                ti = context.get("ti")
                record_check(store, run, dag_run=context.get("dag_run"), task_id=self.task_id,
                             try_number=getattr(ti, "try_number", None), report_url=report_url)  # fmt: skip
            finally:
                store.conn.close()
        except Exception as exc:  # the history is a by-product: never fail the check for it
            self.log.warning(
                "check not recorded in the history", conn_id=self.history_conn_id, error=str(exc)
            )
            return
        self.log.info("check recorded in the history", ms=round((time.monotonic() - started) * 1000, 1))


def failure_message(run: CheckRun, limit: int = 5) -> str:
    """Which scenarios failed and where: ``business checks failed on baseline: 3 of 40 scenarios; broken: ...``."""
    names = [s.name for s in run.failed_scenarios]
    shown = ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
    return (
        f"business checks failed on {run.environment}: {len(names)} of {len(run.scenarios)} scenarios ({shown}); "
        f"broken: {'; '.join(reports.broken_lines(run))}"
    )
