"""The restore DAG's wiring: copies first, one swap step after all of them, environment required."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.exceptions import ParamValidationError

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "test_data_restore.py"


@pytest.fixture(scope="module")
def dag():
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert not bag.import_errors
    return bag.dags["test_data_restore"]


def test_every_copy_is_made_before_one_swap_step_that_runs_however_they_ended(dag) -> None:
    restore, swap = dag.get_task("restore_database"), dag.get_task("swap_databases")

    assert restore.partial_kwargs.get("swap") is False
    assert swap.trigger_rule == "all_done_min_one_success"
    assert swap.upstream_task_ids == {"plan_restore", "restore_database"}
    assert dag.get_task("verify_restore").upstream_task_ids >= {"swap_databases"}


def test_the_environment_to_restore_must_be_named(dag) -> None:
    params = ParamsDict({key: dag.params.get_param(key) for key in dag.params})
    params.update({"backup_id": "latest:pre_test"})

    with pytest.raises(ParamValidationError, match="no default"):
        params.validate()
    params.update({"environment": "proj-a"})
    assert params.validate()["environment"] == "proj-a"
