"""The state the hourly DAGs decide by, a row each: config decisions per service, patrol incidents per instance.

Until this revision they lived in two whole-JSON Airflow Variables (``baseline_guard_config_digests``,
``baseline_guard_patrol_incidents``) that every run rewrote whole. As rows, each update is a
transaction that locks only the rows it changes (``SELECT ... FOR UPDATE``), so overlapping runs and
the on-call answers never overwrite one another. ``python -m baseline_guard.health import-state``
copies the Variables' JSON in once.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.TIMESTAMP(timezone=True)
STATUSES = ("recorded", "asked", "decided", "timed_out")


def upgrade() -> None:
    op.create_table(
        "config_decision",
        sa.Column("service", sa.Text, primary_key=True),
        sa.Column("digest", sa.Text, nullable=False, comment="production config digest the record is about"),
        sa.Column("seen_at", TS, comment="when production's config changed"),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("asked_at", TS),
        sa.Column("expires_at", TS, comment="the question's response deadline"),
        sa.Column("asked_in", sa.Text, comment="the Airflow run that asked"),
        sa.Column("decision", sa.Text),
        sa.Column("decided_by", sa.Text),
        sa.Column("decided_at", TS),
        sa.Column("timed_out_at", TS),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(f"status IN {STATUSES}", name="config_decision_status"),
    )
    op.create_index(
        "config_decision_pending",
        "config_decision",
        ["asked_at"],
        postgresql_where=sa.text("status = 'asked'"),
    )
    op.create_table(
        "patrol_incident",
        sa.Column("instance", sa.Text, primary_key=True, comment="<environment>/<service>#<index>"),
        sa.Column("environment", sa.Text, nullable=False),
        sa.Column("since", TS, nullable=False),
        sa.Column("last_told", TS, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("patrol_incident_environment", "patrol_incident", ["environment"])


def downgrade() -> None:
    op.drop_table("patrol_incident")
    op.drop_table("config_decision")
