"""review: the last answer deadline of an application's missing bureaus (核对 before approval)

Revision ID: 0010
Revises: 0009
Create Date: 2027-01-20

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0010'
down_revision: Union[str, Sequence[str], None] = '0009'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('verification_state') as batch:
        batch.add_column(sa.Column('answers_due_by', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('verification_state') as batch:
        batch.drop_column('answers_due_by')
