"""alert ledger and delivery outbox (replaces the unused alert_sent table)

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-02 08:20:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import trackpulse.store.models

revision = '0003'
down_revision = '0006'  # chained after the branches merged before it
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table('alert_sent')
    op.create_table('alert',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('rule', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('when', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('episode', sa.Integer(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('project', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('item', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('item_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('policy', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('clock', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('target', sa.Float(), nullable=True),
    sa.Column('at', trackpulse.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('url', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('opened_at', trackpulse.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', trackpulse.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('rule', 'subject', 'episode', name='uq_alert_episode')
    )
    op.create_index('ix_alert_rule_subject', 'alert', ['rule', 'subject'], unique=False)
    op.create_index(op.f('ix_alert_opened_at'), 'alert', ['opened_at'], unique=False)
    op.create_table('delivery',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('alert_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('target_kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('target', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('not_before', trackpulse.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('claimed_until', trackpulse.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=True),
    sa.Column('answer', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('remote_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', trackpulse.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', trackpulse.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', trackpulse.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_delivery_alert_id'), 'delivery', ['alert_id'], unique=False)
    op.create_index(op.f('ix_delivery_sent_at'), 'delivery', ['sent_at'], unique=False)
    op.create_index('ix_delivery_due', 'delivery', ['status', 'not_before'], unique=False)
    op.create_index('ix_delivery_target', 'delivery', ['target_kind', 'target', 'status'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_delivery_target', table_name='delivery')
    op.drop_index('ix_delivery_due', table_name='delivery')
    op.drop_index(op.f('ix_delivery_sent_at'), table_name='delivery')
    op.drop_index(op.f('ix_delivery_alert_id'), table_name='delivery')
    op.drop_table('delivery')
    op.drop_index(op.f('ix_alert_opened_at'), table_name='alert')
    op.drop_index('ix_alert_rule_subject', table_name='alert')
    op.drop_table('alert')
    op.create_table('alert_sent',
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('alert_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('sent_at', trackpulse.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('source', 'alert_key')
    )
