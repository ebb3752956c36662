"""Assets shared between DAGs.

``ENVIRONMENT_CHANGED`` is updated when an environment changes: by the code, schema and test-config
syncs, and by an environment manager over Airflow's REST API after a deploy (docs/health.md);
``business_check`` is scheduled on it, so checks follow every change. The event's ``extra`` says
what changed: ``{"environment": ..., "source": <dag id or system>, "changes": [...]}`` (checked by
``baseline_guard.health.trigger.change_event``). A restore publishes none: its own check step
records it as the change it follows, so no second check starts.
"""

from __future__ import annotations

from airflow.sdk import Asset

# An ``x-`` scheme is ours by convention: Airflow does not look for a provider to normalize it, which
# for any other scheme loads every provider's asset handlers (boto3 among them) at each DAG parse.
ENVIRONMENT_CHANGED = Asset(name="environment_changed", uri="x-baseline-guard://environment/changed")
