"""audit initial schema: the hash-chained record

Revision ID: 0001
Revises:
Create Date: 2026-11-28 19:50:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from shared.migrations import create_platform_tables, drop_platform_tables

revision: str = '0001'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

JsonText = sa.JSON().with_variant(postgresql.JSON(), "postgresql")


def upgrade() -> None:
    create_platform_tables()
    op.create_table(
        'audit_records',
        sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('event_id', sa.String(length=36), nullable=False),
        sa.Column('type', sa.String(length=100), nullable=False),
        sa.Column('source', sa.String(length=40), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('occurred_at', sa.String(length=32), nullable=False),
        sa.Column('recorded_at', sa.String(length=32), nullable=False),
        sa.Column('actor_user', sa.String(length=100), nullable=True),
        sa.Column('actor_name', sa.String(length=100), nullable=True),
        sa.Column('actor_role', sa.String(length=40), nullable=True),
        sa.Column('actor_unit', sa.String(length=20), nullable=True),
        sa.Column('household_id', sa.String(length=36), nullable=True),
        sa.Column('application_id', sa.String(length=36), nullable=True),
        sa.Column('case_id', sa.String(length=36), nullable=True),
        sa.Column('correlation_id', sa.String(length=64), nullable=False),
        sa.Column('subject', JsonText, nullable=False),
        sa.Column('payload', JsonText, nullable=False),
        sa.Column('prev_hash', sa.String(length=64), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('seq'),
        sa.UniqueConstraint('event_id'),
    )
    op.create_index('ix_audit_household', 'audit_records', ['household_id', 'seq'])
    op.create_index('ix_audit_application', 'audit_records', ['application_id', 'seq'])
    op.create_index('ix_audit_case', 'audit_records', ['case_id', 'seq'])
    op.create_index('ix_audit_actor', 'audit_records', ['actor_user', 'occurred_at'])
    op.create_index('ix_audit_unit', 'audit_records', ['actor_unit', 'occurred_at'])
    op.create_index('ix_audit_type', 'audit_records', ['type', 'seq'])


def downgrade() -> None:
    op.drop_table('audit_records')
    drop_platform_tables()
