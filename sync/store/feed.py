"""The outbox of shop updates: stored by the runs, read oldest first by id (a stable cursor) in the pull feed,
acknowledged by the module that applied them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Text, bindparam, cast, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from models import Update, utcnow
from sync.core.stages import ShopUpdate
from sync.gescom.catalog import DEFAULT_KEY_RULE

MAX_LIMIT = 500


def update_values(order_key: str, id_order: int | None, shop_update: ShopUpdate, *, run_id: int | None, created_at: datetime) -> dict:
    """The column values of one update of a shop order: the one mapping from `ShopUpdate` to its row."""
    return {
        "order_key": order_key,
        "id_order": id_order,
        "stage": shop_update.stage,
        "state_id": shop_update.state_id,
        "tracking_numbers": shop_update.tracking_numbers,
        "piece": shop_update.piece,
        "delivery_date": shop_update.delivery_date,
        "deliveries": shop_update.deliveries,
        "changes": shop_update.changes,
        "run_id": run_id,
        "created_at": created_at,
    }


def add_update(
    session: Session, order_key: str, id_order: int | None, shop_update: ShopUpdate, *, run_id: int | None, created_at: datetime
) -> Update:
    """Store one update of a shop order, as an ORM object added to `session` (a run inserts `update_values` in bulk)."""
    row = Update(**update_values(order_key, id_order, shop_update, run_id=run_id, created_at=created_at))
    session.add(row)
    return row


def preview_of(values: dict) -> dict:
    """An update as a dry run shows it (its `update_values`): never stored, so no id and never acknowledged."""
    return {key: value for key, value in {**Update(**values).to_dict(), "id": None}.items() if key != "acked_at"}


@dataclass
class Page:
    updates: list[Update]
    next: int  # the cursor to send as `after` next time
    has_more: bool


def updates_after(session: Session, after: int = 0, limit: int = 100, include_acked: bool = False, order_key: str | None = None) -> Page:
    """Updates with id > `after`, oldest first. Ids only grow and one run writes at a time, so a reader
    that follows `next` sees every update once."""
    query = select(Update).where(Update.id > after).order_by(Update.id).limit(limit + 1)
    if not include_acked:
        query = query.where(Update.acked_at.is_(None))
    if order_key is not None:
        query = query.where(Update.order_key == DEFAULT_KEY_RULE(order_key))
    rows = list(session.scalars(query))
    has_more = len(rows) > limit
    rows = rows[:limit]
    return Page(updates=rows, next=rows[-1].id if rows else after, has_more=has_more)


# The feed's columns, in the order of an update's JSON (`api.schemas.UpdateSchema`).
FEED_COLUMNS = (
    "id",
    "order_key",
    "id_order",
    "stage",
    "state_id",
    "tracking_numbers",
    "piece",
    "delivery_date",
    "deliveries",
    "changes",
    "created_at",
    "acked_at",
)
_JSON_COLUMNS = ("tracking_numbers", "deliveries", "changes")
_JSON_AT = tuple(FEED_COLUMNS.index(name) for name in _JSON_COLUMNS)
_TABLE = Update.__table__
# JSON columns read as their text, decoded a page at a time by `_decoded`.
_COLUMNS = [cast(_TABLE.c[name], Text).label(name) if name in _JSON_COLUMNS else _TABLE.c[name] for name in FEED_COLUMNS]


def _rows_after(include_acked: bool):
    query = select(*_COLUMNS).where(_TABLE.c.id > bindparam("after")).order_by(_TABLE.c.id).limit(bindparam("limit"))
    return query if include_acked else query.where(_TABLE.c.acked_at.is_(None))


# Built once, Core selects (no ORM object per row): the pull feed asks on every poll, most often for nothing new.
_ROWS_AFTER = {include_acked: _rows_after(include_acked) for include_acked in (False, True)}


@dataclass
class RowPage:
    rows: list[list[Any]]  # the FEED_COLUMNS of each update, oldest first, as the ORM would give them
    next: int
    has_more: bool


def update_rows_after(session: Session | Connection, after: int = 0, limit: int = 100, include_acked: bool = False) -> RowPage:
    """`updates_after` as plain rows of FEED_COLUMNS, for the pull feed: the same updates, the same cursor.
    Only reads, with a session or a bare connection (the API's, lighter than a session per poll)."""
    rows = session.execute(_ROWS_AFTER[bool(include_acked)], {"after": after, "limit": limit + 1}).all()
    has_more = len(rows) > limit
    rows = _decoded(rows[:limit])
    return RowPage(rows=rows, next=rows[-1][0] if rows else after, has_more=has_more)


def _decoded(rows) -> list[list[Any]]:
    """The rows with their JSON columns decoded as the JSON type does (json.loads), in one call for the page:
    called once per value, the calls cost more than the parsing."""
    texts = [row[at] for row in rows for at in _JSON_AT if row[at] is not None]
    values = iter(json.loads("[" + ",".join(texts) + "]") if texts else ())
    decoded = []
    for row in rows:
        row = list(row)
        for at in _JSON_AT:
            if row[at] is not None:
                row[at] = next(values)
        decoded.append(row)
    return decoded


@dataclass
class AckResult:
    acknowledged: int = 0  # newly acknowledged by this call
    already_acknowledged: int = 0
    unknown: list[int] = field(default_factory=list)


def acknowledge(session: Session, ids: list[int] | None = None, up_to: int | None = None) -> AckResult:
    """Mark updates acknowledged. Idempotent: acknowledging twice changes nothing the second time."""
    now = utcnow()
    result = AckResult()
    if up_to is not None:
        known = session.scalar(select(Update.id).where(Update.id <= up_to).order_by(Update.id.desc()).limit(1))
        changed = session.execute(
            update(Update).where(Update.id <= up_to, Update.acked_at.is_(None)).values(acked_at=now).execution_options(synchronize_session=False)
        ).rowcount
        result.acknowledged = changed
        if known is None:
            result.unknown = [up_to]
    else:
        wanted = sorted(set(ids or []))
        found = (
            {row_id: acked_at for row_id, acked_at in session.execute(select(Update.id, Update.acked_at).where(Update.id.in_(wanted)))}
            if wanted
            else {}
        )
        result.unknown = [i for i in wanted if i not in found]
        result.already_acknowledged = sum(1 for acked_at in found.values() if acked_at is not None)
        pending = [i for i, acked_at in found.items() if acked_at is None]
        if pending:
            result.acknowledged = session.execute(
                update(Update)
                .where(Update.id.in_(pending), Update.acked_at.is_(None))
                .values(acked_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount
    return result
