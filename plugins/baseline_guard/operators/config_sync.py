"""Apply to an environment the test configuration prepared with each production release; ask the on-call
group about production configuration changes that came without one, and record what they decided."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.exceptions import HITLTriggerEventError
from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule
from airflow.sdk.log import mask_secret

from baseline_guard.clock import run_as_of
from baseline_guard.configsync import DECISIONS
from baseline_guard.dag_defaults import NO_RETRY_FOR
from baseline_guard.errors import InvalidInput
from baseline_guard.operators.base import EnvironmentApiOperator, GuardDbOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

DEFAULT_DECISION_TIMEOUT_MIN = 50


class ConfigSyncOperator(EnvironmentApiOperator):
    """For each service of ``environment``, apply the test configuration of the version production runs.

    The test configuration is found through the production release records of that version
    (``test_config_ref``) and applied through the environment API when the environment runs
    another one. Production configuration values are never read or copied. Every secret value
    (by key name or by its look: URLs with passwords, tokens) is registered with Airflow's masker
    before anything is logged; logs and the return value carry key names and counts, never values.
    A configuration over the size limits is refused for that service; the others are still applied.

    Releases recorded after the run's time (:func:`~baseline_guard.clock.run_as_of`) are ignored.

    :param environment: environment to configure; never ``production`` (templated)
    """

    template_fields: Sequence[str] = ("environment",)
    ui_color = "#e8daef"

    def __init__(self, *, environment: str = "baseline", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.environment = environment

    def execute(self, context: Context) -> dict[str, list[dict[str, Any]]]:
        from baseline_guard.configsync import (
            check_config_size,
            config_summary,
            releases_with_test_config,
            secret_values,
        )

        self.bind_trace_id(context)
        self.env_api.require_writable(self.environment)
        as_of = run_as_of(context)
        wanted = releases_with_test_config(self.env_api.list_releases(until=as_of), as_of)
        applied: list[dict[str, Any]] = []
        without_test_config: list[dict[str, str]] = []
        refused: list[dict[str, str]] = []
        for svc in self.env_api.list_services(self.environment):
            if svc.name not in wanted:
                continue
            release = wanted[svc.name]
            if release is None or not release.test_config_ref:
                self.log.warning("production's version has no test config", service=svc.name)
                without_test_config.append({"service": svc.name})
                continue
            current = self.env_api.get_applied_test_config(self.environment, svc.name)
            if current.ref == release.test_config_ref:
                continue
            config = self.env_api.get_test_config(release.test_config_ref)
            for value in secret_values(config.values):
                mask_secret(value)
            try:
                check_config_size(config.ref, config.values)
            except InvalidInput as err:
                self.log.error("test config refused", service=svc.name, reason=str(err))
                refused.append({"service": svc.name, "ref": config.ref, "reason": str(err)})
                continue
            self.env_api.apply_test_config(self.environment, svc.name, config.ref, config.values)
            summary = config_summary(svc.name, config.ref, current.ref, config.values, current.values)
            self.log.info("applied test config", **summary)
            applied.append(summary)
        return {"applied": applied, "without_test_config": without_test_config, "refused": refused}


class FindUnmatchedConfigChangesOperator(EnvironmentApiOperator, GuardDbOperator):
    """List production configuration changes that came without a test configuration, and ask about them.

    The records (one row per service in the guard's database, table ``config_decision``) are
    compared and updated in one transaction that locks the services' rows first, so an answer
    recorded meanwhile by a pending question is never overwritten.

    Each change returned becomes one on-call question (``ConfigChangeDecisionOperator``). The
    on-call channel gets one message listing them, from the task's success callback
    (:func:`oncall_messages` in a :class:`~baseline_guard.notifiers.results.ResultNotifier`), so a
    retried try does not tell twice. A change whose question is still waiting for its answer in an
    earlier run is not asked again. "Now" is the run's time.

    :param environment: the environment whose services are watched (templated)
    :param decision_timeout_minutes: how long the on-call person has to answer (templated)
    """

    template_fields: Sequence[str] = ("environment", "decision_timeout_minutes")

    def __init__(
        self,
        *,
        environment: str = "baseline",
        decision_timeout_minutes: int = DEFAULT_DECISION_TIMEOUT_MIN,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.environment = environment
        self.decision_timeout_minutes = decision_timeout_minutes

    def execute(self, context: Context) -> list[dict[str, str]]:
        from baseline_guard.configsync import asked_record, unmatched_config_changes

        self.bind_trace_id(context)
        now = run_as_of(context)
        digests = [
            self.env_api.get_config_digest(s.name) for s in self.env_api.list_services(self.environment)
        ]
        releases = self.env_api.list_releases()
        timeout = timedelta(minutes=self.decision_timeout_minutes)
        run_id = str(context.get("run_id", ""))
        asked: list[dict[str, str]] = []

        def decide(recorded: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
            needs_person, updates = unmatched_config_changes(digests, recorded, releases, now=now)
            asked[:] = needs_person
            for change in needs_person:
                updates[change["service"]] = asked_record(
                    change, asked_at=now, response_timeout=timeout, run_id=run_id
                )
            return updates

        with self.guard_db.config_decisions() as records:
            records.update([d.service for d in digests], decide)
        needs_person = asked
        self.log.info("production config changes", checked=len(digests), need_a_person=len(needs_person))
        return needs_person


class ConfigChangeDecisionOperator(GuardDbOperator, HITLOperator):
    """Ask the on-call group what to do about one production config change, and record the answer for it.

    The answer (or the timeout) is recorded under the change's own service at once, in a transaction
    that locks that service's row, so an unanswered question never holds or misplaces the others and
    an hourly run checking meanwhile never loses the answer. A timeout fails the task (the run
    shows it) and is not retried.

    :param change: ``{"service", "digest", "changed_at"}`` from ``FindUnmatchedConfigChangesOperator``
    :param decision_timeout_minutes: how long the on-call group has to answer (templated)
    """

    template_fields: Sequence[str] = (*HITLOperator.template_fields, "decision_timeout_minutes")

    def __init__(
        self,
        *,
        change: dict[str, str],
        decision_timeout_minutes: int = DEFAULT_DECISION_TIMEOUT_MIN,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("options", DECISIONS)
        kwargs.setdefault("response_timeout", timedelta(minutes=DEFAULT_DECISION_TIMEOUT_MIN))
        # A response timeout is an outcome, not a glitch: it fails at once, never retried.
        kwargs["retry_policy"] = ExceptionRetryPolicy(
            rules=[
                RetryRule(
                    exception=[*NO_RETRY_FOR, HITLTriggerEventError],
                    action=RetryAction.FAIL,
                    reason="no answer (or bad input): retrying cannot fix this",
                )
            ]
        )
        super().__init__(subject=_subject(change), body=_body(change), **kwargs)
        self.change = change
        self.decision_timeout_minutes = decision_timeout_minutes

    def execute(self, context: Context) -> Any:
        self.response_timeout = timedelta(minutes=self.decision_timeout_minutes)
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from baseline_guard.configsync import applies_to_current, decided_record, timed_out_record

        service = self.change["service"]
        try:
            result = super().execute_complete(context, event)
        except HITLTriggerEventError:
            assert self.response_timeout is not None  # __init__ always sets one
            expired_at = run_as_of(context) + self.response_timeout  # when the question expired

            def timed_out(current: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
                before = current.get(service)
                if not applies_to_current(before, self.change):
                    return {}
                return {service: timed_out_record(self.change, (before or {}).get("asked_at"), expired_at)}

            with self.guard_db.config_decisions() as records:
                records.update([service], timed_out)
            self.log.error("no decision", service=service, error=event.get("error_type", "error"))
            raise
        record = decided_record(
            self.change, result["chosen_options"][0], result["responded_by_user"], result["responded_at"]
        )

        def decided(current: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
            return {service: record} if applies_to_current(current.get(service), self.change) else {}

        with self.guard_db.config_decisions() as records:
            written = records.update([service], decided)
        if written:
            self.log.info(
                "decision recorded", service=service, decision=record["decision"], by=record["decided_by"]
            )
        else:
            self.log.warning(
                "production config changed again since the question; answer not recorded", service=service
            )
        return {**self.change, **record}


def refuse_oversized(synced: Mapping[str, list[dict[str, Any]]]) -> None:
    """Fail with the test configs a sync refused (the failure notifier tells the admins, once)."""
    if synced["refused"]:
        reasons = "; ".join(f"{r['service']}: {r['reason']}" for r in synced["refused"])
        raise InvalidInput(f"test configs refused, the other services were applied: {reasons}")


def oncall_messages(changes: list[Mapping[str, str]] | None) -> list[dict[str, Any]]:
    """The one on-call message about the changes a run asks about (none when there are none)."""
    if not changes:
        return []
    lines = [f"• {c['service']} changed at {c['changed_at']}" for c in changes]
    return [
        {
            "title": f"Baseline Guard: production config changed without a test config ({len(changes)})",
            "body": "\n".join(lines)
            + "\nNo test configuration came with these changes. Decide in Airflow: DAG "
            "baseline_config_sync, task 'decide' (Required actions).",
            "failure": False,
        }
    ]


def _subject(change: dict[str, str]) -> str:
    return f"{change['service']}: production configuration changed without a test configuration"


def _body(change: dict[str, str]) -> str:
    return (
        f"Production configuration of **{change['service']}** changed at {change['changed_at']} "
        f"(digest `{change['digest'][:19]}…`) and no test configuration came with it.\n\n"
        "Values are not shown: production values must never reach the baseline. "
        "Update the baseline's test configuration by hand if the change matters for tests."
    )
