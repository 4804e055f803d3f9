"""Shops in the store: the default one first, then by code; how many shop orders each has; which shop a key or an order belongs to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import ShopOrder, utcnow
from models.shops import DEFAULT_SHOP_ID, Shop
from sync.core.shops import KEY_SEPARATOR, ShopClaims, ShopError, ShopRule, split_order_key, validate_shops
from sync.core.shops import Shop as CoreShop


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


def pushes(shop: Shop, connections, shops: list[Shop] | None = None) -> bool:
    """Whether updates are pushed to this shop: it has a connection (`connections`, the app's ShopConnections: its
    webservice address and key; the default shop's may be PRESTASHOP_URL's). `shops`: every shop, when at hand."""
    return connections is not None and connections.get(shop, shops) is not None


# --- shops as the pure rules see them, and changing them -------------------------------------------------------


def core_shop(row: Shop) -> CoreShop:
    """A stored shop as sync/core/shops.py checks and claims with it."""
    return CoreShop(
        code=row.code,
        name=row.name or row.code,
        rule=ShopRule.from_document(row.rule),
        is_default=bool(row.is_default),
        id_shop=row.id_shop,
        prestashop_url=row.prestashop_url,
    )


@dataclass(frozen=True)
class StoredShops:
    """Every shop of the store, for a run or a request: who claims a document, and each shop's id by code."""

    claims: ShopClaims
    ids: dict[str, int]  # code -> shop id
    default_id: int

    def shop_id_of(self, order_key: str) -> int:
        """The id of the shop an order key names (the default shop's when it names none)."""
        code, _link = split_order_key(order_key, self.claims.codes)
        return self.default_id if code is None else self.ids[code]

    def typed_key(self, text: str, normalize: Callable[[str], str], bound_shop_id: int | None = None) -> str:
        """An order key typed by a person or sent by a client, made as runs make keys: its shop's code kept (codes are
        lower case), its link value made by `normalize` (the base's key rule). A key naming no shop is the shop of
        `bound_shop_id`'s when given (a module of that shop sends its own numbers), else the default shop's."""
        code, link_value = split_order_key(text, self.claims.codes)
        if code is None and bound_shop_id is not None and bound_shop_id != self.default_id:
            code = next(known for known, known_id in self.ids.items() if known_id == bound_shop_id)
        key = normalize(link_value)
        return key if code is None else f"{code}{KEY_SEPARATOR}{key}"

    def link_value_of(self, order_key: str) -> str:
        """The link value an order key names, as the shop sees it (its id_order when it is a number)."""
        return split_order_key(order_key, self.claims.codes)[1]


def stored_shops(session: Session) -> StoredShops:
    """The shops of the store as one `StoredShops`. Raises ShopError if the stored set is invalid (never saved so)."""
    rows = list_shops(session)
    claims = ShopClaims([core_shop(row) for row in rows])
    ids = {row.code: row.id for row in rows}
    return StoredShops(claims=claims, ids=ids, default_id=ids[claims.default.code])


def _check_set(rows: list[Shop], changed: CoreShop, position: int) -> None:
    """Raises ShopError, its field seen from the changed shop's document, unless the set with `changed` is valid."""
    shops = [core_shop(row) for row in rows]
    if position == len(shops):
        shops.append(changed)
    else:
        shops[position] = changed
    try:
        validate_shops(shops)
    except ShopError as error:
        prefix = f"shops.{position}."
        if error.field.startswith(prefix):
            raise ShopError(error.field[len(prefix) :], error.message) from None
        other = error.field.split(".")[1] if error.field.startswith("shops.") and error.field.count(".") >= 1 else None
        names = f"shop '{shops[int(other)].code}'" if other is not None and other.isdigit() else "the shops"
        raise ShopError("rule", f"with this shop, {names} would not be valid: {error.field}: {error.message}") from None


def create_shop(session: Session, document: dict) -> Shop:
    """Add a shop (the caller commits). Its settings start as the defaults, with the default shop's shared ones.
    Raises ShopError naming the field: an invalid shop, or one that would make two shops claim one document."""
    if isinstance(document, dict) and document.get("is_default"):
        raise ShopError("is_default", "there is one default shop, the first one (its order keys are the plain link value)")
    shop = CoreShop.from_document(document)
    rows = list_shops(session)
    if any(row.code == shop.code for row in rows):
        raise ShopError("code", f"'{shop.code}' is already the code of a shop")
    _check_set(rows, shop, len(rows))
    now = utcnow()
    row = Shop(
        code=shop.code, name=shop.name, rule=shop.rule.to_document(), is_default=False, id_shop=shop.id_shop, prestashop_url=shop.prestashop_url
    )
    row.created_at = row.updated_at = now
    session.add(row)
    session.flush()
    return row


EDITABLE = ("name", "rule", "id_shop", "prestashop_url")


def update_shop(session: Session, code: str, patch: dict) -> Shop | None:
    """Change a shop's name, rule, id_shop or webservice address (the caller commits); None when no shop has this
    code. The code and which shop is the default never change. Raises ShopError naming the field."""
    if not isinstance(patch, dict):
        raise ShopError("shop", "must be an object")
    for name in patch:
        if name not in EDITABLE:
            raise ShopError(name, "cannot be changed" if name in ("code", "is_default") else f"unknown key; known: {', '.join(EDITABLE)}")
    rows = list_shops(session)
    position = next((index for index, row in enumerate(rows) if row.code == code), None)
    if position is None:
        return None
    row = rows[position]
    document = {**core_shop(row).to_document(), **patch}
    shop = CoreShop.from_document(document)
    _check_set(rows, shop, position)
    row.name, row.rule, row.id_shop, row.prestashop_url = shop.name, shop.rule.to_document(), shop.id_shop, shop.prestashop_url
    row.updated_at = utcnow()
    session.flush()
    return row
