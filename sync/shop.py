"""The configured shop: its client, its order states (cached), and the poll of tracking numbers typed there."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from models import ShopCursor, ShopOrder, utcnow

from .gescom import GesCom, GesComError
from .prestashop import FLAGS
from .prestashop_client import PrestaShopClient, ShopError
from .stages import split_tracking, tracking_numbers
from .store import current_settings
from .writeback import WriteBackError, write_tracking

log = logging.getLogger(__name__)

POLL_CURSOR = "orders_date_upd"
POLL_OVERLAP = timedelta(seconds=10)
POLL_FIRST_LOOKBACK = timedelta(days=1)
CARRIER_BATCH = 100  # order ids per order_carriers request


def shop_client(config) -> PrestaShopClient | None:
    """A client when PRESTASHOP_URL and PRESTASHOP_API_KEY are set, else None (pull mode only)."""
    url, key = config.get("PRESTASHOP_URL"), config.get("PRESTASHOP_API_KEY")
    if not url or not key:
        return None
    timeout = float(config.get("PRESTASHOP_TIMEOUT") or 30)
    return PrestaShopClient(url, key, timeout=(min(5.0, timeout), timeout))


def _name(value, lang_ids: dict[str, str]) -> dict:
    """A multilingual name (a string, or [{"id", "value"}]) as {"en": ..., "fr": ...} when the ids are known."""
    if isinstance(value, str):
        return {"default": value}
    names = {}
    for entry in value or []:
        names[lang_ids.get(str(entry.get("id")), str(entry.get("id")))] = entry.get("value")
    return names


class ShopStates:
    """The shop's order states (not deleted) and its PS_OS_* ids, read at most every `ttl` seconds."""

    KEYS = ["PS_OS_CHEQUE", "PS_OS_PAYMENT", "PS_OS_PREPARATION", "PS_OS_SHIPPING", "PS_OS_DELIVERED", "PS_OS_CANCELED",
            "PS_OS_REFUND", "PS_OS_ERROR", "PS_OS_OUTOFSTOCK", "PS_OS_BANKWIRE", "PS_OS_WS_PAYMENT", "PS_OS_OUTOFSTOCK_UNPAID",
            "PS_OS_COD_VALIDATION"]

    def __init__(self, client: PrestaShopClient, ttl: float = 600, languages: dict[str, str] | None = None):
        self.client, self.ttl = client, ttl
        self.languages = languages or {"1": "en", "2": "fr"}
        self._lock = threading.Lock()
        self._value: list[dict] | None = None
        self._read_at = 0.0

    def __call__(self) -> list[dict] | None:
        """The states, or None when the shop cannot be read (callers fall back to the native list)."""
        with self._lock:
            if self._value is not None and time.monotonic() - self._read_at < self.ttl:
                return self._value
            try:
                rows = self.client.order_states()
                keys = self.client.configurations(self.KEYS)
            except ShopError as error:
                log.warning("shop order states unavailable: %s", error)
                return self._value
            by_id: dict[int, list[str]] = {}
            for name, value in keys.items():
                if value and str(value).isdigit():
                    by_id.setdefault(int(value), []).append(name)
            self._value = [
                {
                    "id": int(row["id"]),
                    "config_keys": sorted(by_id.get(int(row["id"]), [])),
                    "name": _name(row.get("name"), self.languages),
                    "template": (_name(row.get("template"), self.languages) or {}).get("en") if row.get("template") else None,
                    **{flag: str(row.get(flag, "0")) == "1" for flag in FLAGS},
                }
                for row in rows
            ]
            self._read_at = time.monotonic()
            return self._value


@dataclass
class PollReport:
    orders_seen: int = 0
    written: int = 0
    unchanged: int = 0
    warnings: list[str] = field(default_factory=list)


def poll_shop_tracking(session: Session, gescom: GesCom, client: PrestaShopClient, *, page: int = 500) -> PollReport:
    """Tracking numbers typed in the shop since the last poll, written back to GesCom (never echoed back)."""
    report = PollReport()
    settings, _ = current_settings(session)
    if not settings["tracking"]["import_from_shop"]:
        return report
    cursor = session.get(ShopCursor, POLL_CURSOR)
    since = cursor.value if cursor and cursor.value else (datetime.now() - POLL_FIRST_LOOKBACK).strftime("%Y-%m-%d %H:%M:%S")
    newest = since
    offset = 0
    while True:
        rows = client.orders_changed_since(since, limit=page, offset=offset)
        if not rows:
            break
        report.orders_seen += len(rows)
        newest = max([newest] + [str(row.get("date_upd") or "") for row in rows])
        ids = [int(row["id"]) for row in rows]
        followed = {
            (order.shop_id_order or order.id_order): order
            for order in session.scalars(select(ShopOrder).where(or_(ShopOrder.shop_id_order.in_(ids), ShopOrder.id_order.in_(ids))))
        }
        for start in range(0, len(ids), CARRIER_BATCH):
            batch = [i for i in ids[start:start + CARRIER_BATCH] if i in followed]
            first_row: dict[int, dict] = {}
            for row in sorted(client.order_carriers_of(batch), key=lambda r: int(r["id"])):
                first_row.setdefault(int(row["id_order"]), row)
            for id_order, row in first_row.items():
                _import_one(session, gescom, followed[id_order], (row.get("tracking_number") or "").strip(), report)
        if len(rows) < page:
            break
        offset += page
    value = _minus(newest, POLL_OVERLAP) if newest != since else since
    if cursor is None:
        session.add(ShopCursor(name=POLL_CURSOR, value=value, updated_at=utcnow()))
    else:
        cursor.value, cursor.updated_at = value, utcnow()
    session.commit()
    return report


def _import_one(session: Session, gescom: GesCom, order: ShopOrder, shop_value: str, report: PollReport) -> None:
    if not shop_value or shop_value == (order.shop_tracking or ""):
        report.unchanged += 1  # nothing typed, or what we wrote ourselves
        return
    known = set(tracking_numbers(order.memory or {}))
    candidates = [shop_value] if shop_value not in known else []
    if not candidates:
        report.unchanged += 1
        return
    for number in candidates:
        try:
            result = write_tracking(session, gescom, order.order_key, number, source="shop_poll")
            report.written += int(result.changed)
            report.unchanged += int(not result.changed)
        except (WriteBackError, GesComError) as error:
            session.rollback()
            report.warnings.append(f"order {order.order_key}: tracking {number!r} from the shop not written to GesCom: {error}")


def _minus(stamp: str, delta: timedelta) -> str:
    try:
        return (datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S") - delta).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return stamp


__all__ = ["shop_client", "ShopStates", "poll_shop_tracking", "PollReport", "split_tracking"]
