"""shops: the PrestaShop shops of the Sage company (issue 16) are in the store; today's single shop becomes shop
`default` (id 1, rule {"kind": "all"}), and nothing behaves otherwise

Shop orders and updates name their shop (`shop_id`, 1 for every existing row and by default), updates get an index
(shop_id, id) for a shop's feed, and API keys name the one shop they see (`api_keys.shop_id`): existing read and
write keys are bound to the default shop, admin keys see every shop (NULL). A shop's settings document is the
`settings` row with its id: the default shop's is row 1, today's only row, so nothing moves there. Order keys
stay as they are. The downgrade drops the columns and the table; nothing else is lost.

SQLite cannot add a REFERENCES column with a default to a table holding rows while foreign keys are enforced
(app.py turns them on for every connection), nor drop such a column in place; copying a table while they are
enforced would delete its children (ON DELETE CASCADE). So there the columns change outside the migration's
transaction with foreign keys off for that moment (`_foreign_keys_off`).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 10:00:00

"""

from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

DEFAULT_SHOP = {"id": 1, "code": "default", "name": "Boutique principale", "rule": {"kind": "all"}, "is_default": True}
# (table, foreign key name, nullable): the default shop's rows get 1, api_keys are filled below.
SHOP_COLUMNS = (("shop_orders", "fk_shop_orders_shop_id", False), ("updates", "fk_updates_shop_id", False), ("api_keys", "fk_api_keys_shop_id", True))
KEY_SCOPES_BOUND = ("read", "write")


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


@contextmanager
def _foreign_keys_off():
    """SQLite: what runs inside is committed as it goes, with foreign keys off (a pragma a transaction ignores)."""
    if not _is_sqlite():
        yield
        return
    with op.get_context().autocommit_block():
        op.execute(sa.text("PRAGMA foreign_keys = OFF"))
        try:
            yield
        finally:
            op.execute(sa.text("PRAGMA foreign_keys = ON"))


def _add_shop_column(table: str, fk_name: str, nullable: bool) -> None:
    """In place (ALTER TABLE ... ADD COLUMN): nothing is copied, whatever the size of the table."""
    if _is_sqlite():  # the foreign key goes in the column's definition: SQLite cannot add it afterwards
        default = "" if nullable else " DEFAULT '1' NOT NULL"
        op.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN shop_id INTEGER{default} CONSTRAINT {fk_name} REFERENCES shops (id)"))
        return
    op.add_column(table, sa.Column("shop_id", sa.Integer(), server_default=None if nullable else "1", nullable=nullable))
    op.create_foreign_key(fk_name, table, "shops", ["shop_id"], ["id"])


def upgrade():
    shops = op.create_table(
        "shops",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("id_shop", sa.Integer(), nullable=True),
        sa.Column("prestashop_url", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    now = sa.func.current_timestamp()
    op.execute(shops.insert().values(**DEFAULT_SHOP, created_at=now, updated_at=now))
    if op.get_bind().dialect.name == "postgresql":
        # Id 1 was given explicitly: the sequence must go past it or the next shop would collide.
        op.execute(sa.text("SELECT setval(pg_get_serial_sequence('shops', 'id'), (SELECT max(id) FROM shops))"))
    with _foreign_keys_off():
        for table, fk_name, nullable in SHOP_COLUMNS:
            _add_shop_column(table, fk_name, nullable)
    op.create_index("ix_updates_shop", "updates", ["shop_id", "id"], unique=False)
    keys = sa.table("api_keys", sa.column("scope", sa.String), sa.column("shop_id", sa.Integer))
    op.execute(keys.update().where(keys.c.scope.in_(KEY_SCOPES_BOUND)).values(shop_id=DEFAULT_SHOP["id"]))


def downgrade():
    op.drop_index("ix_updates_shop", table_name="updates")
    with _foreign_keys_off():
        for table, fk_name, _ in reversed(SHOP_COLUMNS):
            _drop_shop_column(table, fk_name)
    op.drop_table("shops")


def _drop_shop_column(table: str, fk_name: str) -> None:
    if not _is_sqlite():
        op.drop_constraint(fk_name, table, type_="foreignkey")
        op.drop_column(table, "shop_id")
        return
    # SQLite drops a column that names another table only by copying the table (foreign keys are off: the children
    # of the old table stay). Update ids are never given twice (AUTOINCREMENT): the copy keeps the highest ever given.
    given = op.get_bind().execute(sa.text("SELECT seq FROM sqlite_sequence WHERE name = :t"), {"t": table}).scalar()
    kwargs = {"table_kwargs": {"sqlite_autoincrement": True}} if table == "updates" else {}
    with op.batch_alter_table(table, schema=None, recreate="always", **kwargs) as batch_op:
        batch_op.drop_column("shop_id")
    if given is not None:
        op.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :t").bindparams(t=table))
        op.execute(sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :seq)").bindparams(t=table, seq=given))
