"""The shared Celery settings ride out a broker outage: run through the celery provider's own code.

Each case runs in a fresh Python (the provider reads its configuration once, at import) with the
settings of ``docker/airflow-settings.env`` and a broker address where nothing listens.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from local_stack.ports import free_port
from local_stack.shared_settings import read_env_file

CONFIG_OPTION = "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"
PROBE = """
import json, time
from types import SimpleNamespace
from airflow.providers.celery.executors import celery_executor_utils as utils

class Workload:  # what the executor hands over: a pre-assigned Celery task id and a JSON body
    ti = SimpleNamespace(external_executor_id="bg-broker-outage-probe")
    def model_dump_json(self):
        return "{}"

started = time.monotonic()
_, _, result = utils.send_workload_to_executor(("key", Workload(), "default", None))
worker = utils.app.conf
print(json.dumps({
    "send_failed_with": type(result.exception).__name__,
    "seconds": time.monotonic() - started,
    "worker_reconnects": worker.broker_connection_max_retries,
    "worker_cancels_on_connection_loss": worker.worker_cancel_long_running_tasks_on_connection_loss,
}))
"""


def _probe(**overrides: str | None) -> dict:
    env = {**os.environ, **read_env_file()}
    env["AIRFLOW__CELERY__BROKER_URL"] = f"redis://127.0.0.1:{free_port()}/0"  # Redis is down
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_send_while_redis_is_down_times_out_so_the_executor_sends_it_again() -> None:
    probe = _probe()
    # AirflowTaskTimeout: the executor keeps the task queued and sends it again next loop (up to
    # task_publish_max_retries); any other error fails the task instance at once
    assert probe["send_failed_with"] == "AirflowTaskTimeout"
    operation_timeout = float(read_env_file()["AIRFLOW__CELERY__OPERATION_TIMEOUT"])
    assert operation_timeout <= probe["seconds"] < operation_timeout + 5
    assert probe["worker_reconnects"] is None  # forever
    assert probe["worker_cancels_on_connection_loss"] is False


def test_without_the_shared_celery_config_the_same_send_fails_the_task() -> None:
    """Why the setting exists: Celery's default publish retry gives up within the operation timeout."""
    assert _probe(**{CONFIG_OPTION: None})["send_failed_with"] == "OperationalError"


def test_publish_retries_outlast_the_queued_timeout() -> None:
    """Each retry of a timed-out send takes at least the operation timeout: with enough of them no send
    gives up before the scheduler's stuck-in-queued safety net takes over."""
    shared = read_env_file()
    retries = int(shared["AIRFLOW__CELERY__TASK_PUBLISH_MAX_RETRIES"])
    operation_timeout = float(shared["AIRFLOW__CELERY__OPERATION_TIMEOUT"])
    assert retries * operation_timeout >= float(shared["AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT"])
