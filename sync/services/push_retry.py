"""Renvoyer: updates whose push failed for good, put back to be pushed again at the next push pass.

Only failed updates move: what was pushed stays pushed. A retried update goes through the push's own rules again
(the shop is read before any write, a state is never posted twice nor over a later one), so sending again never
writes twice what the shop already has. Each shop order whose updates are sent again gets an event in its
timeline saying who asked, when, and for how many updates. The caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import ApiKey, OrderEvent, ShopOrder, Update
from sync.prestashop.connections import ShopConnections
from sync.services.unit_of_work import UnitOfWork
from sync.store.shops import list_shops

EVENT_KIND = "push_retried"
RETRYING = "retrying"  # a failed update being put back, within the retry's transaction only
ERRORS_KEPT = 3  # distinct errors of the retried updates kept in the event, each cut to ERROR_CHARS
ERROR_CHARS = 300
PAGE_MAX = 500


class UnknownOrder(LookupError):
    """Not a shop order we follow."""


class NotPushed(LookupError):
    """The order's shop (or, for every order, each shop) does not push: its updates go by the pull feed only."""


def pushing_shop_ids(session: Session, connections: ShopConnections) -> set[int]:
    """The ids of the shops that push: those with a connection (an address and a key)."""
    rows = list_shops(session)
    return {row.id for row in rows if connections.get(row, rows) is not None}


@dataclass(frozen=True)
class Actor:
    """Who asked: the name of the API key (`via` "api") or of the admin page's key (`via` "admin")."""

    name: str
    via: str


@dataclass
class RetryResult:
    retried: int = 0
    orders: list[dict] = field(default_factory=list)  # {"order_key", "retried", "update_ids"}, by order key


def key_actor(session: Session, key_id: int, via: str) -> Actor:
    """The actor for an API key, by its name (never the key itself)."""
    name = session.scalar(select(ApiKey.name).where(ApiKey.id == key_id))
    return Actor(name or f"key {key_id}", via)


def retry_failed(uow: UnitOfWork, order_key: str | None = None, *, actor: Actor, connections: ShopConnections | None = None) -> RetryResult:
    """Put the failed updates of one shop order (or of all) back to pending, due at the next push pass, and record
    an event on each order concerned. Raises UnknownOrder for an order we do not follow; 0 retried is no error.
    With `connections`, only the updates of shops that push: NotPushed when the order's shop (or every shop) does not."""
    session = uow.session
    chosen = Update.push_status == "failed"
    shop_id = None
    if order_key is not None:
        shop_id = session.scalar(select(ShopOrder.shop_id).where(ShopOrder.order_key == order_key))
        if shop_id is None:
            raise UnknownOrder(f"no shop order {order_key!r} is followed")
        chosen &= Update.order_key == order_key
    if connections is not None:
        pushing = pushing_shop_ids(session, connections)
        if (shop_id is not None and shop_id not in pushing) or not pushing:
            raise NotPushed("push mode is off for this shop order's shop" if shop_id is not None else "no shop pushes")
        chosen &= Update.shop_id.in_(pushing)
    # Marked first, in one statement: it takes the write lock (SQLite) or the rows' locks (PostgreSQL) before they
    # are read, so a retry asked twice at once retries each update once (the second finds none failed). The mark
    # never outlives this transaction: the updates leave it as pending.
    session.execute(update(Update).where(chosen).values(push_status=RETRYING).execution_options(synchronize_session=False))
    marked = select(Update).where(Update.push_status == RETRYING).order_by(Update.order_key, Update.id)
    rows = list(session.scalars(marked.execution_options(populate_existing=True)))
    by_order: dict[str, list[Update]] = {}
    for item in rows:
        by_order.setdefault(item.order_key, []).append(item)
    result = RetryResult()
    for key, items in by_order.items():
        session.add(OrderEvent(order_key=key, kind=EVENT_KIND, data=_event_data(items, actor)))
        for item in items:
            item.push_status, item.push_attempts, item.next_attempt_at, item.push_error = "pending", 0, None, None
        result.retried += len(items)
        result.orders.append({"order_key": key, "retried": len(items), "update_ids": [item.id for item in items]})
    session.flush()
    return result


def _event_data(items: list[Update], actor: Actor) -> dict:
    errors = list(dict.fromkeys(item.push_error for item in items if item.push_error))[:ERRORS_KEPT]
    return {
        "by": actor.name,
        "via": actor.via,
        "updates": len(items),
        "update_ids": [item.id for item in items],
        "errors": [error if len(error) <= ERROR_CHARS else error[:ERROR_CHARS] + "…" for error in errors],
    }


def failed_updates(session: Session, *, after: int = 0, limit: int = 100, order_key: str | None = None) -> tuple[list[dict], int | None]:
    """The updates whose push failed, oldest first after the update id `after`; and the cursor of the next page
    (None on the last one)."""
    limit = max(1, min(limit, PAGE_MAX))
    query = select(Update).where(Update.push_status == "failed", Update.id > after).order_by(Update.id).limit(limit + 1)
    if order_key is not None:
        query = query.where(Update.order_key == order_key)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return [_failed_entry(item) for item in rows], (rows[-1].id if more else None)


def _failed_entry(item: Update) -> dict:
    answer = item.push_answer or {}
    return {
        "order_key": item.order_key,
        "update_id": item.id,
        "id_order": item.id_order,
        "changes": item.changes,
        "state_id": item.state_id,
        "error": item.push_error,
        "status": answer.get("status"),
        "code": answer.get("code"),
        "attempts": item.push_attempts,
        "failed_at": answer.get("failed_at"),
        "created_at": item.created_at.isoformat() + "Z",
    }
