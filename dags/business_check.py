"""
### Business checks

Can people use this environment right now, and if not, which **module** and which
**interface** broke? Runs the business scenario suites (`include/scenarios/*.yaml`: chains
of HTTP calls across modules with assertions) against an environment through its gateway.

Runs **hourly** on the baseline, **whenever an environment changes**, and **from CI** through the
REST API. An environment change is an event of the `environment_changed` asset: the code, schema
and test-config syncs publish one for the baseline, and an environment manager posts one after it
deployed to a project environment (`POST /api/v2/assets/events`, contract in `docs/health.md`). The
environment the latest event names is checked by `run_business_checks` (a project environment with
its own routing key, all scenarios); when one run consumed events of several environments (they
arrived together), `check_also_changed` checks each of the others the same way (otherwise it is
skipped, as in every run from CI or the clock). The check history records the changes, so an incident one caused shows its time to
detect. An event that breaks the contract fails `choose_target`, naming it. A restore publishes no
event: its own check step records the restore as the change it follows. From CI:

```
POST /api/v2/dags/business_check/dagRuns
{"logical_date": null, "conf": {"environment": "proj-a", "tags": ["smoke"]}}
```

Params: `environment` (default `baseline`), `tags` (empty = all scenarios), `routing_key`
(default: the environment's own, from the environment API; any other key is refused before the
check runs, as the check is recorded for the environment named). The run fails when any
scenario fails, naming scenario, module and interface. The environment's owners (the admins for
the baseline) get the summary and the report link once per change of outcome: when it starts
failing, when what is broken changes, when it passes again; the task's own notifier sends it once, after
the last try (`BusinessCheckNotifier`). Project environments are checked hourly
by `project_environment_checks`. Reports (HTML, JUnit XML, JSON) are stored in S3 under
the run and linked from the task (*Business check report*).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task
from baseline_guard.assets import ENVIRONMENT_CHANGED
from baseline_guard.dag_defaults import START_DATE, default_args, environment_param
from baseline_guard.errors import BusinessChecksFailed
from baseline_guard.operators.business_check import BusinessCheckOperator, also_changed, check_target


@dag(
    dag_id="business_check",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("30 * * * *", timezone="UTC"), assets=ENVIRONMENT_CHANGED
    ),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=4,
    doc_md=__doc__,
    tags=["baseline-guard", "business-check", "ci"],
    default_args=default_args(
        "business checks", execution_timeout=timedelta(minutes=10), no_retry_for=[BusinessChecksFailed]
    ),
    params={
        "environment": environment_param("Environment to check: baseline or a project environment's name."),
        "tags": Param(
            [],
            type="array",
            items={"type": "string", "pattern": "^[a-z0-9_-]+$"},
            description="Run only scenarios with any of these tags (e.g. smoke); empty runs all.",
        ),
        "routing_key": Param(
            None,
            type=["null", "string"],
            description="Routing key of the project environment (must be its own); empty: its own.",
        ),
    },
)
def business_check() -> None:
    @task(multiple_outputs=True)
    def choose_target(params: dict[str, Any], triggering_asset_events: Any = None) -> dict[str, Any]:
        """The environment named by the latest asset event that triggered the run, else the params."""
        return check_target(params, triggering_asset_events)

    target = choose_target()  # type: ignore[call-arg,misc]  # Airflow passes params from the run context
    BusinessCheckOperator(
        task_id="run_business_checks",
        environment=target["environment"],
        routing_key=target["routing_key"],
        tags=target["tags"],
    )

    @task
    def list_also_changed(triggering_asset_events: Any = None) -> list[dict[str, Any]]:
        """The other environments the run's events name (usually none): each checked the same way."""
        return also_changed(triggering_asset_events)

    others = list_also_changed()
    target >> others  # a broken event fails choose_target once; this one then does not run
    BusinessCheckOperator.partial(
        task_id="check_also_changed",
        report_prefix="reports/{{ dag.dag_id }}/{{ run_id }}/{{ ti.task_id }}/{{ ti.map_index }}",
        max_active_tis_per_dagrun=4,
        map_index_template="{{ task.environment }}",
    ).expand_kwargs(others)


business_check_dag = business_check()

if __name__ == "__main__":
    business_check_dag.test()
