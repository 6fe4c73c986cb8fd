"""intake staff registry from identity's events

The staff table intake's own RPC filled (register_staff) is replaced by the
projection of identity's accounts and roles (shared/staff.py): one row per
period an account held a role in its unit. The old rows are not carried
over: identity is the registry now, and its events fill this table.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

from shared.staff import staff_columns

# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_unit'))
    op.drop_table('staff')
    op.create_table('staff', *staff_columns())
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_user'), ['user'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_unit'), ['unit'], unique=False)


def downgrade() -> None:
    op.drop_table('staff')
    op.create_table('staff',
                    sa.Column('user', sa.String(length=64), nullable=False),
                    sa.Column('name', sa.String(length=50), nullable=False),
                    sa.Column('role', sa.String(length=32), nullable=False),
                    sa.Column('unit', sa.String(length=12), nullable=False),
                    sa.Column('active', sa.Boolean(), nullable=False),
                    sa.PrimaryKeyConstraint('user'))
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_unit'), ['unit'], unique=False)
