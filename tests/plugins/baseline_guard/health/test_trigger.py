"""Why a check ran, from what its Airflow run says (with the Task SDK's own asset-event model)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from airflow.sdk.api.datamodels._generated import AssetEventDagRunReference
from baseline_guard.errors import InvalidInput
from baseline_guard.health.records import EnvironmentChange, Trigger
from baseline_guard.health.trigger import environment_changes, trigger_reason


def test_trigger_reason_from_run_type_events_and_conf() -> None:
    assert trigger_reason("scheduled", "scheduled__2026-11-30T10:30:00+00:00", {}, 0) is Trigger.HOURLY
    assert (
        trigger_reason("DagRunType.ASSET_TRIGGERED", "asset_triggered__x", {}, 1)
        is Trigger.ENVIRONMENT_CHANGE
    )
    assert (
        trigger_reason("manual", "ci__20261130T103000__ab12cd34", {"environment": "proj-a"}, 0) is Trigger.CI
    )
    assert trigger_reason("manual", "manual__2026-11-30", {"reason": "ci"}, 0) is Trigger.CI
    assert trigger_reason("manual", "manual__2026-11-30", {"reason": "re-check"}, 0) is Trigger.RECHECK
    assert trigger_reason("manual", "manual__2026-11-30", None, 0) is Trigger.MANUAL


def _event(extra: dict, source_dag_id: str | None = "baseline_code_sync") -> AssetEventDagRunReference:
    return AssetEventDagRunReference.model_validate(
        {
            "asset": {
                "name": "environment_changed",
                "uri": "x-baseline-guard://environment/changed",
                "extra": {},
            },
            "extra": extra,
            "source_task_id": "t",
            "source_dag_id": source_dag_id,
            "source_run_id": "r",
            "source_map_index": -1,
            "source_aliases": [],
            "timestamp": datetime(2026, 11, 30, 10, 5, tzinfo=UTC),
        }
    )


def test_environment_changes_from_consumed_asset_events() -> None:
    events = [
        _event({"environment": "baseline", "source": "baseline_schema_sync", "changes": ["add column x"]}),
        _event({"environment": "proj-a"}, source_dag_id="baseline_config_sync"),
        # an environment manager's event, posted over the REST API (Airflow adds from_rest_api)
        _event(
            {
                "environment": "proj-b",
                "source": "env-manager",
                "changes": [{"service": "quote"}],
                "from_rest_api": True,
            },
            source_dag_id=None,
        ),
        _event({"environment": "proj-c", "from_rest_api": True}, source_dag_id=None),
    ]
    at = datetime(2026, 11, 30, 10, 5, tzinfo=UTC)
    assert environment_changes(events) == [
        EnvironmentChange(
            "baseline", at, "baseline_schema_sync", ["add column x"], "baseline_code_sync", "r"
        ),
        EnvironmentChange("proj-a", at, "baseline_config_sync", [], "baseline_config_sync", "r"),
        EnvironmentChange("proj-b", at, "env-manager", [{"service": "quote"}]),
        EnvironmentChange("proj-c", at, "unknown", []),
    ]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({}, r"'environment' is None: expected an environment name matching"),
        ({"environment": "Proj A"}, r"'environment' is 'Proj A': expected an environment name"),
        ({"environment": "proj-a", "routing_key": "k"}, r"unknown key 'routing_key': expected extra \{"),
        ({"environment": "proj-a", "changes": "quote 1.2"}, r"'changes' is 'quote 1.2': expected a list"),
        ({"environment": "proj-a", "source": ""}, r"'source' is '': expected a non-empty string"),
    ],
)
def test_an_event_that_breaks_the_contract_is_refused_naming_it(extra: dict, says: str) -> None:
    with pytest.raises(InvalidInput, match=r"^environment_changed event \(from the REST API\): " + says):
        environment_changes([_event({"environment": "baseline"}), _event(extra, source_dag_id=None)])
