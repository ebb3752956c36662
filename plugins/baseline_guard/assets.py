"""Assets shared between DAGs.

``ENVIRONMENT_CHANGED`` is updated by every DAG that changes an environment (code, schema,
test-config sync, restore); ``business_check`` is scheduled on it, so checks follow every change.
The event's ``extra`` says what changed: ``{"environment": ..., "source": <dag id>, "changes": [...]}``.
"""

from __future__ import annotations

from airflow.sdk import Asset

# An ``x-`` scheme is ours by convention: Airflow does not look for a provider to normalize it, which
# for any other scheme loads every provider's asset handlers (boto3 among them) at each DAG parse.
ENVIRONMENT_CHANGED = Asset(name="environment_changed", uri="x-baseline-guard://environment/changed")
