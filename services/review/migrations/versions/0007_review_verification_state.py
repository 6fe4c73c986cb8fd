"""review: what it knows of each application's verification (核对)

Revision ID: 0007
Revises: 0006
Create Date: 2027-01-10

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0007'
down_revision: Union[str, Sequence[str], None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('verification_state',
                    sa.Column('application_id', sa.String(length=36), nullable=False),
                    sa.Column('round_id', sa.String(length=36), nullable=False),
                    sa.Column('revision', sa.Integer(), nullable=False),
                    sa.Column('complete', sa.Boolean(), nullable=False),
                    sa.Column('bureaus_missing', sa.JSON(), nullable=False),
                    sa.Column('answers_missing', sa.Integer(), nullable=False),
                    sa.Column('open_discrepancies', sa.Integer(), nullable=False),
                    sa.Column('discrepancy_rules', sa.JSON(), nullable=False),
                    sa.PrimaryKeyConstraint('application_id'))


def downgrade() -> None:
    op.drop_table('verification_state')
