"""shop orders: the column that holds what each document showed is named `documents` (it was `memory`, though the
whole row is what we remember of the shop order)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 13:00:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _rename(old: str, new: str) -> None:
    # In place (ALTER TABLE ... RENAME COLUMN): nothing is copied, whatever the size of the table.
    with op.batch_alter_table("shop_orders", schema=None, recreate="never") as batch_op:
        batch_op.alter_column(old, new_column_name=new)


def upgrade():
    _rename("memory", "documents")


def downgrade():
    _rename("documents", "memory")
