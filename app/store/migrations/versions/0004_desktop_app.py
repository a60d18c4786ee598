"""desktop app: per-connection interval, ignored failures, run kinds, paged Health indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("interval_minutes", sa.Integer(), nullable=False, server_default=sa.text("5"))
        )
    with op.batch_alter_table("failures", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("ignored", sa.Boolean(), nullable=False, server_default=sa.text("0"))
        )
        batch_op.create_index("ix_failures_code", ["connection_id", "code", "name"], unique=False)
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=20), nullable=False, server_default="sync")
        )
        batch_op.add_column(sa.Column("undo_of", sa.Integer(), nullable=True))
        batch_op.create_index("ix_runs_connection", ["connection_id", "id"], unique=False)
    with op.batch_alter_table("conflicts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resolved_run_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_conflicts_connection", ["connection_id", "at"], unique=False)
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_records_status_name",
            ["connection_id", "status", "name", "side", "record_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_index("ix_records_status_name")
    with op.batch_alter_table("conflicts", schema=None) as batch_op:
        batch_op.drop_index("ix_conflicts_connection")
        batch_op.drop_column("resolved_run_id")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_connection")
        batch_op.drop_column("undo_of")
        batch_op.drop_column("kind")
    with op.batch_alter_table("failures", schema=None) as batch_op:
        batch_op.drop_index("ix_failures_code")
        batch_op.drop_column("ignored")
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.drop_column("interval_minutes")
