"""audit checkpoints: the signed checkpoints of the chain

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-20 10:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'audit_checkpoints',
        sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('head_hash', sa.String(length=64), nullable=False),
        sa.Column('records', sa.Integer(), nullable=False),
        sa.Column('signed_at', sa.String(length=40), nullable=False),
        sa.Column('key_id', sa.String(length=32), nullable=False),
        sa.Column('algorithm', sa.String(length=20), nullable=False),
        sa.Column('previous_seq', sa.Integer(), nullable=False),
        sa.Column('previous_hash', sa.String(length=64), nullable=False),
        sa.Column('locator', sa.Text(), nullable=False),
        sa.Column('signature', sa.Text(), nullable=False),
        sa.Column('public_key', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('seq'),
    )


def downgrade() -> None:
    op.drop_table('audit_checkpoints')
