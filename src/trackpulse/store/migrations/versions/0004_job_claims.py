"""job claims and leases for the schedule inside `trackpulse serve`

Revision ID: 0004
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

import trackpulse.store.models

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ts = trackpulse.store.models.UtcDateTime(timezone=True)
    op.create_table(
        "job_run",
        sa.Column("job", sa.String(), nullable=False),
        sa.Column("firing", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("scheduled_at", ts, nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("holder", sa.String(), nullable=True),
        sa.Column("lease_until", ts, nullable=True),
        sa.Column("claimed_at", ts, nullable=True),
        sa.Column("started_at", ts, nullable=True),
        sa.Column("finished_at", ts, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("takeovers", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("note", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("job", "firing"),
    )
    op.create_index("ix_job_run_scheduled_at", "job_run", ["scheduled_at"])
    op.create_table(
        "job_lease",
        sa.Column("lock", sa.String(), nullable=False),
        sa.Column("holder", sa.String(), nullable=False),
        sa.Column("job", sa.String(), nullable=False),
        sa.Column("firing", sa.String(), nullable=False),
        sa.Column("lease_until", ts, nullable=False),
        sa.PrimaryKeyConstraint("lock"),
    )


def downgrade() -> None:
    op.drop_table("job_lease")
    op.drop_index("ix_job_run_scheduled_at", table_name="job_run")
    op.drop_table("job_run")
