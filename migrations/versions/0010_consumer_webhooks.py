"""consumer webhooks: a consumer (a key that may write) registers an endpoint told `updates.available` when updates
wait for it (`consumer_webhooks`, one row per consumer holding its coalesced pending event and the lease of the
attempt in flight), and every attempt to deliver is recorded (`webhook_deliveries`). Nothing existing changes.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 10:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "consumer_webhooks",
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("notified_head", sa.Integer(), server_default="0", nullable=False),
        sa.Column("pending_head", sa.Integer(), nullable=True),
        sa.Column("pending_since", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("event_id", sa.String(length=60), nullable=True),
        sa.Column("event_head", sa.Integer(), nullable=True),
        sa.Column("event_body", sa.Text(), nullable=True),
        sa.Column("lease_holder", sa.String(length=200), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key_id"),
    )
    op.create_index("ix_consumer_webhooks_next_attempt_at", "consumer_webhooks", ["next_attempt_at"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=60), nullable=False),
        sa.Column("head", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["consumer_webhooks.key_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_deliveries_key_id", "webhook_deliveries", ["key_id"])


def downgrade():
    op.drop_index("ix_webhook_deliveries_key_id", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_consumer_webhooks_next_attempt_at", table_name="consumer_webhooks")
    op.drop_table("consumer_webhooks")
