"""The admin landing page's figures: shop orders per stage, updates waiting to be pushed, failed or held in conflict
with the shop, runs, connectivity; and the open conflicts of a shop (or of one order) for the merchant to decide."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, exists, func, select
from sqlalchemy.orm import Session

from models import ShopOrder, SyncRun, Update, UpdateAck
from sync.core.stages import STAGES
from sync.gescom.adapter import GesCom
from sync.prestashop.client import PrestaShopClient, ShopError
from sync.prestashop.states import shop_states
from sync.services.conflicts import count_open, open_conflicts
from sync.services.health import gescom_check, probe_gescom
from sync.store.health import check_store
from sync.store.keys import list_consumers
from sync.store.shops import list_shops, pushes


@dataclass
class ConsumerLag:
    """What one consumer of the pull feed (a key that may write) has not acknowledged yet."""

    name: str
    prefix: str
    waiting: int
    oldest: datetime | None
    served_up_to: int


@dataclass
class Overview:
    orders_by_stage: dict[str | None, int]  # every stage (0 when none), then None: followed but nothing found yet
    orders_total: int
    orders_open: int
    pending_acks: int  # pull: updates no consumer has acknowledged yet
    oldest_pending_ack: datetime | None
    push: dict[str, int]  # push: Update.push_status -> count (pending, failed, pushed, conflict, dismissed)
    last_success: SyncRun | None  # the last real run that succeeded
    last_run: SyncRun | None  # the last run of any kind, to show a failure or a run in progress
    consumers: list[ConsumerLag] = field(default_factory=list)  # pull: each key that may write, with what it has not acknowledged


@dataclass
class ShopFigures:
    """One shop on the dashboard: its shop orders, its updates not yet taken (acknowledged or pushed), push or pull."""

    code: str
    name: str
    is_default: bool
    pushes: bool
    orders: int = 0
    orders_open: int = 0
    pending_acks: int = 0  # pull: updates no consumer has acknowledged yet
    push_pending: int = 0
    push_failed: int = 0
    conflicts: int = 0  # updates held: in open conflict with the shop's state


@dataclass
class ShopConflicts:
    """The open conflicts of a shop (or of one of its orders), oldest first, with the shop's order states to name
    what each side says (its own when connected and answering, else PrestaShop's native ones)."""

    conflicts: list[dict]  # sync.services.conflicts.conflict_view
    total: int  # open in all (more than listed when cut)
    states: list[dict] = field(default_factory=list)


@dataclass
class Check:
    ok: bool
    error: str | None = None


@dataclass
class Connectivity:
    store: Check
    gescom: Check
    shop: Check | None = None  # None: no shop configured (pull mode)


def overview(session: Session) -> Overview:
    """Counts over our own store, a handful of aggregate queries whatever its size."""
    by_stage: dict[str | None, int] = {stage.value: 0 for stage in STAGES}
    by_stage[None] = 0
    total = 0
    for stage, count in session.execute(select(ShopOrder.stage, func.count()).group_by(ShopOrder.stage)):
        by_stage[stage if stage in by_stage else None] += count
        total += count
    open_orders = session.scalar(select(func.count()).select_from(ShopOrder).where(ShopOrder.is_open.is_(True))) or 0
    pending, oldest = session.execute(select(func.count(), func.min(Update.created_at)).where(Update.acked_at.is_(None))).one()
    push = {"pending": 0, "failed": 0, "pushed": 0, "conflict": 0, "dismissed": 0}
    for status, count in session.execute(select(Update.push_status, func.count()).group_by(Update.push_status)):
        push[status] = push.get(status, 0) + count
    last_success = session.scalars(
        select(SyncRun).where(SyncRun.status == "succeeded", SyncRun.dry_run.is_(False)).order_by(SyncRun.id.desc()).limit(1)
    ).first()
    last_run = session.scalars(select(SyncRun).order_by(SyncRun.id.desc()).limit(1)).first()
    return Overview(by_stage, total, open_orders, pending or 0, oldest, push, last_success, last_run, consumer_lags(session))


def shop_figures(session: Session, connections) -> list[ShopFigures]:
    """Each shop's figures, the default shop first: one grouped query over shop orders, one over updates, whatever
    the number of shops. `connections`: the app's ShopConnections, which say which shops push (sync.store.shops.pushes)."""
    rows = list_shops(session)
    figures = {row.id: ShopFigures(row.code, row.name or row.code, bool(row.is_default), pushes(row, connections, rows)) for row in rows}
    opened = func.sum(case((ShopOrder.is_open.is_(True), 1), else_=0))
    for shop_id, count, open_count in session.execute(select(ShopOrder.shop_id, func.count(), opened).group_by(ShopOrder.shop_id)):
        if shop_id in figures:
            figures[shop_id].orders, figures[shop_id].orders_open = count, open_count or 0
    unacked = func.sum(case((Update.acked_at.is_(None), 1), else_=0))
    pending = func.sum(case((Update.push_status == "pending", 1), else_=0))
    failed = func.sum(case((Update.push_status == "failed", 1), else_=0))
    held = func.sum(case((Update.push_status == "conflict", 1), else_=0))
    rows = session.execute(select(Update.shop_id, unacked, pending, failed, held).group_by(Update.shop_id))
    for shop_id, waiting, to_push, failures, conflicts in rows:
        if shop_id in figures:
            shop = figures[shop_id]
            shop.pending_acks, shop.push_pending, shop.push_failed = waiting or 0, to_push or 0, failures or 0
            shop.conflicts = conflicts or 0
    return list(figures.values())


def shop_conflicts(session: Session, shop, connections, *, order_key: str | None = None, limit: int = 100) -> ShopConflicts:
    """The open conflicts of `shop` (a stored Shop), or of its order `order_key`, oldest first, `limit` at most. The
    shop's states are read (through `connections`, the app's ShopConnections) only when there is a conflict to show."""
    page = open_conflicts(session, shop_id=shop.id, order_key=order_key, limit=limit)
    if not page.conflicts:
        return ShopConflicts([], 0)
    total = count_open(session, shop.id) if order_key is None else len(page.conflicts)
    return ShopConflicts(page.conflicts, max(total, len(page.conflicts)), shop_states(shop, connections))


def consumer_lags(session: Session) -> list[ConsumerLag]:
    """Per consumer, the updates it has not acknowledged: one aggregate query per key (a shop has a handful)."""
    lags = []
    for key in list_consumers(session):
        acked = exists().where(UpdateAck.key_id == key.id, UpdateAck.update_id == Update.id)
        waiting, oldest = session.execute(select(func.count(), func.min(Update.created_at)).where(~acked)).one()
        lags.append(ConsumerLag(key.name, key.prefix, waiting or 0, oldest, key.served_up_to))
    return lags


def connectivity(session: Session, gescom: GesCom, shop: PrestaShopClient | None) -> Connectivity:
    """Whether our store, GesCom and the shop (when configured) answer now; one quick try each."""
    found = check_store(session.get_bind())  # reads and writes: a store that only reads is not "ok"
    store = Check(found["ok"], None if found["ok"] else f"{found['status']}: {found['error']}")
    answer = gescom_check(probe_gescom(gescom))  # the health check's probe: shared, and waited for 2 s at most
    gescom_found = Check(answer["ok"], answer.get("error"))
    shop_check = None
    if shop is not None:
        probe = shop.clone()  # one short attempt: a page must not wait for the client's retries
        probe.read_attempts, probe.timeout = 1, (3.0, 5.0)
        try:
            probe.read("orders", params={"limit": "1"})
            shop_check = Check(True)
        except ShopError as error:
            shop_check = Check(False, str(error))
    return Connectivity(store, gescom_found, shop_check)
