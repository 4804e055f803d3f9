"""The outbox of shop updates: stored by the runs, read oldest first by id (a stable cursor) in the pull feed,
acknowledged by the module that applied them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import Update, utcnow
from sync.core.stages import ShopUpdate
from sync.gescom.catalog import DEFAULT_KEY_RULE

MAX_LIMIT = 500


def add_update(
    session: Session, order_key: str, id_order: int | None, shop_update: ShopUpdate, *, run_id: int | None, created_at: datetime
) -> Update:
    """Store one update of a shop order (the one mapping from `ShopUpdate` to its row)."""
    row = Update(
        order_key=order_key,
        id_order=id_order,
        stage=shop_update.stage,
        state_id=shop_update.state_id,
        tracking_numbers=shop_update.tracking_numbers,
        piece=shop_update.piece,
        delivery_date=shop_update.delivery_date,
        deliveries=shop_update.deliveries,
        changes=shop_update.changes,
        run_id=run_id,
        created_at=created_at,
    )
    session.add(row)
    return row


def preview_of(row: Update) -> dict:
    """An update as a dry run shows it: never stored, so no id and never acknowledged."""
    return {key: value for key, value in {**row.to_dict(), "id": None}.items() if key != "acked_at"}


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
