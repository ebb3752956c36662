"""Check history: runs, scenario results, environment changes, incidents, current state.

``check_run`` and ``check_result`` grow with every check; ``incident``, ``environment_state`` and
``module_state`` are kept up to date on every write, so the health page reads a few hundred rows
whatever the history's size.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.TIMESTAMP(timezone=True)
TRIGGERS = ("hourly", "environment_change", "ci", "re-check", "manual")


def upgrade() -> None:
    op.create_table(
        "check_run",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("environment", sa.Text, nullable=False),
        sa.Column("routing_key", sa.Text),
        sa.Column("dag_id", sa.Text),
        sa.Column("run_id", sa.Text),
        sa.Column("task_id", sa.Text),
        sa.Column("try_number", sa.Integer),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("scenarios", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("modules", pg.ARRAY(sa.Text), nullable=False),
        sa.Column("failed_modules", pg.ARRAY(sa.Text), nullable=False),
        sa.Column("report_url", sa.Text),
        sa.CheckConstraint(f"trigger IN {TRIGGERS}", name="check_run_trigger"),
        sa.UniqueConstraint("dag_id", "run_id", "task_id", "try_number", name="check_run_airflow_try"),
    )
    op.create_index("check_run_env_time", "check_run", ["environment", "started_at"])

    op.create_table(
        "check_result",
        sa.Column("run", sa.BigInteger, sa.ForeignKey("check_run.id", ondelete="CASCADE"), nullable=False),
        sa.Column("environment", sa.Text, nullable=False),
        sa.Column("checked_at", TS, nullable=False),
        sa.Column("suite", sa.Text, nullable=False),
        sa.Column("scenario", sa.Text, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("module", sa.Text, nullable=False),
        sa.Column("interface", sa.Text, nullable=False),
        sa.Column("instance", sa.Text),
        sa.Column("version", sa.Text),
        sa.PrimaryKeyConstraint("run", "suite", "scenario"),
    )
    op.create_index("check_result_scenario_time", "check_result", ["environment", "scenario", "checked_at"])
    op.create_index(
        "check_result_failures", "check_result", ["checked_at"], postgresql_where=sa.text("NOT passed")
    )

    op.create_table(
        "environment_change",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("environment", sa.Text, nullable=False),
        sa.Column("changed_at", TS, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("changes", pg.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.UniqueConstraint("environment", "source", "changed_at", name="environment_change_once"),
    )

    op.create_table(
        "incident",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("environment", sa.Text, nullable=False),
        sa.Column("module", sa.Text, nullable=False, comment="'' for the whole environment"),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("detected_at", TS, nullable=False),
        sa.Column("ended_at", TS),
        sa.Column("first_failed_run", sa.BigInteger, sa.ForeignKey("check_run.id"), nullable=False),
        sa.Column("last_failed_run", sa.BigInteger, sa.ForeignKey("check_run.id"), nullable=False),
        sa.Column("recovered_run", sa.BigInteger, sa.ForeignKey("check_run.id")),
        sa.Column("failed_checks", sa.Integer, nullable=False),
        sa.Column("previous_check_at", TS),
        sa.Column("cause", sa.BigInteger, sa.ForeignKey("environment_change.id")),
    )
    op.create_index("incident_env_time", "incident", ["environment", "started_at"])
    op.create_index("incident_recent", "incident", ["ended_at"])

    op.create_table(
        "environment_state",
        sa.Column("environment", sa.Text, primary_key=True),
        sa.Column("routing_key", sa.Text),
        sa.Column("first_checked_at", TS, nullable=False),
        sa.Column("last_checked_at", TS, nullable=False),
        sa.Column("last_run", sa.BigInteger, sa.ForeignKey("check_run.id"), nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
    )
    op.create_table(
        "module_state",
        sa.Column("environment", sa.Text, nullable=False),
        sa.Column("module", sa.Text, nullable=False),
        sa.Column("checked_at", TS, nullable=False),
        sa.Column("run", sa.BigInteger, sa.ForeignKey("check_run.id"), nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("interface", sa.Text),
        sa.Column("instance", sa.Text),
        sa.Column("version", sa.Text),
        sa.PrimaryKeyConstraint("environment", "module"),
    )


def downgrade() -> None:
    for table in (
        "module_state",
        "environment_state",
        "incident",
        "environment_change",
        "check_result",
        "check_run",
    ):
        op.drop_table(table)
