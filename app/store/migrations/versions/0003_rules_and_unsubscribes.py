"""rule action log per binding (and per pending create); unsubscribe opt-out option

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 17:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bindings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rule_state", sa.Text(), nullable=False, server_default="{}"))
    with op.batch_alter_table("pending_ops", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rule_state", sa.Text(), nullable=False, server_default="{}"))
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "unsubscribe_opt_out", sa.Boolean(), nullable=False, server_default=sa.text("0")
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("pending_ops", schema=None) as batch_op:
        batch_op.drop_column("rule_state")
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.drop_column("unsubscribe_opt_out")
    with op.batch_alter_table("bindings", schema=None) as batch_op:
        batch_op.drop_column("rule_state")
