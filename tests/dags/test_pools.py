"""The syncs share the pool ``baseline_syncs`` (a few slots), the checks keep the default pool."""

from __future__ import annotations

from pathlib import Path

import pytest
from baseline_guard.pools import POOLS, SYNC_POOL, sync_pools

pytestmark = pytest.mark.airflow

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
SYNC_TASKS = {
    "baseline_code_sync": {"rollout"},
    "baseline_config_sync": {"apply_test_configs", "find_unmatched_changes"},
}
CHECK_DAGS = ("business_check", "project_environment_checks", "recheck_failing_environments")


def test_the_sync_tasks_share_a_pool_smaller_than_the_workers_and_the_checks_stay_out_of_it(
    tmp_path: Path,
) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from local_stack.airflow_env import airflow_env
    from local_stack.config import StackConfig

    bag = DagBag(dag_folder=str(DAGS_DIR))
    for dag_id, task_ids in SYNC_TASKS.items():
        for task_id in task_ids:
            assert bag.dags[dag_id].get_task(task_id).pool == SYNC_POOL, (dag_id, task_id)
    for dag_id in CHECK_DAGS:
        assert {t.pool for t in bag.dags[dag_id].tasks} == {"default_pool"}, dag_id
    parallelism = int(airflow_env(StackConfig.load(tmp_path, environ={}))["AIRFLOW__CORE__PARALLELISM"])
    assert 1 <= POOLS[SYNC_POOL][0] < parallelism  # the checks always find a free slot


def test_the_pools_are_created_and_an_edit_by_hand_is_undone(airflow_db: None) -> None:
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    assert sync_pools() == [SYNC_POOL]
    with create_session() as session:
        pool = session.query(Pool).filter(Pool.pool == SYNC_POOL).one()
        assert (pool.slots, pool.include_deferred) == (
            POOLS[SYNC_POOL][0],
            False,
        )  # a deferred rollout holds none
        pool.slots = 50
    sync_pools()
    with create_session() as session:
        assert session.query(Pool).filter(Pool.pool == SYNC_POOL).one().slots == POOLS[SYNC_POOL][0]
