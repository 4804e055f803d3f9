"""Conflicts between the shop and Sage (issue 17): updates held because the shop holds their order in a state the
merchant decided (sync/core/conflicts.py), listed for the merchant, applied anyway, dismissed, or released when the
shop's state changes.

Where a conflict is seen:
- push: the push reads the shop's order before any write (sync/services/push.py), and holds what would act on it;
- webhook: the module says the order's state (order.status_changed): its updates not yet pushed nor acknowledged
  are held, or released when the state is out of the conflict states;
- run: a run making an update for an order whose last state said by the module is a conflict state holds it.

Open conflict ⟺ `push_status == "conflict"`: a held update is never pushed, and every change of it goes through that
status (one UPDATE guarded by it), so two people ending the same conflict at once end it once.

Ending one: in push mode the update itself goes back to `pending` (applied anyway: pushed whatever the shop's
state, once; released: pushed as usual). In pull mode the module may have read the update already and skipped it:
it is issued again, a new update at the head of the feed (`conflict.reissue_of`), and the held one says so
(`conflict.reissued_as`). Dismissed: nothing is ever sent for it. Each ending is audited in the order's timeline.
The caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import OrderEvent, ShopOrder, Update, utcnow
from models.shops import Shop
from sync.core import conflicts as rules
from sync.prestashop.states import shop_states
from sync.services.push_retry import Actor
from sync.store.feed import lock_feed
from sync.store.settings import load_settings
from sync.store.shops import pushes

HELD = "conflict"  # push_status of an update in open conflict
DISMISSED = "dismissed"  # push_status of an update whose conflict the merchant dismissed
PAGE_MAX = 500


class UpdateNotFound(LookupError):
    """No update with that id."""


class NotInConflict(ValueError):
    """The update is not in open conflict (never was, or its conflict ended): `status` says how it stands."""

    def __init__(self, item: Update):
        record = item.conflict or {}
        self.status = record.get("status")
        how = f"its conflict is {self.status}" if self.status else "it never was in conflict"
        super().__init__(f"update {item.id} is not in open conflict: {how} (push status {item.push_status})")


def shop_conflict_states(session: Session, shop: Shop, connections=None) -> dict[int, str]:
    """The shop's conflict states (state id -> reason): from its own order states and configuration when it is
    connected (read through its cached ShopStates), else PrestaShop's native ids; with its `conflict_states` setting."""
    return rules.conflict_states(shop_states(shop, connections), load_settings(session, shop.id).conflict_states)


def would_act(item: Update | dict, shop_state_id: int | None) -> bool:
    """Whether the update (a row, or a run's column values) would write anything to an order in `shop_state_id`."""
    get = item.get if isinstance(item, dict) else lambda name: getattr(item, name)
    values = {name: get(name) for name in ("tracking_numbers", "piece", "delivery_date", "deliveries")}
    return rules.acts(get("state_id"), get("changes") or [], values, shop_state_id)


def hold(item: Update, shop_state_id: int, reason: str, now: datetime, seen_by: str) -> bool:
    """Hold the update (its conflict opened, or kept open with the shop's state now). True when newly opened."""
    newly = not rules.is_open(item.conflict)
    item.conflict = rules.opened(shop_state_id, reason, now, seen_by, item.conflict)
    item.push_status = HELD
    return newly


def record_opened(session: Session, order_key: str, items: list[Update | int], shop_state_id: int, reason: str, seen_by: str) -> None:
    """The order's timeline says which updates (rows, or their ids) a conflict holds now."""
    ids = [item if isinstance(item, int) else item.id for item in items]
    session.add(
        OrderEvent(
            order_key=order_key,
            kind="conflict_opened",
            data={"update_ids": ids, "shop_state_id": shop_state_id, "reason": reason, "seen_by": seen_by},
        )
    )


def state_reported(session: Session, order: ShopOrder, state_id: int, connections=None, now: datetime | None = None) -> dict:
    """The module says the shop holds `order` in `state_id` (webhook order.status_changed): hold its updates not yet
    pushed nor acknowledged when that is a conflict state, else release its open conflicts. What changed, for the
    webhook's answer: {"held": [ids], "released": [ids]}."""
    now = now or utcnow()
    _lock_order(session, order.order_key)
    shop = session.get(Shop, order.shop_id)
    states = shop_conflict_states(session, shop, connections)
    # Held ones whatever their acknowledgement (a pull module acknowledges what it skips), and the ones not applied yet.
    waiting = list(
        session.scalars(
            select(Update)
            .where(Update.order_key == order.order_key)
            .where((Update.push_status == HELD) | ((Update.push_status == "pending") & Update.acked_at.is_(None)))
            .order_by(Update.id)
        )
    )
    if state_id not in states:
        released = release(session, order.order_key, waiting, state_id, now, seen_by="webhook", pushed=pushes(shop, connections))
        return {"held": [], "released": [item.id for item in released]}
    held = []
    for item in waiting:
        if rules.overridden(item.conflict) or (item.conflict or {}).get("reissued_as") or not would_act(item, state_id):
            continue  # applied anyway; issued again (that one is judged); nothing for the shop
        if hold(item, state_id, states[state_id], now, "webhook"):
            held.append(item)
        item.next_attempt_at = None  # a push re-reads the shop at its next pass: the module may be ahead of it
    session.flush()
    if held:
        record_opened(session, order.order_key, held, state_id, states[state_id], "webhook")
    return {"held": [item.id for item in held], "released": []}


def release(
    session: Session, order_key: str, items: list[Update], shop_state_id: int | None, now: datetime, *, seen_by: str, pushed: bool
) -> list[Update]:
    """The shop's state is out of the conflict states: the order's open conflicts among `items` end, and their
    updates go as usual, in order (pushed; or, in pull mode, issued again). Returns the updates released."""
    released = [item for item in items if item.push_status == HELD and _take(session, item, "pending")]
    if not released:
        return []
    reissued = []
    for item in released:
        item.next_attempt_at = None
        _end(session, item, rules.ended({**item.conflict, "shop_state_id_after": shop_state_id}, rules.RELEASED, now, by=seen_by), pushed)
        if not pushed:
            reissued.append(item.conflict["reissued_as"])
    data = {"update_ids": [item.id for item in released], "shop_state_id": shop_state_id, "seen_by": seen_by}
    if reissued:
        data["reissued_as"] = reissued
    session.add(OrderEvent(order_key=order_key, kind="conflict_released", data=data))
    return released


def apply_anyway(session: Session, update_id: int, actor: Actor, connections=None) -> Update:
    """The merchant says: send it as usual, whatever the shop's state; once (pushed, or issued again to the module).
    Raises UpdateNotFound, NotInConflict."""
    item, shop = _held(session, update_id)
    item.next_attempt_at = None
    _end(session, item, rules.ended(item.conflict, rules.APPLIED_ANYWAY, utcnow(), by=actor.name, via=actor.via), pushes(shop, connections))
    _audit(session, item, "conflict_applied_anyway", actor, reissued_as=item.conflict.get("reissued_as"))
    return item


def dismiss(session: Session, update_id: int, actor: Actor) -> Update:
    """The merchant says: send nothing for this update (later ones are judged again). Raises UpdateNotFound,
    NotInConflict."""
    item, _ = _held(session, update_id, status=DISMISSED)
    item.conflict = rules.ended(item.conflict, rules.DISMISSED, utcnow(), by=actor.name, via=actor.via)
    _audit(session, item, "conflict_dismissed", actor)
    return item


@dataclass
class ConflictPage:
    conflicts: list[dict]
    next: int | None  # the `after` of the next page, None on the last


def open_conflicts(session: Session, *, shop_id: int | None = None, order_key: str | None = None, after: int = 0, limit: int = 100) -> ConflictPage:
    """The updates in open conflict, oldest first (by update id), of one shop or order or of all."""
    limit = max(1, min(limit, PAGE_MAX))
    query = (
        select(Update, Shop.code)
        .join(Shop, Shop.id == Update.shop_id)
        .where(Update.push_status == HELD, Update.id > after)
        .order_by(Update.id)
        .limit(limit + 1)
    )
    if shop_id is not None:
        query = query.where(Update.shop_id == shop_id)
    if order_key is not None:
        query = query.where(Update.order_key == order_key)
    rows = session.execute(query).all()
    page = [conflict_view(item, code) for item, code in rows[:limit]]
    return ConflictPage(page, rows[limit - 1][0].id if len(rows) > limit else None)


def count_open(session: Session, shop_id: int | None = None) -> int:
    query = select(func.count()).select_from(Update).where(Update.push_status == HELD)
    return session.scalar(query if shop_id is None else query.where(Update.shop_id == shop_id)) or 0


def conflict_view(item: Update, shop_code: str) -> dict:
    """One conflict as the API and the admin page show it: what Sage says (the update), what the shop says, since when."""
    record = item.conflict or {}
    return {
        "update_id": item.id,
        "order_key": item.order_key,
        "shop": shop_code,
        "id_order": item.id_order,
        "sage": {
            "stage": item.stage,
            "state_id": item.state_id,
            "tracking_numbers": item.tracking_numbers,
            "piece": item.piece,
            "delivery_date": item.delivery_date.isoformat() if item.delivery_date else None,
            "changes": item.changes,
        },
        "shop_state_id": record.get("shop_state_id"),
        "reason": record.get("reason"),
        "since": record.get("since"),
        "seen_by": record.get("seen_by"),
        "created_at": item.created_at.isoformat() + "Z",
    }


def _held(session: Session, update_id: int, status: str = "pending") -> tuple[Update, Shop]:
    """The update in open conflict, taken out of it (its push status set to `status`) by one guarded UPDATE."""
    item = session.get(Update, update_id)
    if item is None:
        raise UpdateNotFound(f"no update {update_id}")
    if _lock_order(session, item.order_key):
        session.refresh(item)
    if item.push_status != HELD or not _take(session, item, status):
        session.refresh(item)  # another transaction ended it first: say how
        raise NotInConflict(item)
    return item, session.get(Shop, item.shop_id)


def _lock_order(session: Session, order_key: str) -> bool:
    """PostgreSQL: wait for a push pass that claimed the order (it holds the order's row until it commits), and
    keep it from claiming the order until this transaction ends. True when locked (what was read may be older)."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    session.execute(select(ShopOrder.id).where(ShopOrder.order_key == order_key).with_for_update())
    return True


def _take(session: Session, item: Update, status: str) -> bool:
    """Move the update out of `conflict` to `status`, unless another transaction did first."""
    taken = session.execute(
        update(Update).where(Update.id == item.id, Update.push_status == HELD).values(push_status=status).execution_options(synchronize_session=False)
    ).rowcount
    if taken:
        item.push_status = status
    return bool(taken)


def _end(session: Session, item: Update, record: dict, pushed: bool) -> None:
    """The update's conflict ends with `record`: pushed as usual, or, for a pull module that may have read and
    skipped it, issued again (the same update at the head of the feed)."""
    if pushed:
        item.conflict = record
        return
    lock_feed(session)
    again = Update(
        order_key=item.order_key,
        shop_id=item.shop_id,
        id_order=item.id_order,
        stage=item.stage,
        state_id=item.state_id,
        tracking_numbers=item.tracking_numbers,
        piece=item.piece,
        delivery_date=item.delivery_date,
        deliveries=item.deliveries,
        changes=list(item.changes),
        run_id=item.run_id,
        created_at=utcnow(),
        conflict=rules.reissue(record, of=item.id),
    )
    session.add(again)
    session.flush()
    item.conflict = rules.reissued(record, again.id)


def _audit(session: Session, item: Update, kind: str, actor: Actor, **extra) -> None:
    record = item.conflict or {}
    data = {"update_id": item.id, "by": actor.name, "via": actor.via, "shop_state_id": record.get("shop_state_id"), "reason": record.get("reason")}
    data.update({key: value for key, value in extra.items() if value is not None})
    session.add(OrderEvent(order_key=item.order_key, kind=kind, data=data))
