"""What the shop tells us about its orders (module webhooks): recorded in the order's timeline."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import OrderEvent, ShopOrder
from sync.core.memory import note_shop_state
from sync.core.stages import shop_state_rank
from sync.gescom.catalog import DEFAULT_KEY_RULE
from sync.store.memory import load_memory, save_memory
from sync.store.settings import load_settings
from sync.store.shops import stored_shops


def find_order(session: Session, order_key: str | None = None, id_order: int | None = None, shop_id: int | None = None) -> ShopOrder | None:
    """A followed shop order by its key (the link value; for a key bound to another shop than the default one, a key
    naming no shop is that shop's), or by PrestaShop id_order (each shop numbers its own: among the orders of
    `shop_id` when given)."""
    if order_key:
        # A module of another shop than the default one sends its own numbers: `1001` is its `b2b:1001`.
        key = stored_shops(session).typed_key(order_key, DEFAULT_KEY_RULE, shop_id)
        return session.scalar(select(ShopOrder).where(ShopOrder.order_key == key))
    if id_order is not None:
        query = select(ShopOrder).where(ShopOrder.id_order == id_order).order_by(ShopOrder.id)
        return session.scalars(query if shop_id is None else query.where(ShopOrder.shop_id == shop_id)).first()
    return None


def record_shop_state(session: Session, order: ShopOrder, state_id: int, previous_state_id: int | None = None, source: str = "webhook") -> OrderEvent:
    """The shop says the order is now in `state_id` (often set by hand by the merchant).

    That state is never produced again for the order, and no state of an earlier stage follows it. The caller
    commits (a webhook: with its webhook-id, so that a repeat handled concurrently stores nothing twice).
    """
    memory = load_memory(order)
    save_memory(order, note_shop_state(memory, state_id, shop_state_rank(state_id, load_settings(session, order.shop_id), memory.stage)))
    event = OrderEvent(
        order_key=order.order_key,
        kind="shop_state_changed",
        data={"state_id": state_id, "previous_state_id": previous_state_id, "source": source},
    )
    session.add(event)
    session.flush()
    return event
