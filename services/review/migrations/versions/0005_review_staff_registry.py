"""review staff registry from identity's events

Who holds which role in which unit, since when (shared/staff.py): the
joint review's signers and a proposal's approvers are checked against it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

"""
from typing import Sequence, Union

from alembic import op

from shared.staff import staff_columns

# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('staff', *staff_columns())
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_user'), ['user'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_unit'), ['unit'], unique=False)


def downgrade() -> None:
    op.drop_table('staff')
