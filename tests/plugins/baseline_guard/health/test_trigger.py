"""Why a check ran, from what its Airflow run says (with the Task SDK's own asset-event model)."""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk.api.datamodels._generated import AssetEventDagRunReference
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
    return AssetEventDagRunReference.model_validate({
        "asset": {"name": "environment_changed", "uri": "x-baseline-guard://environment/changed", "extra": {}},
        "extra": extra, "source_task_id": "t", "source_dag_id": source_dag_id, "source_run_id": "r",
        "source_map_index": -1, "source_aliases": [], "timestamp": datetime(2026, 11, 30, 10, 5, tzinfo=UTC),
    })  # fmt: skip


def test_environment_changes_from_consumed_asset_events() -> None:
    events = [
        _event({"environment": "baseline", "source": "baseline_schema_sync", "changes": ["add column x"]}),
        _event({"environment": "proj-a"}, source_dag_id="test_data_restore"),
        _event({}),  # names no environment: not a change we can place
    ]
    assert environment_changes(events) == [
        EnvironmentChange("baseline", datetime(2026, 11, 30, 10, 5, tzinfo=UTC), "baseline_schema_sync",
                          ["add column x"]),
        EnvironmentChange("proj-a", datetime(2026, 11, 30, 10, 5, tzinfo=UTC), "test_data_restore", []),
    ]  # fmt: skip
