"""store: settings, shop orders, order pieces, runs, updates, locks

Revision ID: 0001
Revises:
Create Date: 2026-11-28 18:34:28.068685

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    # One helper per table, in creation order: the foreign keys need their targets first.
    _create_settings()
    _create_shop_orders()
    _create_sync_locks()
    _create_sync_runs()
    _create_order_pieces()
    _create_updates()


def _create_settings():
    op.create_table(
        "settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def _create_shop_orders():
    op.create_table(
        "shop_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_key", sa.String(length=100), nullable=False),
        sa.Column("id_order", sa.BigInteger(), nullable=True),
        sa.Column("stage", sa.String(length=20), nullable=True),
        sa.Column("current_stage", sa.String(length=20), nullable=True),
        sa.Column("state_rank", sa.Integer(), nullable=False),
        sa.Column("states_sent", sa.JSON(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("memory", sa.JSON(), nullable=False),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("vanished_runs", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_key"),
    )
    with op.batch_alter_table("shop_orders", schema=None) as batch_op:
        batch_op.create_index("ix_shop_orders_open_checked", ["is_open", "checked_at"], unique=False)


def _create_sync_locks():
    op.create_table(
        "sync_locks",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=True),
        sa.Column("acquired_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )


def _create_sync_runs():
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("orders_checked", sa.Integer(), nullable=False),
        sa.Column("orders_changed", sa.Integer(), nullable=False),
        sa.Column("orders_skipped", sa.Integer(), nullable=False),
        sa.Column("updates_created", sa.Integer(), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("window_from", sa.DateTime(), nullable=True),
        sa.Column("watermark_modified", sa.DateTime(), nullable=True),
        sa.Column("watermark_header_marq", sa.BigInteger(), nullable=True),
        sa.Column("watermark_line_marq", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def _create_order_pieces():
    op.create_table(
        "order_pieces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_order_id", sa.Integer(), nullable=False),
        sa.Column("piece", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(["shop_order_id"], ["shop_orders.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("piece"),
    )
    with op.batch_alter_table("order_pieces", schema=None) as batch_op:
        batch_op.create_index("ix_order_pieces_shop_order_id", ["shop_order_id"], unique=False)


def _create_updates():
    op.create_table(
        "updates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_key", sa.String(length=100), nullable=False),
        sa.Column("id_order", sa.BigInteger(), nullable=True),
        sa.Column("stage", sa.String(length=20), nullable=True),
        sa.Column("state_id", sa.Integer(), nullable=True),
        sa.Column("tracking_numbers", sa.JSON(), nullable=True),
        sa.Column("piece", sa.String(length=20), nullable=True),
        sa.Column("delivery_date", sa.Date(), nullable=True),
        sa.Column("deliveries", sa.JSON(), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["sync_runs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("updates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_updates_order_key"), ["order_key"], unique=False)


def downgrade():
    with op.batch_alter_table("updates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_updates_order_key"))

    op.drop_table("updates")
    with op.batch_alter_table("order_pieces", schema=None) as batch_op:
        batch_op.drop_index("ix_order_pieces_shop_order_id")
    op.drop_table("order_pieces")
    op.drop_table("sync_runs")
    op.drop_table("sync_locks")
    with op.batch_alter_table("shop_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_shop_orders_open_checked")

    op.drop_table("shop_orders")
    op.drop_table("settings")
