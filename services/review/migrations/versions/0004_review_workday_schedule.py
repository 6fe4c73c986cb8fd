"""review: the official working-day schedules it owns, and provisional deadlines

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('workday_schedule',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('workday', sa.Boolean(), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('day')
    )
    with op.batch_alter_table('workday_schedule', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workday_schedule_year'), ['year'], unique=False)
    with op.batch_alter_table('review_file', schema=None) as batch_op:
        batch_op.add_column(sa.Column('step_due_provisional', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.add_column(sa.Column('process_due_provisional', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('review_file', schema=None) as batch_op:
        batch_op.drop_column('process_due_provisional')
        batch_op.drop_column('step_due_provisional')
    with op.batch_alter_table('workday_schedule', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workday_schedule_year'))
    op.drop_table('workday_schedule')
