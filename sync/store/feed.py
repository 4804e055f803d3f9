"""The outbox of shop updates: stored by the runs, read oldest first by id (a stable cursor) in the pull feed,
acknowledged by each consumer (a key that may write) that applied them, for itself only.

A consumer may acknowledge only what was served to it (`ApiKey.served_up_to`), and a cursor beyond the head (the
highest update id) is refused: a module restored from a backup, or pointed at another store, notices."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Text, and_, bindparam, cast, exists, func, literal, select, true, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from models import ApiKey, Update, UpdateAck, utcnow
from models.shops import DEFAULT_SHOP_ID
from sync.core.stages import ShopUpdate
from sync.gescom.catalog import DEFAULT_KEY_RULE

MAX_LIMIT = 500
FEED_LOCK = 0x53_46_45_44  # PostgreSQL advisory lock: inserting updates, one transaction at a time (`lock_feed`)


def lock_feed(session: Session) -> None:
    """Call before inserting updates: held until the transaction ends, so updates are committed in the order of
    their ids, and a reader that follows its cursor never passes one still uncommitted behind it. Runs insert
    updates one at a time already (their lease); an update issued again when a conflict ends (a webhook, a click)
    does not hold that lease. SQLite writes one transaction at a time by itself."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(FEED_LOCK)))


def update_values(
    order_key: str, id_order: int | None, shop_update: ShopUpdate, *, run_id: int | None, created_at: datetime, shop_id: int = DEFAULT_SHOP_ID
) -> dict:
    """The column values of one update of a shop order: the one mapping from `ShopUpdate` to its row."""
    return {
        "order_key": order_key,
        "shop_id": shop_id,
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
    session: Session,
    order_key: str,
    id_order: int | None,
    shop_update: ShopUpdate,
    *,
    run_id: int | None,
    created_at: datetime,
    shop_id: int = DEFAULT_SHOP_ID,
) -> Update:
    """Store one update of a shop order, as an ORM object added to `session` (a run inserts `update_values` in bulk)."""
    row = Update(**update_values(order_key, id_order, shop_update, run_id=run_id, created_at=created_at, shop_id=shop_id))
    session.add(row)
    return row


def preview_of(values: dict) -> dict:
    """An update as a dry run shows it (its `update_values`): never stored, so no id and never acknowledged."""
    return {key: value for key, value in {**Update(**values).to_dict(), "id": None}.items() if key != "acked_at"}


class CursorBeyondHead(ValueError):
    """`after` is beyond the highest update id: the reader's cursor is not of this store (a backup restored)."""

    def __init__(self, after: int, head: int):
        super().__init__(f"the cursor {after} is beyond the head of the feed, {head}: updates are numbered up to {head} here")
        self.head = head


class AckOfAnotherShop(ValueError):
    """A consumer bound to one shop acknowledges updates of another shop: nothing is acknowledged."""

    def __init__(self, ids: list[int]):
        super().__init__(f"ids {ids[:10]} are updates of another shop than this key's")
        self.ids = ids


class AckBeyondServed(ValueError):
    """A consumer acknowledges updates never served to it."""

    def __init__(self, detail: str, served_up_to: int):
        super().__init__(detail)
        self.served_up_to = served_up_to


_TABLE = Update.__table__
_ACKS = UpdateAck.__table__
_HEAD = select(func.coalesce(func.max(_TABLE.c.id), 0))
_SHOP_HEAD = _HEAD.where(_TABLE.c.shop_id == bindparam("shop"))  # ix_updates_shop (shop_id, id): one index probe


def head_id(session: Session | Connection, shop_id: int | None = None) -> int:
    """The highest update id that exists (0 in an empty store), of one shop or (None) of every shop."""
    if shop_id is None:
        return session.execute(_HEAD).scalar_one()
    return session.execute(_SHOP_HEAD, {"shop": shop_id}).scalar_one()


def _head_at_or_after(session: Session | Connection, after: int, shop_id: int | None = None) -> int:
    """The head (of the shop), once `after` is known not to be beyond it (CursorBeyondHead otherwise)."""
    head = head_id(session, shop_id)
    if after > head:
        raise CursorBeyondHead(after, head)
    return head


def _acked_by(consumer):
    """Whether the update is acknowledged: by this consumer, or by any (None: what read keys see)."""
    if consumer is None:
        return _TABLE.c.acked_at.is_not(None)
    return exists().where(_ACKS.c.key_id == consumer, _ACKS.c.update_id == _TABLE.c.id)


@dataclass
class Page:
    updates: list[Update]
    next: int  # the cursor to send as `after` next time
    has_more: bool
    head: int = 0  # the highest update id that exists


def updates_after(
    session: Session,
    after: int = 0,
    limit: int = 100,
    include_acked: bool = False,
    order_key: str | None = None,
    consumer: int | None = None,
    shop_id: int | None = None,
) -> Page:
    """Updates with id > `after`, oldest first, of one shop or (None) of every shop. Ids only grow and one run writes
    at a time, so a reader that follows `next` sees every update once. Raises CursorBeyondHead past the head."""
    head = _head_at_or_after(session, after, shop_id)
    query = select(Update).where(Update.id > after).order_by(Update.id).limit(limit + 1)
    if shop_id is not None:
        query = query.where(Update.shop_id == shop_id)
    if not include_acked:
        query = query.where(~_acked_by(consumer))
    if order_key is not None:
        query = query.where(Update.order_key == DEFAULT_KEY_RULE(order_key))
    rows = list(session.scalars(query))
    has_more = len(rows) > limit
    rows = rows[:limit]
    return Page(updates=rows, next=rows[-1].id if rows else after, has_more=has_more, head=max(head, rows[-1].id if rows else 0))


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
    "conflict",
    "acked_at",  # last: per consumer, the acknowledgement's own time takes its place
)
_JSON_COLUMNS = ("tracking_numbers", "deliveries", "changes", "conflict")
_JSON_AT = tuple(FEED_COLUMNS.index(name) for name in _JSON_COLUMNS)
# JSON columns read as their text, decoded a page at a time by `_decoded`.
_COLUMNS = [cast(_TABLE.c[name], Text).label(name) if name in _JSON_COLUMNS else _TABLE.c[name] for name in FEED_COLUMNS]


def _rows_after(include_acked: bool, per_consumer: bool, per_shop: bool):
    """The page's select; per consumer, `acked_at` is when this consumer acknowledged the update; per shop, only the
    shop's updates (ix_updates_shop)."""
    query = select(*_COLUMNS).where(_TABLE.c.id > bindparam("after")).order_by(_TABLE.c.id).limit(bindparam("limit"))
    if per_shop:
        query = query.where(_TABLE.c.shop_id == bindparam("shop"))
    if not per_consumer:
        return query if include_acked else query.where(_TABLE.c.acked_at.is_(None))
    joined = _TABLE.outerjoin(_ACKS, and_(_ACKS.c.update_id == _TABLE.c.id, _ACKS.c.key_id == bindparam("consumer")))
    query = query.with_only_columns(*_COLUMNS[:-1], _ACKS.c.acked_at.label("acked_at")).select_from(joined)
    return query if include_acked else query.where(_ACKS.c.update_id.is_(None))


# Built once, Core selects (no ORM object per row): the pull feed asks on every poll, most often for nothing new.
_ROWS_AFTER = {(acked, mine, shop): _rows_after(acked, mine, shop) for acked in (False, True) for mine in (False, True) for shop in (False, True)}


@dataclass
class RowPage:
    rows: list[list[Any]]  # the FEED_COLUMNS of each update, oldest first, as the ORM would give them
    next: int
    has_more: bool
    head: int = 0  # the highest update id that exists


def update_rows_after(
    session: Session | Connection,
    after: int = 0,
    limit: int = 100,
    include_acked: bool = False,
    consumer: int | None = None,
    shop_id: int | None = None,
) -> RowPage:
    """`updates_after` as plain rows of FEED_COLUMNS, for the pull feed: the same updates, the same cursor.
    Only reads, with a session or a bare connection (the API's, lighter than a session per poll)."""
    head = _head_at_or_after(session, after, shop_id)
    if after == head:  # at the head, most polls: nothing to read
        return RowPage(rows=[], next=after, has_more=False, head=head)
    parameters = {"after": after, "limit": limit + 1, "consumer": consumer, "shop": shop_id}
    rows = session.execute(_ROWS_AFTER[bool(include_acked), consumer is not None, shop_id is not None], parameters).all()
    has_more = len(rows) > limit
    rows = _decoded(rows[:limit])
    return RowPage(rows=rows, next=rows[-1][0] if rows else after, has_more=has_more, head=max(head, rows[-1][0] if rows else 0))


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


def acknowledge(
    session: Session, ids: list[int] | None = None, up_to: int | None = None, consumer: int | None = None, shop_id: int | None = None
) -> AckResult:
    """Mark updates acknowledged by this consumer (a key that may write), never by another; only what was served to it
    (AckBeyondServed otherwise), and, for a consumer bound to a shop, only that shop's (`up_to`: its shop's up to
    that id; ids of another shop: AckOfAnotherShop, nothing acknowledged). Idempotent. Without a consumer (tools,
    tests), only "acknowledged by someone" is set."""
    now = utcnow()
    served = None if consumer is None else _hold_consumer(session, consumer)
    mine = true() if shop_id is None else Update.shop_id == shop_id
    if up_to is not None:
        if served is not None and up_to > served:
            raise AckBeyondServed(f"up_to {up_to} is beyond what this key was served: updates up to {served}", served)
        result = AckResult(unknown=[] if session.scalar(select(Update.id).where(Update.id <= up_to, mine).limit(1)) else [up_to])
        result.acknowledged = _ack(session, and_(Update.id <= up_to, mine), consumer, now)
        return result
    wanted = sorted(set(ids or []))
    if served is not None and wanted and wanted[-1] > served:
        beyond = [i for i in wanted if i > served]
        raise AckBeyondServed(f"ids {beyond[:10]} were never served to this key: updates up to {served} were", served)
    found = dict(session.execute(select(Update.id, Update.shop_id).where(Update.id.in_(wanted))).all()) if wanted else {}
    others = [i for i, shop in found.items() if shop_id is not None and shop != shop_id]
    if others:
        raise AckOfAnotherShop(sorted(others))
    result = AckResult(unknown=[i for i in wanted if i not in found])
    if found:
        result.acknowledged = _ack(session, Update.id.in_(sorted(found)), consumer, now)
        result.already_acknowledged = len(found) - result.acknowledged
    return result


def _hold_consumer(session: Session, consumer: int) -> int:
    """How far the feed served this consumer, its row held until the transaction ends: one consumer's acknowledgements
    go one at a time, and a store that cannot take writes answers that before anything is judged."""
    held = update(ApiKey).where(ApiKey.id == consumer).values(served_up_to=ApiKey.served_up_to).returning(ApiKey.served_up_to)
    return session.execute(held.execution_options(synchronize_session=False)).scalar_one()


def _ack(session: Session, which, consumer: int | None, now: datetime) -> int:
    """Acknowledge the updates `which` selects for this consumer; how many were not acknowledged by it before."""
    if consumer is None:
        changed = update(Update).where(which, Update.acked_at.is_(None)).values(acked_at=now)
        return session.execute(changed.execution_options(synchronize_session=False)).rowcount
    fresh = select(literal(consumer), Update.id, literal(now, type_=Update.acked_at.type)).where(which, ~_acked_by(consumer))
    # Two acknowledgements of one consumer at once (a retry) must not both insert: the second one's rows are skipped.
    # RETURNING counts what was added: psycopg's rowcount of an INSERT … SELECT is not reliable through SQLAlchemy (-1).
    inserted = _insert_new(session, _ACKS).from_select(["key_id", "update_id", "acked_at"], fresh).on_conflict_do_nothing()
    added = len(session.execute(inserted.returning(_ACKS.c.update_id)).all())
    if added:  # "acknowledged by at least one consumer": the first one's time
        session.execute(update(Update).where(which, Update.acked_at.is_(None)).values(acked_at=now).execution_options(synchronize_session=False))
    return added


def _insert_new(session: Session, table):
    """The store's own INSERT, which can skip rows already there (ON CONFLICT DO NOTHING: SQLite and PostgreSQL)."""
    return (postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert)(table)
