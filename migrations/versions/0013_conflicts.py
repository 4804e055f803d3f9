"""conflicts: an update the shop's state contradicts (the shop cancelled, refunded or refused the payment of the
order) is held, recorded, and left to the merchant to apply anyway or dismiss

`updates.conflict`: the conflict record of the update (JSON, null when none). Two new push statuses need no
schema change: `conflict` (held, judged again at each pass) and `dismissed`. The downgrade drops the column, puts
held updates back to `pending` (pushed as before conflicts) and dismissed ones to `failed` (never sent).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 10:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("updates", sa.Column("conflict", sa.JSON(), nullable=True))


def downgrade():
    # Held: pushed as before conflicts. Dismissed: never sent, as the merchant decided: failed, saying why.
    op.execute("UPDATE updates SET push_status = 'pending' WHERE push_status = 'conflict'")
    op.execute("UPDATE updates SET push_status = 'failed', push_error = 'dismissed over a conflict with the shop' WHERE push_status = 'dismissed'")
    if op.get_bind().dialect.name == "sqlite":
        # In place (SQLite 3.35+): a copy of the table would have to drop updates, which update_acks references.
        op.execute("ALTER TABLE updates DROP COLUMN conflict")
    else:
        op.drop_column("updates", "conflict")
