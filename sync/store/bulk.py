"""A run's writes to the store in bulk, through Core: one statement per kind of write and chunk, no ORM object per
shop order. The column values come from sync/store/memory.py (the one mapping of `OrderMemory`) and, for updates,
from `update_values` in sync/store/feed.py (the one mapping of `ShopUpdate`)."""

from __future__ import annotations

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from models import OrderPiece, ShopOrder, Update
from sync.store.feed import lock_feed

SHOP_ORDERS = ShopOrder.__table__
ORDER_PIECES = OrderPiece.__table__
UPDATES = Update.__table__


def stored_orders(session: Session, keys: list[str]) -> dict:
    """The stored shop orders of these keys, as rows of the shop_orders table (no ORM object), by order key."""
    return {row.order_key: row for row in session.execute(select(SHOP_ORDERS).where(SHOP_ORDERS.c.order_key.in_(keys)))}


def insert_shop_orders(session: Session, rows: list[dict]) -> dict[str, int]:
    """Store these new shop orders (column values by name), in one batched insert; returns their ids by order key."""
    if not rows:
        return {}
    return dict(session.execute(insert(SHOP_ORDERS).returning(SHOP_ORDERS.c.order_key, SHOP_ORDERS.c.id), rows).all())


def update_shop_orders(session: Session, rows: list[dict]) -> None:
    """Write these columns of stored shop orders (`id` picks each row): one executemany per set of columns written."""
    groups: dict[frozenset, list[dict]] = {}
    for row in rows:
        groups.setdefault(frozenset(row), []).append(row)
    for columns, group in groups.items():
        # Core sets the columns named by the parameters; the row's id goes under another name, kept out of SET.
        statement = update(SHOP_ORDERS).where(SHOP_ORDERS.c.id == bindparam("order_id"))
        session.execute(statement, [{**{name: row[name] for name in columns if name != "id"}, "order_id": row["id"]} for row in group])


def record_pieces(session: Session, owners: dict[str, int], new_pieces: dict[str, str]) -> None:
    """BC numbers learned, each recorded as its shop order's (`new_pieces`: piece -> order key; `owners`: key -> id).
    A BC number already recorded (reused by Sage after a deletion) moves to its new shop order."""
    existing = set(session.scalars(select(ORDER_PIECES.c.piece).where(ORDER_PIECES.c.piece.in_(list(new_pieces)))))
    added = [{"piece": piece, "shop_order_id": owners[key]} for piece, key in new_pieces.items() if piece not in existing]
    moved = [{"piece_key": piece, "shop_order_id": owners[key]} for piece, key in new_pieces.items() if piece in existing]
    if added:
        session.execute(insert(ORDER_PIECES), added)
    if moved:
        session.execute(update(ORDER_PIECES).where(ORDER_PIECES.c.piece == bindparam("piece_key")), moved)


class PendingUpdates:
    """Collects the column values of updates (`update_values`), to insert them at once."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, values: dict) -> None:
        self.rows.append(values)

    def insert(self, session: Session) -> None:
        """Insert the collected updates in the order they were made (their ids grow in that order, as the feed needs):
        one executemany per run of rows setting the same columns."""
        if self.rows:
            lock_feed(session)
        batch: list[dict] = []
        for values in self.rows:
            if batch and batch[-1].keys() != values.keys():
                session.execute(insert(UPDATES), batch)
                batch = []
            batch.append(values)
        if batch:
            session.execute(insert(UPDATES), batch)
