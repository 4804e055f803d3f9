"""Shops in the store: the default one first, then by code; how many shop orders each has; which shop a key or an order belongs to."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import ShopOrder
from models.shops import DEFAULT_SHOP_ID, Shop


def list_shops(session: Session) -> list[Shop]:
    """Every shop, the default one first, then by code."""
    return list(session.scalars(select(Shop).order_by(Shop.is_default.desc(), Shop.code)))


def get_shop(session: Session, code: str) -> Shop | None:
    """The shop with this code, or None."""
    return session.scalar(select(Shop).where(Shop.code == code))


def default_shop(session: Session) -> Shop:
    """The default shop: every shop order, update and key of a store from before shops belongs to it."""
    shop = session.scalar(select(Shop).where(Shop.is_default.is_(True)).order_by(Shop.id))
    return shop if shop is not None else session.get_one(Shop, DEFAULT_SHOP_ID)


def order_counts(session: Session) -> dict[int, int]:
    """Shop id -> how many shop orders the store follows for it (open or not); a shop without any is absent."""
    return dict(session.execute(select(ShopOrder.shop_id, func.count()).group_by(ShopOrder.shop_id)).all())


def order_shop_id(session: Session, order_key: str) -> int | None:
    """The shop of the followed shop order with this key (made as runs make keys), or None when none is followed."""
    return session.scalar(select(ShopOrder.shop_id).where(ShopOrder.order_key == order_key))


def pushes(shop: Shop, connected: bool) -> bool:
    """Whether updates are pushed to this shop: it has its webservice address, or it is the default shop and
    PRESTASHOP_URL connects one (`connected`), as before shops."""
    return bool(shop.prestashop_url) or (shop.is_default and connected)
