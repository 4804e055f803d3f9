"""Shops: the PrestaShop shops whose orders one Sage 100 company holds (issue 16). Today there is one, `default`.

A shop's settings document is the `settings` row with the shop's id (settings.id = shops.id): the default shop is
id 1, which is the settings row every release before shops used. Shop orders, updates and API keys name their shop.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, event, insert, text
from sqlalchemy.orm import Mapped, mapped_column

from models import db, utcnow

DEFAULT_SHOP_ID = 1
DEFAULT_SHOP = {"id": DEFAULT_SHOP_ID, "code": "default", "name": "Boutique principale", "rule": {"kind": "all"}, "is_default": True}


class Shop(db.Model):
    """A shop: `code` (short, stable, in keys and URLs), how Sage tells its orders apart (`rule`, a JSON document),
    its PrestaShop webservice URL for push mode (the key is never stored: it comes from the environment) or its
    `id_shop` inside a multistore installation."""

    __tablename__ = "shops"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(20), nullable=False, unique=True)
    name: Mapped[str | None] = mapped_column(String(100))
    rule: Mapped[dict] = mapped_column(JSON, nullable=False)
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    id_shop: Mapped[int | None] = mapped_column(Integer)
    prestashop_url: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


@event.listens_for(Shop.__table__, "after_create")
def _insert_default_shop(table, connection, **_):
    """A store made from the models (tests, benchmarks) has the default shop too, as migration 0011 makes it: every
    shop order, update and key names shop 1 by default."""
    now = utcnow()
    connection.execute(insert(table).values(**DEFAULT_SHOP, created_at=now, updated_at=now))
    if connection.dialect.name == "postgresql":
        # Id 1 was given explicitly: the sequence must go past it or the next shop would collide.
        connection.execute(text("SELECT setval(pg_get_serial_sequence('shops', 'id'), (SELECT max(id) FROM shops))"))
