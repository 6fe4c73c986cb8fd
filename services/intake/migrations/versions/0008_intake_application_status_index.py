"""intake: applications by status within a unit (the worklist's awaiting investigation: no scan)

Revision ID: 0008
Revises: 0007
Create Date: 2027-01-12

"""
from typing import Sequence, Union

from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index('ix_application_status_community', 'application', ['status', 'community_code'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_application_status_community', table_name='application')
