"""Environment changes know the Airflow run that made them (when one did), recorded once per run.

A DAG that changes an environment and checks it itself (a restore) records the change with its
check; a retried check step records it again at its own start. Keyed by the run, the first record
stands and the retries change nothing.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("environment_change", sa.Column("dag_id", sa.Text, comment="the Airflow run that made it"))
    op.add_column("environment_change", sa.Column("run_id", sa.Text))
    op.create_index(
        "environment_change_per_run",
        "environment_change",
        ["environment", "source", "dag_id", "run_id"],
        unique=True,
        postgresql_where=sa.text("run_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("environment_change_per_run", "environment_change")
    op.drop_column("environment_change", "run_id")
    op.drop_column("environment_change", "dag_id")
