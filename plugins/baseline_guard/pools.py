"""Airflow pools of the deployment: the hourly syncs share a few worker slots, the checks keep the rest.

At the case study's size the syncs (rollouts of 200 services, 200 test configs, schema changes) could
fill every worker slot for minutes, and the business checks that follow each change (and the hourly
checks of 21 environments) would wait behind them. Every sync task runs in :data:`SYNC_POOL`; the
checks run in ``default_pool``. With the local stack's parallelism of 6, the syncs hold at most 3
slots, so at least 3 are always free for checks. Light to import (DAG files name the pool).

The pools are created (or their slots reset) by ``python -m baseline_guard.access`` after
``airflow db migrate``, which the local stack and docker-compose's ``airflow-init`` run. A task in a
pool that does not exist is never scheduled: keep the two in step.
"""

from __future__ import annotations

from typing import Any

SYNC_POOL = "baseline_syncs"
# name -> (slots, description)
POOLS: dict[str, tuple[int, str]] = {
    SYNC_POOL: (
        3,
        "Baseline Guard's hourly syncs (code, config): at most this many worker slots, so the business "
        "checks always find free ones",
    ),
}


def sync_pools(session: Any = None) -> list[str]:
    """Create the pools, or set their slots and description to :data:`POOLS`' (an edit by hand is undone)."""
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    if session is None:
        with create_session() as own:
            return sync_pools(own)
    for name, (slots, description) in POOLS.items():
        Pool.create_or_update_pool(name, slots, description, include_deferred=False, session=session)
    return sorted(POOLS)
