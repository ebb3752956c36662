"""Celery's configuration for Baseline Guard's Celery deployments: Airflow's default, made to ride out
a broker outage (Redis stopped, restarted, unreachable) without losing or failing a task.

``[celery] celery_config_options`` names :data:`CELERY_CONFIG` (``docker/airflow-settings.env``, shared
by docker-compose and the local stack's Celery mode), so the schedulers' executor and the workers
both use it. What it changes, and why (read from celery provider 3.26, Celery 5.6, kombu 5.7):

- The scheduler sends a task with ``apply_async`` inside ``[celery] operation_timeout`` (1 s). With
  Celery's default publish retry (3 quick retries) a refused connection fails the send in 0.6 s with
  ``OperationalError``, and the executor then fails the task instance at once (a retry, a second
  try, or a failed run). Retrying the publish for longer than the operation timeout turns an outage
  into ``AirflowTaskTimeout``, which the executor keeps queued and sends again on its next loop, up
  to ``[celery] task_publish_max_retries`` times: the task goes out once Redis is back, try 1.
- Workers reconnect to the broker forever (Celery gives up after 100 attempts, about 45 minutes,
  and the worker exits).
- A connection loss does not cancel running tasks (Celery 6 will default to cancelling tasks with
  late acks): an Airflow task talks to the API server, not to Redis, and its message stays
  unacknowledged in Redis until it finishes, so it is neither cut off nor run twice.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

# A refused publish is retried every 0.2 s rising to 1 s; kombu gives up after a few seconds (4.5 s
# measured), past the 1 s operation timeout that ends each attempt in the executor
# (tests/plugins/baseline_guard/test_celery_config.py sends to a closed port to prove it).
PUBLISH_RETRY_POLICY: dict[str, float | int] = {
    "max_retries": 100,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 1.0,
}

CELERY_CONFIG: dict[str, Any] = {
    **DEFAULT_CELERY_CONFIG,
    "task_publish_retry_policy": PUBLISH_RETRY_POLICY,
    "broker_connection_max_retries": None,  # None: retry forever
    "worker_cancel_long_running_tasks_on_connection_loss": False,
}
