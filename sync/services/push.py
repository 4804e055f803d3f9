"""Push mode: push pending updates to the shop through the PrestaShop webservice, per order and in order.

For each update: the tracking number first (order_carriers), then the state (order_histories), then one
private back-office message per other change, where the order page shows it (1.7.7+: a customer_message on the
order's customer_thread; before: the legacy `message` table). Every write is preceded by a read of what the shop
has, so a push repeated after a crash or an ambiguous failure changes nothing twice: a state is never posted
when the order already has it, and never over a later state the merchant set by hand; a state the shop does not
have is never posted at all (8.x runs hooks and stock moves for it, then answers 500).

Several workers may push at once: a worker claims a batch of shop orders in one store round trip (on PostgreSQL
with SELECT ... FOR UPDATE SKIP LOCKED, held until the batch is committed; on SQLite one process pushes at a time,
a lease in the store) and commits their results together. What the shop has of a batch's orders is read in one
request per kind for the whole batch (_BatchReads), not once per order: the requests left are the writes.

Shops (issue 16): a pass goes shop by shop, the default one first. Each shop's orders (shop_orders.shop_id) go
through that shop's own connection (sync/prestashop/connections.py: its address, key and, in a multistore
installation, its id_shop) with that shop's settings and order states. A shop without a connection is left to the
pull feed; a shop whose set-up fails, or that does not answer, stops its own pass only.

Conflicts (issue 17, sync/services/conflicts.py): before any write, an order's updates are judged against the
shop's state read for the batch. When the shop holds the order in a conflict state (its PS_OS_CANCELED,
PS_OS_REFUND, PS_OS_ERROR, or one of the `conflict_states` setting), every update that would write anything is held
(push status `conflict`): nothing of it is written, and it is judged again CONFLICT_RECHECK later. When the shop's
state has left the conflict states, the held updates are released and pushed at once, in order. An update the
merchant applied anyway goes as usual.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import secrets
import socket
import string
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import distinct, exists, func, select

from models import OrderEvent, ShopOrder, Update, utcnow
from sync.core import conflicts as conflict_rules
from sync.core.memory import note_messages_sent, note_shop_order, note_state_pushed, note_tracking_pushed
from sync.core.settings import Settings
from sync.core.shops import KEY_SEPARATOR
from sync.core.stages import shop_state_rank
from sync.prestashop.client import (
    PrestaShopClient,
    ShopAmbiguous,
    ShopError,
    ShopSetupError,
    ShopUnavailable,
    tracking_value,
)
from sync.prestashop.connections import ShopConnections
from sync.prestashop.messages import shop_texts
from sync.prestashop.states import NATIVE_ORDER_STATES
from sync.services.conflicts import HELD, hold, record_opened, release, would_act
from sync.services.unit_of_work import UnitOfWork
from sync.store.locks import acquire_lock, release_lock
from sync.store.memory import change_memory, load_memory
from sync.store.settings import load_settings
from sync.store.shops import list_shops

log = logging.getLogger(__name__)

LOCK_NAME = "push"
# Shop orders claimed at most per store round trip and committed together. Each batch reads what the shop has of
# its orders in one request per kind (_BatchReads), which a larger batch shares between more orders; a pass with
# several workers claims smaller batches when there is too little due for each worker to get a full one.
BATCH = 32
FIRST_RETRY = timedelta(seconds=30)
LAST_RETRY = timedelta(hours=1)
# How long a held order waits before the shop's state is read again: 5 minutes at first, then half the time it has
# been held, 1 hour at most (the module's order.status_changed has it read at the next pass).
CONFLICT_RECHECK = timedelta(minutes=5)
CONFLICT_RECHECK_MAX = timedelta(hours=1)
THREAD_TOKEN = string.ascii_letters + string.digits  # customer_thread.token: 12 characters, as the back office makes


@dataclass
class PushReport:
    pushed: int = 0
    failed: int = 0
    retry_later: int = 0
    held: int = 0  # updates held by a conflict with the shop's state (newly, or still)
    orders: int = 0
    error: str | None = None  # set when a shop's set-up stopped its push ("shop code: ..." with several shops)
    details: list[str] = field(default_factory=list)
    shops: dict[str, PushReport] = field(default_factory=dict)  # by shop code, when pushed shop by shop


class _Retry(Exception):
    """Stop this order for now; its updates stay pending."""


class UnknownState(ShopError):
    """The update's state is not one of the shop's: a permanent failure; `pushed` is what went through."""

    def __init__(self, message: str, *, answer: dict):
        super().__init__(message, status=404)
        self.pushed = answer


class _ShopStates:
    """The ids of the shop's order states, and its conflict states, each read once per push pass (shared by its
    workers), when first needed."""

    def __init__(self, client: PrestaShopClient, settings: Settings | None = None):
        self.client, self.lock, self.ids, self.settings = client, threading.Lock(), None, settings
        self._conflicts: dict[int, str] | None = None

    def __contains__(self, state_id: int) -> bool:
        with self.lock:
            if self.ids is None:
                self.ids = {int(row["id"]) for row in self.client.order_states()}
            return state_id in self.ids

    def conflicts(self) -> dict[int, str]:
        """The shop's conflict states (id -> reason): its configuration's PS_OS_CANCELED, PS_OS_REFUND, PS_OS_ERROR,
        and the `conflict_states` setting. A key that may not read the configuration: PrestaShop's native ids."""
        with self.lock:
            if self._conflicts is None:
                extra = self.settings.conflict_states if self.settings is not None else []
                try:
                    values = self.client.configurations(list(conflict_rules.CONFLICT_KEYS))
                except ShopError as error:
                    if not error.permanent or (isinstance(error, ShopSetupError) and error.status not in (401, 403)):
                        raise  # a shop that does not answer now: the order waits (_push_order); a broken set-up stops the pass
                    log.warning(
                        "push: the shop's configuration cannot be read (%s): its native cancelled, refunded, payment error states hold updates",
                        error,
                    )
                    self._conflicts = conflict_rules.conflict_states(NATIVE_ORDER_STATES, extra)
                else:
                    self._conflicts = conflict_rules.from_configuration(values, extra)
            return self._conflicts


def _due(now: datetime):
    """Pending updates, and held ones (judged again), whose time has come."""
    return Update.push_status.in_(("pending", HELD)) & ((Update.next_attempt_at.is_(None)) | (Update.next_attempt_at <= now))


def _backoff(attempts: int) -> timedelta:
    base = min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), LAST_RETRY)
    return base * (0.75 + random.random() / 2)


class _Claims:
    """What this pass's workers have claimed of one shop's orders (`shop_id`; None: any shop's): an id cursor they
    share, so no shop order is claimed twice in a pass (SQLite has no SKIP LOCKED; on PostgreSQL the claimed rows
    are also locked against other processes)."""

    def __init__(self, max_orders: int, batch: int, shop_id: int | None = None):
        self.lock = threading.Lock()
        self.after = 0
        self.left = max_orders
        self.batch = max(1, batch)
        self.shop_id = shop_id

    def claim(self, session, postgres: bool) -> list[ShopOrder]:
        """The shop's next due shop orders after the cursor, up to a batch, in id order."""
        with self.lock:  # one claim at a time in this process: each moves the cursor past what it took
            if self.left <= 0:
                return []
            due = exists().where(Update.order_key == ShopOrder.order_key, _due(utcnow()))
            query = select(ShopOrder).where(ShopOrder.id > self.after, due).order_by(ShopOrder.id).limit(min(self.batch, self.left))
            if self.shop_id is not None:
                query = query.where(ShopOrder.shop_id == self.shop_id)
            if postgres:
                query = query.with_for_update(skip_locked=True, of=ShopOrder)
            orders = list(session.scalars(query))
            if orders:
                self.after, self.left = orders[-1].id, self.left - len(orders)
            return orders


@dataclass
class _Target:
    """One shop to push to in a pass: its row, its client, its settings, how its order keys begin."""

    shop_id: int
    code: str
    client: PrestaShopClient
    settings: Settings
    key_prefix: str  # "" for the default shop, "code:" for the others (order keys)


def push_pending(
    uow: UnitOfWork,
    shop: PrestaShopClient | ShopConnections,
    *,
    max_orders: int = 500,
    employee_id: int | None = None,
    worker: str | None = None,
    workers: int = 1,
    batch: int = BATCH,
) -> PushReport:
    """Push the due updates of up to `max_orders` shop orders per shop, `workers` orders at a time (each order's
    updates stay in order, by one worker). `shop`: a client, for the default shop's updates (as before shops), or
    the ShopConnections, for every shop that has a connection, each through its own client with its own settings
    (the others are left to the pull feed). Never raises for a shop failure: a set-up error (key, permissions,
    webservice off, shop down) stops that shop's pass, not the others', and is reported in `error`. A worker claims
    up to `batch` orders at a time and commits their results together: through `uow`, or, for `workers` > 1, a unit
    of work of its own (`uow.another()`)."""
    session = uow.session
    report = PushReport()
    worker = worker or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    postgres = session.get_bind().dialect.name == "postgresql"
    targets = _targets(session, shop)
    if not targets:
        return report
    if not postgres and not acquire_lock(session, LOCK_NAME, worker, timedelta(minutes=10)):
        report.details.append("another push is running")
        return report
    try:
        for target in targets:
            this_shop = _push_shop(uow, target, postgres, max_orders=max_orders, employee_id=employee_id, workers=workers, batch=batch)
            report.shops[target.code] = this_shop
            _add(report, this_shop, prefix=f"shop {target.code}: " if len(targets) > 1 else "")
    finally:
        if not postgres:
            try:
                uow.rollback()  # an order left half-done by a failure is not kept, nor written as the lease goes back
            finally:
                release_lock(session, LOCK_NAME, worker)
    return report


def _targets(session, shop: PrestaShopClient | ShopConnections) -> list[_Target]:
    """The shops this pass pushes to, the default one first: a client stands for the default shop alone."""
    rows = list_shops(session)
    if isinstance(shop, ShopConnections):
        pairs = [(row, shop.client_for(row, rows)) for row in rows]
    else:
        pairs = [(row, shop) for row in rows if row.is_default]
    return [
        _Target(row.id, row.code, client, load_settings(session, row.id), "" if row.is_default else f"{row.code}{KEY_SEPARATOR}")
        for row, client in pairs
        if client is not None
    ]


def _add(report: PushReport, part: PushReport, prefix: str) -> None:
    report.pushed += part.pushed
    report.failed += part.failed
    report.retry_later += part.retry_later
    report.held += part.held
    report.orders += part.orders
    report.details += [prefix + line for line in part.details]
    if part.error is not None:
        report.error = f"{report.error}; {prefix}{part.error}" if report.error else prefix + part.error


def _push_shop(uow: UnitOfWork, target: _Target, postgres: bool, *, max_orders: int, employee_id, workers: int, batch: int) -> PushReport:
    """One shop's pass: its due orders through its client, with its settings and its order states."""
    session, client, report = uow.session, target.client, PushReport()
    claims = _Claims(max_orders, _batch_size(session, batch, workers, max_orders, target.shop_id), target.shop_id)
    merge_lock, stop = threading.Lock(), threading.Event()
    context = _Pass(employee_id, _ShopStates(client, target.settings), target.key_prefix)
    if workers <= 1:
        _work(uow, client, target.settings, postgres, claims, report, merge_lock, stop, context)
        return report

    def run(own: UnitOfWork) -> None:
        with own:
            _work(own, client.clone(), target.settings, postgres, claims, report, merge_lock, stop, context)

    # Each worker's unit of work is made here: the caller's session may be bound to this thread's context.
    threads = [threading.Thread(target=run, args=(uow.another(),), name=f"push-{target.code}-{n}") for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return report


def _batch_size(session, batch: int, workers: int, max_orders: int, shop_id: int | None = None) -> int:
    """Up to `batch` orders a claim, fewer when full batches would leave workers with nothing to push (of one shop)."""
    if workers <= 1:
        return batch
    query = select(func.count(distinct(Update.order_key))).where(_due(utcnow()))
    due = session.scalar(query if shop_id is None else query.where(Update.shop_id == shop_id))
    return max(1, min(batch, math.ceil(min(due, max_orders) / workers)))


@dataclass(frozen=True)
class _Pass:
    employee_id: int | None
    states: _ShopStates
    key_prefix: str = ""  # what the shop's order keys begin with ("code:"), not part of a reference


def _work(uow: UnitOfWork, client, settings, postgres, claims: _Claims, report: PushReport, merge_lock, stop, context: _Pass) -> None:
    while not stop.is_set():
        orders = claims.claim(uow.session, postgres)
        if not orders:
            uow.rollback()
            return
        done, error = _push_batch(uow.session, client, orders, settings, context, stop)
        if error is not None and not isinstance(error, ShopSetupError):
            try:
                uow.commit()  # what the shop already has for the orders done before it is kept
            except Exception:
                log.exception("push: the results of the orders done before a failure could not be stored")
            raise error
        uow.commit()  # ends the claim on these orders; only now do their counts stand
        with merge_lock:
            for this_order in done:
                report.orders += 1
                report.pushed += this_order.pushed
                report.failed += this_order.failed
                report.retry_later += this_order.retry_later
                report.held += this_order.held
                report.details += this_order.details
            if error is not None:
                report.error = str(error)
        if error is not None:
            stop.set()
            log.error("push stopped: %s", error)
            return


def _push_batch(session, client, orders: list[ShopOrder], settings, context: _Pass, stop) -> tuple[list[PushReport], Exception | None]:
    """Push a claimed batch order after order; at a failure, the orders before it stand and its own changes go."""
    keys = [order.order_key for order in orders]
    updates: dict[str, list[Update]] = {key: [] for key in keys}
    for item in session.scalars(select(Update).where(Update.order_key.in_(keys), Update.push_status.in_(("pending", HELD))).order_by(Update.id)):
        updates[item.order_key].append(item)
    done: list[PushReport] = []
    reads = _BatchReads(client, [load_memory(order).shop_id_order or _first_id_order(updates[order.order_key]) for order in orders])
    for order in orders:
        if stop.is_set():
            break  # another worker found the shop's set-up broken: the rest of the batch waits for the next pass
        this_order = PushReport()
        try:
            _push_order(session, reads, order, updates[order.order_key], settings, utcnow(), this_order, context)
        except Exception as error:
            # Nothing of a half-done order is kept, as when it had a transaction of its own (nothing is flushed yet).
            for stale in (order, *updates[order.order_key]):
                session.expire(stale)
            for event in [new for new in session.new if isinstance(new, OrderEvent) and new.order_key == order.order_key]:
                session.expunge(event)  # its conflict_opened, if it got one
            return done, error
        done.append(this_order)
    return done, None


def _first_id_order(updates: list[Update]) -> int | None:
    return next((item.id_order for item in updates if item.id_order), None)


class _BatchReads:
    """The client, but what the shop has of a batch's orders (the order, its carrier rows, its latest history) is
    read for the whole batch in one request when the first order needs it, and served from there until we write
    to that order; after a write (and to look again after an ambiguous answer) its reads go to the shop. What is
    served is older by at most the orders pushed before it in the batch; claimed orders are written by no other worker."""

    def __init__(self, client: PrestaShopClient, ids: list[int | None]):
        self.client = client
        self.ids = list(dict.fromkeys(int(id_order) for id_order in ids if id_order))
        self.batch: dict[str, dict[int, object]] = {}
        self.written: set[int] = set()

    def __getattr__(self, name):
        return getattr(self.client, name)

    def _read(self, kind: str, id_order: int, read_batch, read_one):
        if id_order not in self.ids or id_order in self.written:
            return read_one(id_order)
        if kind not in self.batch:
            self.batch[kind] = read_batch(self.ids)
        return self.batch[kind].get(id_order)

    def order(self, id_order: int) -> dict | None:
        return self._read("order", int(id_order), lambda ids: {int(row["id"]): row for row in self.client.orders_of(ids)}, self.client.order)

    def order_carriers(self, id_order: int) -> list[dict]:
        def read_batch(ids: list[int]) -> dict[int, list[dict]]:
            rows: dict[int, list[dict]] = {id_order: [] for id_order in ids}
            for row in sorted(self.client.order_carriers_of(ids), key=lambda row: int(row["id"])):
                rows.setdefault(int(row["id_order"]), []).append(row)
            return rows

        return self._read("carriers", int(id_order), read_batch, self.client.order_carriers)

    def latest_history(self, id_order: int) -> dict | None:
        return self._read("latest", int(id_order), self.client.latest_histories, self.client.latest_history)

    def set_tracking(self, carrier_row: dict, number: str, *, send_email: bool) -> dict:
        self.written.add(int(carrier_row["id_order"]))  # before: an ambiguous answer is looked at afresh
        return self.client.set_tracking(carrier_row, number, send_email=send_email)

    def add_history(self, id_order: int, state_id: int, **options) -> dict:
        self.written.add(int(id_order))
        return self.client.add_history(id_order, state_id, **options)


def _push_order(
    session, client, order: ShopOrder, updates: list[Update], settings: Settings, now: datetime, report: PushReport, context: _Pass
) -> None:
    try:
        updates, released_by = _judged(session, client, order, updates, now, report, context)
    except (ShopUnavailable, ShopAmbiguous) as error:
        updates[0].push_attempts += 1  # a try all the same: the shop could not say the order's state
        _later(order, updates, 0, error, now, report)  # nothing of the order goes without it
        return
    if released_by is None:
        _push_updates(client, order, updates, settings, now, report, context)
        return
    with session.begin_nested():  # the release writes at once (one guarded UPDATE): undone with the order if it fails
        release(session, order.order_key, updates, released_by.state, now, seen_by="push", pushed=True)
        _push_updates(client, order, [item for item in updates if item.push_status != HELD], settings, now, report, context)


def _push_updates(client, order: ShopOrder, updates: list[Update], settings: Settings, now: datetime, report: PushReport, context: _Pass) -> None:
    """Push the order's updates, in order, as judged."""
    # Each update carries the order's whole snapshot: of several pending ones, only the latest state and the
    # latest tracking numbers matter (an old state pushed late would move the shop backwards).
    last_state = max((position for position, item in enumerate(updates) if item.state_id is not None), default=-1)
    last_tracking = max((position for position, item in enumerate(updates) if "tracking" in item.changes), default=-1)
    for position, item in enumerate(updates):
        item.push_attempts += 1
        try:
            item.push_answer = _push_update(
                client,
                order,
                item,
                settings,
                context,
                send_state=position == last_state,
                send_tracking=position == last_tracking,
            )
        except ShopSetupError:
            raise
        except (ShopUnavailable, ShopAmbiguous, _Retry) as error:
            _later(order, updates, position, error, now, report)
            return
        except ShopError as error:
            item.push_status, item.push_error = "failed", str(error)
            item.push_answer = {"error": str(error), "status": error.status, "code": error.code, "answer": error.answer}
            item.push_answer["failed_at"] = utcnow().isoformat() + "Z"  # when it failed, for the list of failed pushes
            if isinstance(error, UnknownState):
                item.push_answer["pushed"] = error.pushed
            report.failed += 1
            report.details.append(f"order {order.order_key}: update {item.id} failed: {error}")
            continue
        item.push_status, item.push_error, item.pushed_at, item.next_attempt_at = "pushed", None, utcnow(), None
        report.pushed += 1
        for warning in item.push_answer.get("warnings", []):
            log.warning("order %s: update %s pushed with a warning: %s", order.order_key, item.id, warning)
            report.details.append(f"order {order.order_key}: update {item.id} pushed with a warning: {warning}")


def _later(order: ShopOrder, updates: list[Update], position: int, error: Exception, now: datetime, report: PushReport) -> None:
    """The update at `position` is tried again later, and the later updates of the order wait too: they must not
    overtake it."""
    item = updates[position]
    retry_at = now + (timedelta(seconds=error.retry_after) if getattr(error, "retry_after", None) else _backoff(item.push_attempts))
    for waiting in updates[position:]:
        waiting.next_attempt_at = retry_at
    item.push_error = str(error)
    report.retry_later += 1
    report.details.append(f"order {order.order_key}: update {item.id} retried later: {error}")


def _recheck(item: Update, now: datetime) -> datetime:
    """When a held update is judged again: CONFLICT_RECHECK, then half the time it has been held, CONFLICT_RECHECK_MAX at most."""
    since = datetime.fromisoformat(item.conflict["since"].rstrip("Z"))
    return now + min(max(CONFLICT_RECHECK, (now - since) / 2), CONFLICT_RECHECK_MAX)


@dataclass(frozen=True)
class _Released:
    state: int | None  # the shop's state, out of the conflict states


def _judged(
    session, client, order: ShopOrder, updates: list[Update], now: datetime, report: PushReport, context: _Pass
) -> tuple[list[Update], _Released | None]:
    """The updates to push now, once judged against the shop's state (read before any write): in a conflict state,
    those that would write anything are held, judged again CONFLICT_RECHECK later; out of one, the held ones are to
    be released (`_Released`), then pushed now, in order. An update applied anyway goes whatever the state."""
    if not any(item.push_status == HELD or would_act(item, None) for item in updates):
        return updates, None  # nothing would reach the shop: nothing to read
    try:
        current = _int(_resolve(client, order, updates[0], context.key_prefix).get("current_state"))
    except ShopError as error:
        if isinstance(error, ShopSetupError) or not error.permanent:
            raise  # a broken set-up stops the pass; a shop that does not answer now: the order waits (_push_order)
        for item in updates:
            if item.push_status == HELD:
                item.next_attempt_at = _recheck(item, now)  # still held: judged again when the order can be read
        return [item for item in updates if item.push_status != HELD], None  # these meet the same answer, and fail saying so
    conflicts = context.states.conflicts()
    if current not in conflicts:
        held = any(item.push_status == HELD for item in updates)
        return updates, _Released(current) if held else None
    reason, newly, go = conflicts[current], [], []
    for item in updates:
        if conflict_rules.overridden(item.conflict) or not would_act(item, current):
            go.append(item)
            continue
        if hold(item, current, reason, now, "push"):
            newly.append(item)
        item.next_attempt_at = _recheck(item, now)
        report.held += 1
    if newly:
        record_opened(session, order.order_key, newly, current, reason, "push")
        ids = ", ".join(str(item.id) for item in newly)
        report.details.append(f"order {order.order_key}: updates {ids} held: the shop holds the order in state {current} ({reason})")
    return go, None


def _resolve(client: PrestaShopClient, order: ShopOrder, item: Update, key_prefix: str = "") -> dict:
    """The shop's order for this update: by id_order (DO_NoWeb holds it), else by reference (the link value: the
    order key without its shop's `code:`)."""
    known = load_memory(order).shop_id_order
    if known or item.id_order:
        id_order = known or item.id_order
        found = client.order(id_order)
        if found is None:
            raise ShopError(f"order {id_order} does not exist in the shop", status=404)
    else:
        reference = order.order_key[len(key_prefix) :] if key_prefix and order.order_key.startswith(key_prefix) else order.order_key
        matches = client.orders_by_reference(reference)
        if not matches:
            raise ShopError(f"no order with reference {order.order_key!r} in the shop", status=404)
        if len(matches) > 1:
            ids = ", ".join(str(m["id"]) for m in matches)
            raise ShopError(
                f"reference {order.order_key!r} matches several shop orders ({ids}): one cart split in several orders; link by id_order instead",
                status=409,
            )
        found = matches[0]
    change_memory(order, note_shop_order, int(found["id"]))
    return found


def _push_update(
    client: PrestaShopClient, order: ShopOrder, item: Update, settings: Settings, context: _Pass, *, send_state: bool, send_tracking: bool
) -> dict:
    texts = _messages(item)
    if not (item.state_id is not None or ("tracking" in item.changes and item.tracking_numbers) or texts):
        return {"action": "nothing for the shop", "changes": item.changes}  # e.g. a stage with no state mapped
    shop_order = _resolve(client, order, item, context.key_prefix)
    id_order = int(shop_order["id"])
    answer: dict = {"id_order": id_order}
    notify = bool(settings.notify_customer)
    decision = None
    unknown_state = item.state_id is not None and send_state and item.state_id not in context.states
    if item.state_id is not None and send_state and not unknown_state:
        forced = conflict_rules.overridden(item.conflict)  # applied anyway: the merchant's decision, over any state
        decision = _state_decision(client, order, shop_order, item.state_id, settings, context.employee_id, forced=forced)
    if "tracking" in item.changes and item.tracking_numbers:
        if send_tracking:
            # The in-transit mail only when no state mail follows (that one carries the tracking link).
            state_mail = decision is not None and decision["action"] == "post" and notify
            answer["tracking"] = _push_tracking(client, order, shop_order, item.tracking_numbers, send_email=notify and not state_mail)
        else:
            answer["tracking"] = {"action": "superseded by a later update"}
    if unknown_state:
        answer["state"] = {"action": "unknown_state", "state_id": item.state_id}
    elif item.state_id is not None:
        if decision is None:
            answer["state"] = {"action": "superseded by a later update", "state_id": item.state_id}
        elif decision["action"] == "post":
            answer["state"] = _post_state(client, order, shop_order, item.state_id, notify, context.employee_id)
        else:
            answer["state"] = decision
    if texts:
        answer["messages"] = _push_messages(client, order, id_order, texts, context.employee_id)
        # A message the shop refuses is reported, never a reason to fail the state or tracking number above.
        refused = answer["messages"].get("refused", [])
        if refused:
            answer["warnings"] = [f"message not accepted by the shop, not sent again: {entry['error']}" for entry in refused]
    if unknown_state:
        # Never posted: on 8.x an unknown state runs hooks and stock moves, then answers 500. The rest was pushed.
        raise UnknownState(
            f"order state {item.state_id} does not exist in the shop (deleted, or mapped for another shop): fix the "
            "stage → state mapping; the state of this update is not sent, nor retried",
            answer=answer,
        )
    return answer


def carrier_row(rows: list[dict], id_carrier) -> dict | None:
    """The order_carrier row that holds the order's tracking number: the latest row (highest id) of the order's
    current carrier (orders.id_carrier), else the latest row. An order has several rows when the merchant changed
    its carrier in the back office (the new carrier gets the number) or, with multi-shipping, one per carrier
    (PrestaShop's order page and its in-transit mail use the order's own carrier). Every parcel number goes into
    that one row, space-joined while they fit its 64 characters (`tracking_value`)."""
    if not rows:
        return None
    ordered = sorted(rows, key=lambda row: int(row["id"]))
    current = [row for row in ordered if str(row.get("id_carrier")) == str(id_carrier)]
    return (current or ordered)[-1]


def _push_tracking(client, order: ShopOrder, shop_order: dict, numbers: list[str], *, send_email: bool) -> dict:
    value, left_out = tracking_value(numbers)
    result = {"value": value, "left_out": left_out}
    if not value:
        result["action"] = "none_fits"
        return result
    id_order = int(shop_order["id"])
    row = carrier_row(client.order_carriers(id_order), shop_order.get("id_carrier"))
    if row is None:
        raise ShopError(f"order {id_order} has no carrier row (order_carriers) to hold a tracking number", status=404)
    if (row.get("tracking_number") or "") == value:
        change_memory(order, note_tracking_pushed, value)
        return {**result, "action": "unchanged", "order_carrier": int(row["id"])}
    try:
        client.set_tracking(row, value, send_email=send_email)
    except ShopAmbiguous:
        # Maybe written: look before trying again.
        again = {int(r["id"]): r for r in client.order_carriers(id_order)}.get(int(row["id"]))
        if again is None or (again.get("tracking_number") or "") != value:
            raise
    change_memory(order, note_tracking_pushed, value)
    written = {**result, "action": "written", "order_carrier": int(row["id"]), "mail": send_email}
    if client.method_override:
        written["sent_as"] = "POST with ps_method (PUT/PATCH refused before the webservice: a web firewall?)"
    return written


def _state_decision(client, order: ShopOrder, shop_order: dict, state_id: int, settings: Settings, employee_id, *, forced: bool = False) -> dict:
    """Whether to post `state_id`: not when the order has it, is further on, or a merchant set a state by hand;
    `forced` (applied anyway over a conflict), whenever the order does not have it."""
    current = _int(shop_order.get("current_state"))
    if current == state_id:
        change_memory(order, note_state_pushed, state_id)
        return {"action": "already_in_state", "state_id": state_id}
    if forced:
        return {"action": "post", "state_id": state_id, "previous_state_id": current}
    memory = load_memory(order)
    mine = shop_state_rank(state_id, settings, memory.stage)
    theirs = shop_state_rank(current, settings, memory.stage) if current is not None else None
    if mine is not None and theirs is not None and theirs >= mine:
        return {"action": "shop_already_further", "state_id": state_id, "shop_state_id": current}
    if current is not None and current != memory.shop_state_pushed and theirs is None:
        # A state we cannot place: if the merchant set it by hand, it stays.
        latest = client.latest_history(int(shop_order["id"]))
        employee = _int(latest.get("id_employee")) if latest else None
        if employee and employee != employee_id:
            return {"action": "kept_state_set_by_hand", "state_id": state_id, "shop_state_id": current}
    return {"action": "post", "state_id": state_id, "previous_state_id": current}


def _post_state(client, order: ShopOrder, shop_order: dict, state_id: int, notify: bool, employee_id) -> dict:
    current = _int(shop_order.get("current_state"))
    try:
        client.add_history(int(shop_order["id"]), state_id, send_email=notify, id_employee=employee_id)
    except ShopAmbiguous:
        # PrestaShop answers 500 code 46 after the row was written when a mail fails: look before retrying.
        again = client.order(int(shop_order["id"]))
        if again is None or _int(again.get("current_state")) != state_id:
            raise
    change_memory(order, note_state_pushed, state_id)
    return {"action": "posted", "state_id": state_id, "previous_state_id": current, "mail": notify}


def _messages(item: Update) -> list[str]:
    """One private back-office message per change the merchant asked to send (piece, date, deliveries)."""
    texts = []
    if "piece" in item.changes and item.piece:
        texts.append(f"Sage : document {item.piece}")
    if "delivery_date" in item.changes and item.delivery_date:
        texts.append(f"Sage : date de livraison {item.delivery_date.isoformat()}")
    if "deliveries" in item.changes and item.deliveries:
        for delivery in item.deliveries:
            lines = ", ".join(f"{_qty(line['quantity'])} × {line['sku']}" for line in delivery.get("lines", []))
            parts = [f"Sage : livraison {delivery['piece']}"]
            if delivery.get("date"):
                parts.append(f"du {delivery['date']}")
            if delivery.get("carrier"):
                parts.append(f"({delivery['carrier']})")
            text = " ".join(parts)
            if delivery.get("tracking_numbers"):
                text += f", suivi {' '.join(delivery['tracking_numbers'])}"
            if lines:
                text += f" : {lines}"
            texts.append(text)
    return texts


def _push_messages(client, order: ShopOrder, id_order: int, texts: list[str], employee_id: int | None) -> dict:
    """Post each message the order does not have yet, where the shop's order page shows it. The shop is read
    first: a message posted by a worker that died before it could record it is found there, not posted again."""
    fingerprints = {text: hashlib.sha256(f"{id_order}\n{text}".encode()).hexdigest()[:32] for text in texts}
    todo = [text for text in texts if fingerprints[text] not in load_memory(order).messages_sent]
    result: dict = {"posted": 0, "already_sent": len(texts) - len(todo), "where": "none"}
    if not todo:
        return result
    try:
        board = _MessageBoard.of(client, id_order, employee_id)
        present = board.texts()
    except ShopError as error:
        if not _refusal(error):
            raise
        # No thread can hold them (e.g. a customer without e-mail): given up, and remembered so.
        change_memory(order, note_messages_sent, [fingerprints[text] for text in todo])
        return {**result, "refused": [_refused(text, error) for text in todo]}
    result["where"] = board.where
    sent: list[str] = []  # fingerprints of the messages found in the shop, posted, or refused for good, now
    refused: list[dict] = []
    for text in todo:
        try:
            posted = _post_parts(board, board.shaped(text), present)
        except ShopError as error:
            if not _refusal(error):
                change_memory(order, note_messages_sent, sent)
                raise
            refused.append(_refused(text, error))  # the shop will refuse it again: not retried, never sent twice
        else:
            result["posted"] += posted
            result["already_sent"] += 0 if posted else 1
        sent.append(fingerprints[text])
    change_memory(order, note_messages_sent, sent)
    if refused:
        result["refused"] = refused
    return result


def _post_parts(board: _MessageBoard, parts: list[str], present: set[str]) -> int:
    """Post the parts of one message the shop does not show yet; how many were posted."""
    posted = 0
    for part in parts:
        if part in present:
            continue
        try:
            board.post(part)
        except ShopAmbiguous:
            if part not in board.texts():
                raise
        present.add(part)
        posted += 1
    return posted


def _refusal(error: ShopError) -> bool:
    """A refusal the same message would get again (400 validation, 404): not a set-up error, nor a retry."""
    return error.permanent and not isinstance(error, ShopSetupError)


def _refused(text: str, error: ShopError) -> dict:
    shown = text if len(text) <= 200 else text[:200] + "…"
    return {"text": shown, "error": str(error), "status": error.status, "code": error.code}


class _MessageBoard:
    """Where the order page shows private notes: 1.7.7+ (8, 9) list the customer_message rows of the order's
    customer_thread (recorded on 8.1.2: order-page-messages.md); 1.7.0-1.7.6 the legacy `message` table."""

    def __init__(self, client, id_order: int, employee_id: int | None, thread: int | None, version: tuple[int, ...]):
        self.client, self.id_order, self.employee_id, self.thread = client, id_order, employee_id, thread
        self.version = version
        self.where = f"customer_thread {thread}" if thread is not None else "messages"

    @classmethod
    def of(cls, client, id_order: int, employee_id: int | None) -> _MessageBoard:
        version = client.detect_version()
        if not version.order_page_reads_threads:
            return cls(client, id_order, employee_id, None, version.parts)
        return cls(client, id_order, employee_id, _order_thread(client, id_order), version.parts)

    def shaped(self, text: str) -> list[str]:
        """`text` as this shop's validator takes it (sync/prestashop/messages.py): cleaned, in parts if too long."""
        return shop_texts(text, self.version, legacy=self.thread is None)

    def texts(self) -> set[str]:
        rows = self.client.customer_messages(self.thread) if self.thread is not None else self.client.messages(self.id_order)
        return {(row.get("message") or "") for row in rows}

    def post(self, text: str) -> None:
        if self.thread is not None:
            self.client.add_customer_message(self.thread, text, id_employee=self.employee_id)
        else:
            self.client.add_message(self.id_order, text)


def _order_thread(client, id_order: int) -> int:
    """The order's customer thread, as the back office finds it (its customer, its order, its shop), or one made
    the way the back office makes it: one thread per order, reused by every later message."""
    details = client.order_details(id_order)
    if details is None:
        raise ShopError(f"order {id_order} does not exist in the shop", status=404)

    def find() -> int | None:
        for thread in client.customer_threads(id_order):
            if str(thread.get("id_customer")) == str(details["id_customer"]) and str(thread.get("id_shop", details.get("id_shop"))) == str(
                details.get("id_shop")
            ):
                return int(thread["id"])
        return None

    found = find()
    if found is not None:
        return found
    email = client.customer_email(int(details["id_customer"]))
    if not email:
        raise ShopError(f"order {id_order}: its customer {details['id_customer']} has no e-mail the thread can carry", status=404)
    fields = {
        "id_lang": details.get("id_lang") or 1,
        "id_contact": 0,
        "id_customer": details["id_customer"],
        "id_order": id_order,
        "id_shop": details.get("id_shop") or 1,
        "email": email,
        "token": "".join(secrets.choice(THREAD_TOKEN) for _ in range(12)),
        "status": "open",
    }
    try:
        return int(client.add_customer_thread(fields)["customer_thread"]["id"])
    except ShopAmbiguous:
        found = find()  # made after all? then it is the one
        if found is None:
            raise
        return found


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _qty(quantity) -> str:
    return str(int(quantity)) if float(quantity).is_integer() else str(quantity)
