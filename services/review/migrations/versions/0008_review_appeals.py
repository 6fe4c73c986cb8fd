"""review: appeals (复核) and what they need of the decisions under appeal

Revision ID: 0008
Revises: 0007
Create Date: 2027-02-01

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('review_file') as batch:
        batch.add_column(sa.Column('rejected_by', sa.String(length=64), nullable=True))
    with op.batch_alter_table('case_proposal') as batch:
        batch.add_column(sa.Column('outcome', sa.String(length=10), nullable=True))
        batch.add_column(sa.Column('previous_benefit', sa.Numeric(12, 2), nullable=True))
        batch.add_column(sa.Column('previous_size', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('previous_income', sa.Text(), nullable=True))   # encrypted (EncryptedDecimal)
    op.create_table('appeal',
                    sa.Column('id', sa.String(length=36), nullable=False),
                    sa.Column('kind', sa.String(length=16), nullable=False),
                    sa.Column('decision_key', sa.String(length=90), nullable=False),
                    sa.Column('application_id', sa.String(length=36), nullable=False),
                    sa.Column('case_id', sa.String(length=36), nullable=True),
                    sa.Column('proposal_id', sa.Integer(), nullable=True),
                    sa.Column('household_id', sa.String(length=36), nullable=False),
                    sa.Column('community_code', sa.String(length=12), nullable=False),
                    sa.Column('township_code', sa.String(length=9), nullable=False),
                    sa.Column('policy', sa.String(length=32), nullable=False),
                    sa.Column('decided_on_original', sa.Date(), nullable=False),
                    sa.Column('original_reason', sa.Text(), nullable=True),
                    sa.Column('filed_on', sa.Date(), nullable=False),
                    sa.Column('filed_via', sa.String(length=8), nullable=False),
                    sa.Column('filed_by', sa.String(length=64), nullable=False),
                    sa.Column('grounds', sa.Text(), nullable=False),
                    sa.Column('due_on', sa.Date(), nullable=False),
                    sa.Column('due_provisional', sa.Boolean(), nullable=False),
                    sa.Column('participants', sa.JSON(), nullable=False),
                    sa.Column('status', sa.String(length=10), nullable=False),
                    sa.Column('decided_on', sa.Date(), nullable=True),
                    sa.Column('decided_by', sa.String(length=64), nullable=True),
                    sa.Column('decided_by_name', sa.String(length=50), nullable=True),
                    sa.Column('decision_reason', sa.Text(), nullable=True),
                    sa.Column('reopened_at', sa.String(length=32), nullable=True),
                    sa.Column('version', sa.Integer(), nullable=False),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('decision_key'))
    op.create_index('ix_appeal_application_id', 'appeal', ['application_id'])
    op.create_index('ix_appeal_community_code', 'appeal', ['community_code'])
    op.create_index('ix_appeal_status', 'appeal', ['status'])


def downgrade() -> None:
    op.drop_table('appeal')
    with op.batch_alter_table('case_proposal') as batch:
        for column in ('previous_income', 'previous_size', 'previous_benefit', 'outcome'):
            batch.drop_column(column)
    with op.batch_alter_table('review_file') as batch:
        batch.drop_column('rejected_by')
