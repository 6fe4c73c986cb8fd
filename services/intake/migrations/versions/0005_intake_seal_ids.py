"""intake: a seal_id for incomes and assets

Their encrypted amounts are bound to their row (shared/sealing.py); their
integer ids are numbered by the database at the INSERT, too late for that,
so each row gets a UUID made before it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

"""
from typing import Sequence, Union

from alembic import op

from shared.migrations import add_seal_id

# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    add_seal_id(op, "income")
    add_seal_id(op, "asset")


def downgrade() -> None:
    for table in ("asset", "income"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"uq_{table}_seal_id", type_="unique")
            batch.drop_column("seal_id")
