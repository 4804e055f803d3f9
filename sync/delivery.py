"""Push mode: deliver pending updates through the PrestaShop webservice, per order and in order.

For each update: the tracking number first (order_carriers), then the state (order_histories), then one
private back-office message per other change. Every write is preceded by a read of what the shop has, so a
delivery repeated after a crash or an ambiguous failure changes nothing twice: a state is never posted when
the order already has it, and never over a later state the merchant set by hand.

Several workers may deliver at once: on PostgreSQL each order is claimed with SELECT ... FOR UPDATE SKIP
LOCKED for the time of its delivery; on SQLite one worker delivers at a time (a lease in the store).
"""
from __future__ import annotations

import hashlib
import logging
import os
import random
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from models import ShopOrder, Update, utcnow

from .prestashop_client import (
    PrestaShopClient,
    ShopAmbiguous,
    ShopError,
    ShopSetupError,
    ShopUnavailable,
    tracking_value,
)
from .stages import shop_state_rank
from .store import acquire_lock, current_settings, release_lock

log = logging.getLogger(__name__)

LOCK_NAME = "delivery"
FIRST_RETRY = timedelta(seconds=30)
LAST_RETRY = timedelta(hours=1)


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    retry_later: int = 0
    orders: int = 0
    error: str | None = None  # set when the shop set-up stopped the whole delivery
    details: list[str] = field(default_factory=list)


class _Retry(Exception):
    """Stop this order for now; its updates stay pending."""


def _due(now: datetime):
    return (Update.delivery_status == "pending") & ((Update.next_attempt_at.is_(None)) | (Update.next_attempt_at <= now))


def _backoff(attempts: int) -> timedelta:
    base = min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), LAST_RETRY)
    return base * (0.75 + random.random() / 2)


class _Claims:
    """Orders being delivered by this process's workers (SQLite has no SKIP LOCKED; PostgreSQL also locks rows)."""

    def __init__(self, max_orders: int):
        self.lock = threading.Lock()
        self.ids: set[int] = set()
        self.left = max_orders

    def take(self, order_id: int) -> bool:
        with self.lock:
            if order_id in self.ids or self.left <= 0:
                return False
            self.ids.add(order_id)
            self.left -= 1
            return True

    def snapshot(self) -> list[int]:
        with self.lock:
            return list(self.ids)

    def exhausted(self) -> bool:
        with self.lock:
            return self.left <= 0


def deliver_pending(
    session: Session,
    client: PrestaShopClient,
    *,
    max_orders: int = 500,
    employee_id: int | None = None,
    worker: str | None = None,
    workers: int = 1,
) -> DeliveryReport:
    """Deliver the due updates of up to `max_orders` shop orders, `workers` orders at a time (each order's
    updates stay in order, by one worker). Never raises for a shop failure: a set-up error (key, permissions,
    webservice off) stops the pass and is reported in `error`."""
    report = DeliveryReport()
    worker = worker or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    settings, _ = current_settings(session)
    postgres = session.get_bind().dialect.name == "postgresql"
    if not postgres and not acquire_lock(session, LOCK_NAME, worker, timedelta(minutes=10)):
        report.details.append("another delivery is running")
        return report
    claims, merge_lock, stop = _Claims(max_orders), threading.Lock(), threading.Event()
    try:
        if workers <= 1:
            _work(session, client, settings, postgres, claims, report, merge_lock, stop, employee_id)
        else:
            engine = session.get_bind()

            def run() -> None:
                with Session(engine) as own:
                    _work(own, client.clone(), settings, postgres, claims, report, merge_lock, stop, employee_id)

            threads = [threading.Thread(target=run, name=f"deliver-{n}") for n in range(workers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        if not postgres:
            release_lock(session, LOCK_NAME, worker)
    return report


def _work(session, client, settings, postgres, claims: _Claims, report: DeliveryReport, merge_lock, stop, employee_id) -> None:
    while not stop.is_set() and not claims.exhausted():
        now = utcnow()
        conditions = [exists().where(Update.order_key == ShopOrder.order_key, _due(now))]
        taken = claims.snapshot()
        if taken:
            conditions.append(ShopOrder.id.not_in(taken))
        query = select(ShopOrder).where(*conditions).order_by(ShopOrder.id).limit(1)
        if postgres:
            query = query.with_for_update(skip_locked=True, of=ShopOrder)
        order = session.scalars(query).first()
        if order is None:
            session.rollback()
            return
        if not claims.take(order.id):
            session.rollback()
            continue  # another worker of this process took it meanwhile
        this_order = DeliveryReport()
        try:
            _deliver_order(session, client, order, settings, now, this_order, employee_id)
        except ShopSetupError as error:
            session.rollback()
            with merge_lock:
                report.error = str(error)
            stop.set()
            log.error("delivery stopped: %s", error)
            return
        session.commit()  # ends the claim on this order; only now do its counts stand
        with merge_lock:
            report.orders += 1
            report.delivered += this_order.delivered
            report.failed += this_order.failed
            report.retry_later += this_order.retry_later
            report.details += this_order.details


def _deliver_order(session, client, order: ShopOrder, settings: dict, now: datetime, report: DeliveryReport, employee_id) -> None:
    updates = list(session.scalars(select(Update).where(Update.order_key == order.order_key, Update.delivery_status == "pending").order_by(Update.id)))
    # Each update carries the order's whole snapshot: of several pending ones, only the latest state and the
    # latest tracking numbers matter (an old state delivered late would move the shop backwards).
    last_state = max((position for position, item in enumerate(updates) if item.state_id is not None), default=-1)
    last_tracking = max((position for position, item in enumerate(updates) if "tracking" in item.changes), default=-1)
    for position, item in enumerate(updates):
        item.delivery_attempts += 1
        try:
            item.delivery_answer = _deliver_update(
                client, order, item, settings, employee_id,
                send_state=position == last_state, send_tracking=position == last_tracking,
            )
        except ShopSetupError:
            raise
        except (ShopUnavailable, ShopAmbiguous, _Retry) as error:
            # Later updates of this order wait too: they must not overtake this one.
            retry_at = now + (timedelta(seconds=error.retry_after) if getattr(error, "retry_after", None) else _backoff(item.delivery_attempts))
            for waiting in updates[position:]:
                waiting.next_attempt_at = retry_at
            item.delivery_error = str(error)
            report.retry_later += 1
            report.details.append(f"order {order.order_key}: update {item.id} retried later: {error}")
            return
        except ShopError as error:
            item.delivery_status, item.delivery_error = "failed", str(error)
            item.delivery_answer = {"error": str(error), "status": error.status, "code": error.code, "answer": error.answer}
            report.failed += 1
            report.details.append(f"order {order.order_key}: update {item.id} failed: {error}")
            continue
        item.delivery_status, item.delivery_error, item.delivered_at, item.next_attempt_at = "delivered", None, utcnow(), None
        report.delivered += 1


def _resolve(client: PrestaShopClient, order: ShopOrder, item: Update) -> dict:
    """The shop's order for this update: by id_order (DO_NoWeb holds it), else by reference."""
    if order.shop_id_order or item.id_order:
        id_order = order.shop_id_order or item.id_order
        found = client.order(id_order)
        if found is None:
            raise ShopError(f"order {id_order} does not exist in the shop", status=404)
    else:
        matches = client.orders_by_reference(order.order_key)
        if not matches:
            raise ShopError(f"no order with reference {order.order_key!r} in the shop", status=404)
        if len(matches) > 1:
            ids = ", ".join(str(m["id"]) for m in matches)
            raise ShopError(f"reference {order.order_key!r} matches several shop orders ({ids}): one cart split in several orders; link by id_order instead", status=409)
        found = matches[0]
    order.shop_id_order = int(found["id"])
    return found


def _deliver_update(client: PrestaShopClient, order: ShopOrder, item: Update, settings: dict, employee_id, *, send_state: bool, send_tracking: bool) -> dict:
    texts = _messages(item)
    if not (item.state_id is not None or ("tracking" in item.changes and item.tracking_numbers) or texts):
        return {"action": "nothing for the shop", "changes": item.changes}  # e.g. a stage with no state mapped
    shop_order = _resolve(client, order, item)
    id_order = int(shop_order["id"])
    answer: dict = {"id_order": id_order}
    notify = bool(settings["notify_customer"])
    decision = None
    if item.state_id is not None and send_state:
        decision = _state_decision(client, order, shop_order, item.state_id, settings, employee_id)
    if "tracking" in item.changes and item.tracking_numbers:
        if send_tracking:
            # The in-transit mail only when no state mail follows (that one carries the tracking link).
            state_mail = decision is not None and decision["action"] == "post" and notify
            answer["tracking"] = _deliver_tracking(client, order, id_order, item.tracking_numbers, send_email=notify and not state_mail)
        else:
            answer["tracking"] = {"action": "superseded by a later update"}
    if item.state_id is not None:
        if decision is None:
            answer["state"] = {"action": "superseded by a later update", "state_id": item.state_id}
        elif decision["action"] == "post":
            answer["state"] = _post_state(client, order, shop_order, item.state_id, notify, employee_id)
        else:
            answer["state"] = decision
    if texts:
        answer["messages"] = _deliver_messages(client, order, id_order, texts)
    return answer


def _deliver_tracking(client, order: ShopOrder, id_order: int, numbers: list[str], *, send_email: bool) -> dict:
    value, left_out = tracking_value(numbers)
    result = {"value": value, "left_out": left_out}
    if not value:
        result["action"] = "none_fits"
        return result
    carriers = client.order_carriers(id_order)
    if not carriers:
        raise ShopError(f"order {id_order} has no carrier row (order_carriers) to hold a tracking number", status=404)
    row = carriers[0]
    if (row.get("tracking_number") or "") == value:
        order.shop_tracking = value
        return {**result, "action": "unchanged"}
    try:
        client.set_tracking(row, value, send_email=send_email)
    except ShopAmbiguous:
        # Maybe written: look before trying again.
        again = client.order_carriers(id_order)
        if not again or (again[0].get("tracking_number") or "") != value:
            raise
    order.shop_tracking = value
    return {**result, "action": "written", "order_carrier": int(row["id"]), "mail": send_email}


def _state_decision(client, order: ShopOrder, shop_order: dict, state_id: int, settings: dict, employee_id) -> dict:
    """Whether to post `state_id`: not when the order has it, is further on, or a merchant set a state by hand."""
    current = _int(shop_order.get("current_state"))
    if current == state_id:
        order.shop_state_pushed = state_id
        return {"action": "already_in_state", "state_id": state_id}
    mine = shop_state_rank(state_id, settings, order.stage)
    theirs = shop_state_rank(current, settings, order.stage) if current is not None else None
    if mine is not None and theirs is not None and theirs >= mine:
        return {"action": "shop_already_further", "state_id": state_id, "shop_state_id": current}
    if current is not None and current != order.shop_state_pushed and theirs is None:
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
    order.shop_state_pushed = state_id
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


def _deliver_messages(client, order: ShopOrder, id_order: int, texts: list[str]) -> dict:
    """Post each message the order does not have yet. The shop is read first: a message posted by a worker
    that died before it could record it is found there, not posted again."""
    sent = list(order.messages_sent or [])
    fingerprints = {text: hashlib.sha256(f"{id_order}\n{text}".encode()).hexdigest()[:32] for text in texts}
    todo = [text for text in texts if fingerprints[text] not in sent]
    posted, skipped = 0, len(texts) - len(todo)
    if todo:
        present = {(message.get("message") or "") for message in client.messages(id_order)}
        for text in todo:
            if text in present:
                skipped += 1
            else:
                try:
                    client.add_message(id_order, text)
                except ShopAmbiguous:
                    if not any((message.get("message") or "") == text for message in client.messages(id_order)):
                        order.messages_sent = sent
                        raise
                posted += 1
            sent.append(fingerprints[text])
    order.messages_sent = sent
    return {"posted": posted, "already_sent": skipped}


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _qty(quantity) -> str:
    return str(int(quantity)) if float(quantity).is_integer() else str(quantity)
