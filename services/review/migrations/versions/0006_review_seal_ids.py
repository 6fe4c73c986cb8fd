"""review: a seal_id for case proposals

A proposal's encrypted income is bound to its row (shared/sealing.py); its
integer id is numbered by the database at the INSERT, too late for that, so
each row gets a UUID made before it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

"""
from typing import Sequence, Union

from alembic import op

from shared.migrations import add_seal_id

# revision identifiers, used by Alembic.
revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    add_seal_id(op, "case_proposal")


def downgrade() -> None:
    with op.batch_alter_table("case_proposal") as batch:
        batch.drop_constraint("uq_case_proposal_seal_id", type_="unique")
        batch.drop_column("seal_id")
