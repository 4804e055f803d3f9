"""push mode: delivery status, shop ids, shop cursors

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 19:06:27.006367

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "shop_cursors",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("shop_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shop_id_order", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("shop_state_pushed", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("shop_tracking", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("messages_sent", sa.JSON(), server_default="[]", nullable=False))

    with op.batch_alter_table("updates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivery_status", sa.String(length=12), server_default="pending", nullable=False))
        batch_op.add_column(sa.Column("delivery_attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("delivery_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("delivery_answer", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("delivered_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(), nullable=True))
        batch_op.create_index("ix_updates_delivery", ["delivery_status", "id"], unique=False)


def downgrade():
    with op.batch_alter_table("updates", schema=None) as batch_op:
        batch_op.drop_index("ix_updates_delivery")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("delivered_at")
        batch_op.drop_column("delivery_answer")
        batch_op.drop_column("delivery_error")
        batch_op.drop_column("delivery_attempts")
        batch_op.drop_column("delivery_status")

    with op.batch_alter_table("shop_orders", schema=None) as batch_op:
        batch_op.drop_column("messages_sent")
        batch_op.drop_column("shop_tracking")
        batch_op.drop_column("shop_state_pushed")
        batch_op.drop_column("shop_id_order")

    op.drop_table("shop_cursors")
