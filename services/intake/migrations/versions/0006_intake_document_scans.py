"""document scans (扫描件): the sealed file's record

Revision ID: 0006
Revises: 0005
Create Date: 2027-01-10

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('document_scan',
                    sa.Column('id', sa.String(length=36), nullable=False),
                    sa.Column('document_id', sa.String(length=36), nullable=False),
                    sa.Column('household_id', sa.String(length=36), nullable=False),
                    sa.Column('content_type', sa.String(length=40), nullable=False),
                    sa.Column('size', sa.Integer(), nullable=False),
                    sa.Column('sha256', sa.String(length=64), nullable=False),
                    sa.Column('uploaded_by', sa.String(length=64), nullable=False),
                    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
                    sa.ForeignKeyConstraint(['document_id'], ['file_document.id'], ondelete='CASCADE'),
                    sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('document_scan', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_document_scan_document_id'), ['document_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_document_scan_household_id'), ['household_id'], unique=False)


def downgrade() -> None:
    op.drop_table('document_scan')
