"""shop orders: the last tracking value read from the shop's carrier row and acted on

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 12:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("shop_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shop_tracking_seen", sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table("shop_orders", schema=None) as batch_op:
        batch_op.drop_column("shop_tracking_seen")
