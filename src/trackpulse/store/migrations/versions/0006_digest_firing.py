"""digest firings (one row per digest and scheduled local time)

Revision ID: 0006
Revises: 0001
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import trackpulse.store.models

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digest_firing",
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("scheduled_local", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("scheduled_utc", trackpulse.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("as_of", trackpulse.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", trackpulse.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", trackpulse.store.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.PrimaryKeyConstraint("digest", "scheduled_local"),
    )


def downgrade() -> None:
    op.drop_table("digest_firing")
