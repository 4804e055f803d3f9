"""consumers: each key that may write (scope write or admin) acknowledges the pull feed for itself, in
`update_acks(key_id, update_id, acked_at)`, and remembers the highest update id served to it (`api_keys.served_up_to`)

Today's global acknowledgements become acknowledgements of every active key that may write, at the time they were
made, so a module already polling sees no change; those keys count as served up to the head (what was served to them
before is not known, and refusing their next acknowledgement would break them). `updates.acked_at` stays, meaning
"acknowledged by at least one consumer" (what read keys, the order view and the downgrade see). The downgrade keeps
that column as it is and drops the per-consumer state.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 10:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

CONSUMER_SCOPES = ("write", "admin")


def upgrade():
    op.create_table(
        "update_acks",
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("update_id", sa.Integer(), nullable=False),
        sa.Column("acked_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["update_id"], ["updates.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key_id", "update_id"),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("served_up_to", sa.Integer(), server_default="0", nullable=False))

    keys = sa.table(
        "api_keys",
        sa.column("id", sa.Integer),
        sa.column("scope", sa.String),
        sa.column("revoked_at", sa.DateTime),
        sa.column("served_up_to", sa.Integer),
    )
    updates = sa.table("updates", sa.column("id", sa.Integer), sa.column("acked_at", sa.DateTime))
    acks = sa.table("update_acks", sa.column("key_id", sa.Integer), sa.column("update_id", sa.Integer), sa.column("acked_at", sa.DateTime))
    consumer = sa.and_(keys.c.scope.in_(CONSUMER_SCOPES), keys.c.revoked_at.is_(None))
    # One statement for every (consumer, acknowledged update): the store's size does not go through Python.
    op.execute(
        acks.insert().from_select(
            ["key_id", "update_id", "acked_at"],
            sa.select(keys.c.id, updates.c.id, updates.c.acked_at)
            .select_from(keys.join(updates, sa.true()))
            .where(consumer, updates.c.acked_at.is_not(None)),
        )
    )
    head = sa.select(sa.func.coalesce(sa.func.max(updates.c.id), 0)).scalar_subquery()
    op.execute(keys.update().where(consumer).values(served_up_to=head))


def downgrade():
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("served_up_to")

    op.drop_table("update_acks")
