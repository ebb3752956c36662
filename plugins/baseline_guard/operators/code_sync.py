"""Code sync around the rollouts: plan them from production's releases, read what the environment runs
after them, and say what happened (the rollouts themselves: :mod:`baseline_guard.operators.rollout`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from baseline_guard.clock import run_as_of
from baseline_guard.errors import RolloutFailed
from baseline_guard.operators.base import EnvironmentApiOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class PlanRolloutsOperator(EnvironmentApiOperator):
    """The rollouts that bring ``environment`` to the versions production runs as of the run.

    Returns ``[{"service", "version"}]``, one per service any of whose instances runs another
    version (for ``DualInstanceRolloutOperator.partial(...).expand_kwargs``).

    :param environment: environment to bring to production's versions (templated)
    """

    template_fields: Sequence[str] = ("environment",)

    def __init__(self, *, environment: str = "baseline", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.environment = environment

    def execute(self, context: Context) -> list[dict[str, str]]:
        from baseline_guard.codesync.versions import plan_rollouts, production_versions

        self.bind_trace_id(context)
        as_of = run_as_of(context)
        desired = production_versions(self.env_api.list_releases(until=as_of), as_of)
        plan = plan_rollouts(desired, self.env_api.list_services(self.environment))
        self.log.info("rollouts planned", as_of=as_of.isoformat(), production=desired, plan=plan)
        return plan


class ReconcileRolloutsOperator(EnvironmentApiOperator):
    """Split the planned rollouts into changed and failed by what ``environment`` runs now.

    Returns ``{"changed": [{"service", "version", "running"}], "failed": [...]}``.

    :param plan: the planned rollouts (templated; an XComArg)
    :param environment: the environment rolled out to (templated)
    """

    template_fields: Sequence[str] = ("plan", "environment")

    def __init__(self, *, plan: Any, environment: str = "baseline", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.environment = environment

    def execute(self, context: Context) -> dict[str, list[dict[str, Any]]]:
        from baseline_guard.codesync.versions import reconcile

        self.bind_trace_id(context)
        changed, failed = reconcile(self.plan or [], self.env_api.list_services(self.environment))
        self.log.info("code sync outcome", changed=len(changed), failed=len(failed))
        return {"changed": changed, "failed": failed}


class CodeSyncSummaryOperator(BaseOperator):
    """Say once what a code sync did: fail with the summary when a service failed (the failure
    notifier sends it), else return it under ``messages`` for a success notifier; nothing to do,
    nothing said.

    :param outcome: ``{"changed", "failed"}`` from :class:`ReconcileRolloutsOperator` (templated)
    """

    template_fields: Sequence[str] = ("outcome",)

    def __init__(self, *, outcome: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.outcome = outcome

    def execute(self, context: Context) -> dict[str, Any]:
        from baseline_guard.codesync.summary import summary_body, summary_title

        if not self.outcome["changed"] and not self.outcome["failed"]:
            self.log.info("nothing to do: the environment runs what production runs")
            return {"messages": []}
        title, body = summary_title(self.outcome), summary_body(self.outcome)
        if self.outcome["failed"]:
            raise RolloutFailed(f"{title}\n{body}")
        self.log.info("code sync done", summary=title)
        return {"messages": [{"title": title, "body": body, "failure": False}]}
