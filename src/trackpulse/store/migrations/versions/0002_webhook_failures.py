"""Webhook deliveries: attempts, failure class, retry time and failed time (issue 13 §2).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import trackpulse.store.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("failure", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("retry_at", trackpulse.store.models.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("failed_at", trackpulse.store.models.UtcDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.drop_column("failed_at")
        batch_op.drop_column("retry_at")
        batch_op.drop_column("failure")
        batch_op.drop_column("attempts")
