"""runs: skipped shop orders (retried next run), whether the safety-net scan ran; shop order keys as SQL Server compares them

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 11:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

KEYED_TABLES = ("updates", "order_events", "webhook_events")


def upgrade():
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("skipped", sa.JSON(), server_default="[]", nullable=False))
        batch_op.add_column(sa.Column("modified_scan", sa.Boolean(), server_default=sa.false(), nullable=False))

    # Shop order keys are now the link value as SQL Server compares it (trailing spaces dropped, upper case):
    # rename the keys followed so far, unless two of them become one (then both are left as they were).
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, order_key FROM shop_orders")).all()
    wanted = {}
    for row_id, key in rows:
        wanted.setdefault(key.rstrip(" ").upper(), []).append((row_id, key))
    tables = [
        name for name in KEYED_TABLES if sa.inspect(bind).has_table(name) and "order_key" in {c["name"] for c in sa.inspect(bind).get_columns(name)}
    ]
    for new, owners in wanted.items():
        if len(owners) != 1 or owners[0][1] == new:
            continue
        row_id, old = owners[0]
        bind.execute(sa.text("UPDATE shop_orders SET order_key = :new WHERE id = :id"), {"new": new, "id": row_id})
        for table in tables:
            bind.execute(sa.text(f"UPDATE {table} SET order_key = :new WHERE order_key = :old"), {"new": new, "old": old})


def downgrade():
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_column("modified_scan")
        batch_op.drop_column("skipped")
