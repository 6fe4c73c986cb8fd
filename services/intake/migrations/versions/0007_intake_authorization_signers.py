"""intake: who signed an authorization (授权书) for verification with partner bureaus

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
    with op.batch_alter_table('file_document', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signed_by', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('file_document', schema=None) as batch_op:
        batch_op.drop_column('signed_by')
