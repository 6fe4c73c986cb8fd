"""review: the worklist's index: open files by status within a unit (100,000 decided files: no scan)

Revision ID: 0009
Revises: 0008
Create Date: 2027-01-12

"""
from typing import Sequence, Union

from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0009'
down_revision: Union[str, Sequence[str], None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index('ix_review_file_status_community', 'review_file', ['status', 'community_code'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_review_file_status_community', table_name='review_file')
