"""updates: pushing to the shop says "push" (push_* columns, status "pushed", the push lock); "delivery" is a shipment

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 12:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

RENAMED = (
    ("delivery_status", "push_status"),
    ("delivery_attempts", "push_attempts"),
    ("delivery_error", "push_error"),
    ("delivery_answer", "push_answer"),
    ("delivered_at", "pushed_at"),
)


def _rename(pairs, old_index, new_index, status_column):
    # Renamed in place (ALTER TABLE ... RENAME, SQLite 3.25+): copying the table, as batch mode does by default
    # on SQLite, would drop its AUTOINCREMENT, and the feed's cursor relies on ids never being reused.
    with op.batch_alter_table("updates", schema=None, recreate="never") as batch_op:
        batch_op.drop_index(old_index)
        for old, new in pairs:
            batch_op.alter_column(old, new_column_name=new)
        batch_op.create_index(new_index, [status_column, "id"], unique=False)


def upgrade():
    _rename(RENAMED, "ix_updates_delivery", "ix_updates_push", "push_status")
    op.execute(sa.text("UPDATE updates SET push_status = 'pushed' WHERE push_status = 'delivered'"))
    op.execute(sa.text("UPDATE sync_locks SET name = 'push' WHERE name = 'delivery'"))


def downgrade():
    op.execute(sa.text("UPDATE sync_locks SET name = 'delivery' WHERE name = 'push'"))
    op.execute(sa.text("UPDATE updates SET push_status = 'delivered' WHERE push_status = 'pushed'"))
    _rename([(new, old) for old, new in RENAMED], "ix_updates_push", "ix_updates_delivery", "delivery_status")
