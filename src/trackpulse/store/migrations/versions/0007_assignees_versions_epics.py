"""Assignees, fix versions and epics on items; assignee history; Jira versions (issue 9).

Revision ID: 0007
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import trackpulse.store.models

revision = "0007"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("item", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assignees", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("fix_versions", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("epic", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("is_epic", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "assignee_change",
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("item_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("history_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", trackpulse.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("added", sa.JSON(), nullable=True),
        sa.Column("removed", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("source", "item_id", "history_id", "seq"),
    )
    op.create_table(
        "version",
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("version_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("project", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("start", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("release_date", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("released", sa.Boolean(), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("source", "version_id"),
    )


def downgrade() -> None:
    op.drop_table("version")
    op.drop_table("assignee_change")
    with op.batch_alter_table("item", schema=None) as batch_op:
        batch_op.drop_column("is_epic")
        batch_op.drop_column("epic")
        batch_op.drop_column("fix_versions")
        batch_op.drop_column("assignees")
