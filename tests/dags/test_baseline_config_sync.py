"""baseline_config_sync, a whole run under dag.test() against a private reference environment.

The path with no production change to ask about (under dag.test() a question would wait for an
answer); the questions, answers and timeouts run against the real scheduler in
tests/include/local_stack/test_local_stack_config_sync.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from private_env import PrivateEnvironment, private_environment, stored_state
from reference_env.launcher import ReferenceEnvironment

pytestmark = pytest.mark.airflow


@pytest.fixture
def environment(
    make_env_api: Callable[[], ReferenceEnvironment], monkeypatch: pytest.MonkeyPatch, guard_db: str
) -> PrivateEnvironment:
    return private_environment(make_env_api, monkeypatch)


def test_a_first_run_applies_test_configs_records_the_digests_and_asks_nobody(
    run_dag: Callable[..., dict[str, Any]], environment: PrivateEnvironment, guard_db: str
) -> None:
    run = run_dag("baseline_config_sync")

    assert run["state"] == "success", run["tasks"]
    applied = run["xcom"]["apply_test_configs"]["applied"]
    assert applied and run["tasks"]["publish_change"] == "success"
    for summary in applied:
        current = environment.api.get(f"/environments/baseline/services/{summary['service']}/test-config")
        assert current.json()["ref"] == summary["ref"]
    assert run["xcom"]["find_unmatched_changes"] == []
    records, _ = stored_state(guard_db)  # one row per service in the guard's database
    assert {"order", "quote"} <= set(records) and {r["status"] for r in records.values()} == {"recorded"}
    assert environment.messages("oncall") == [] and environment.messages("admins") == []
