"""The shop poll: tracking numbers typed in the shop's back office, written back onto the GesCom documents."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from models import ShopCursor, ShopOrder, utcnow
from sync.core.memory import note_shop_tracking_seen, tracking_numbers
from sync.core.stages import split_tracking
from sync.gescom.adapter import GesCom, GesComError
from sync.prestashop.client import PrestaShopClient, ShopError
from sync.prestashop.connections import ShopConnections
from sync.services.unit_of_work import UnitOfWork
from sync.services.writeback import FieldAlreadyFilled, InvalidTrackingNumber, OnlyInvoicesLeft, UnknownOrder, WriteBackError, write_tracking
from sync.store.memory import change_memory, load_memory
from sync.store.settings import load_settings
from sync.store.shops import list_shops

log = logging.getLogger(__name__)

POLL_CURSOR = "order_carriers_poll"  # the last shop order (our id) whose carrier rows were read; ":code" for other shops
POLL_LIMIT = 1000  # shop orders whose carrier rows are read per poll (10 requests of 100)
POLL_RECENT = timedelta(days=30)  # closed orders still read this long after their last update (a late number)
CARRIER_BATCH = 100  # order ids per order_carriers request
# Refusals that trying the same number again cannot change (the others are retried at the next poll).
FINAL_REFUSALS = (FieldAlreadyFilled, OnlyInvoicesLeft, InvalidTrackingNumber, UnknownOrder)


@dataclass
class PollReport:
    orders_seen: int = 0
    written: int = 0
    unchanged: int = 0
    warnings: list[str] = field(default_factory=list)


def poll_shop_tracking(
    uow: UnitOfWork, gescom: GesCom, client: PrestaShopClient | ShopConnections, *, limit: int = POLL_LIMIT, batch: int = CARRIER_BATCH
) -> PollReport:
    """Tracking numbers typed in the shop, written back to GesCom (never echoed back).

    `client`: the default shop's client (as before shops), or the ShopConnections: then each shop with a connection
    and its own `tracking.import_from_shop` on is polled through its own client, and a shop that fails (down, key
    refused) is a warning in the report, the others polled all the same.

    Read from the shop orders' carrier rows, not from `orders.date_upd`: on 8.x/9.x the back office's "Edit
    shipping details" saves the order_carrier row only (recorded on 8.1.2, date_upd.md rows 5-9), so no date
    tells that a number was typed. Each poll reads the rows of up to `limit` followed orders of a shop that can
    still receive a number (known in the shop; open, or closed less than POLL_RECENT ago; never cancelled), `batch`
    per request (`filter[id_order]=[a|b|…]`), going round them from where the last poll stopped: every such order is
    read once every ceil(orders / limit) polls. No date filter, so neither clock nor time zone can make it miss one.
    Each number written to GesCom is committed through `uow` with what the store remembers of it, order by order.
    """
    session = uow.session
    report = PollReport()
    rows = list_shops(session)
    if not isinstance(client, ShopConnections):
        default = next(row for row in rows if row.is_default)
        _poll_shop(uow, gescom, default, client, limit, batch, report)
        return report
    for row in rows:
        shop_client = client.client_for(row, rows)
        if shop_client is None:
            continue
        try:
            _poll_shop(uow, gescom, row, shop_client, limit, batch, report)
        except ShopError as error:
            uow.rollback()
            log.warning("shop %s: tracking numbers not read this time: %s", row.code, error)
            report.warnings.append(f"shop {row.code}: tracking numbers not read from the shop this time: {error}")
    return report


def _poll_shop(uow: UnitOfWork, gescom: GesCom, shop, client: PrestaShopClient, limit: int, batch: int, report: PollReport) -> None:
    """One shop's poll, from where its last one stopped (a cursor per shop)."""
    session = uow.session
    if not load_settings(session, shop.id).tracking.import_from_shop:
        return
    name = POLL_CURSOR if shop.is_default else f"{POLL_CURSOR}:{shop.code}"
    cursor = session.get(ShopCursor, name)
    after = int(cursor.value) if cursor and cursor.value and cursor.value.isdigit() else 0
    orders = _pollable(session, shop.id, after, limit)
    if len(orders) < limit and after:
        orders += [order for order in _pollable(session, shop.id, 0, limit - len(orders)) if order.id <= after]  # round again
    by_shop_id = {(order.shop_id_order or order.id_order): order for order in orders}
    ids = list(by_shop_id)
    for start in range(0, len(ids), batch):
        rows: dict[int, list[dict]] = {}
        for row in client.order_carriers_of(ids[start : start + batch]):
            rows.setdefault(int(row["id_order"]), []).append(row)
        for id_order, carrier_rows in rows.items():
            order = by_shop_id.get(id_order)
            if order is None:
                continue
            report.orders_seen += 1
            for row in sorted(carrier_rows, key=lambda r: int(r["id"])):
                _import_one(uow, gescom, order, (row.get("tracking_number") or "").strip(), report)
    last = orders[-1].id if orders else 0
    if cursor is None:
        session.add(ShopCursor(name=name, value=str(last), updated_at=utcnow()))
    else:
        cursor.value, cursor.updated_at = str(last), utcnow()
    uow.commit()


def _pollable(session: Session, shop_id: int, after: int, limit: int) -> list[ShopOrder]:
    """A shop's followed shop orders that can still receive a tracking number, by our id, after `after`."""
    recent = utcnow() - POLL_RECENT
    return list(
        session.scalars(
            select(ShopOrder)
            .where(
                ShopOrder.shop_id == shop_id,
                ShopOrder.id > after,
                or_(ShopOrder.shop_id_order.is_not(None), ShopOrder.id_order.is_not(None)),
                or_(ShopOrder.stage.is_(None), ShopOrder.stage != "cancelled"),
                or_(ShopOrder.is_open.is_(True), ShopOrder.updated_at >= recent),
            )
            .order_by(ShopOrder.id)
            .limit(limit)
        )
    )


def _import_one(uow: UnitOfWork, gescom: GesCom, order: ShopOrder, shop_value: str, report: PollReport) -> None:
    """One carrier row's number: written to GesCom when it is news, once. What was acted on is remembered
    (`shop_tracking_seen`), so a number GesCom refuses for good (its field holds another one, only invoices are
    left) is said once, not every poll; a refusal that may pass later (document busy, order unreadable, settings
    to fix, GesCom down) is tried again next poll."""
    memory = load_memory(order)
    if not shop_value or shop_value in (memory.shop_tracking or "", memory.shop_tracking_seen or ""):
        report.unchanged += 1  # nothing typed, what we wrote ourselves, or a value already acted on
        return
    known = set(tracking_numbers(memory.documents))
    if shop_value in known or set(shop_value.split()) <= known:
        report.unchanged += 1  # GesCom's own numbers (space-joined when we wrote several)
        change_memory(order, note_shop_tracking_seen, shop_value)
        return
    try:
        result = write_tracking(uow.session, gescom, order.order_key, shop_value, source="shop_poll")
        report.written += int(result.changed)
        report.unchanged += int(not result.changed)
    except FINAL_REFUSALS as error:  # about this number or this order's documents: saying it once is enough
        uow.rollback()
        report.warnings.append(f"order {order.order_key}: tracking {shop_value!r} from the shop not written to GesCom: {error}")
    except (WriteBackError, GesComError) as error:  # busy, unreadable, settings to fix, GesCom down: not lost
        uow.rollback()
        report.warnings.append(
            f"order {order.order_key}: tracking {shop_value!r} from the shop not written to GesCom yet (retried next poll): {error}"
        )
        return
    else:
        uow.commit()  # GesCom holds the number now: the store remembers it at once, whatever the rest of the poll does
    change_memory(order, note_shop_tracking_seen, shop_value)


__all__ = ["poll_shop_tracking", "PollReport", "split_tracking"]
