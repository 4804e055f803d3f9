"""The shop's order states: PrestaShop's native list (see the PrestaShop reference, §6), and the configured shop's own
list read through its client and cached."""

from __future__ import annotations

import logging
import threading
import time

from sync.prestashop.client import PrestaShopClient, ShopError

log = logging.getLogger(__name__)

# Native order states of a fresh 1.7.7+ / 8.x / 9.x install. Shops upgraded from 1.6 or with payment
# modules differ: always prefer the shop's own list when a shop is configured.
# (id, PS_OS_* keys, English, French, template, invoice, send_email, logable, delivery, shipped, paid, pdf_invoice)
_NATIVE = [
    (1, ["PS_OS_CHEQUE"], "Awaiting check payment", "En attente du paiement par chèque", "cheque", 0, 1, 0, 0, 0, 0, 0),
    (2, ["PS_OS_PAYMENT"], "Payment accepted", "Paiement accepté", "payment", 1, 1, 1, 0, 0, 1, 1),
    (3, ["PS_OS_PREPARATION"], "Processing in progress", "En cours de préparation", "preparation", 1, 1, 1, 1, 0, 1, 0),
    (4, ["PS_OS_SHIPPING"], "Shipped", "Expédié", "shipped", 1, 1, 1, 1, 1, 1, 0),
    (5, ["PS_OS_DELIVERED"], "Delivered", "Livré", None, 1, 0, 1, 1, 1, 1, 0),
    (6, ["PS_OS_CANCELED"], "Canceled", "Annulé", "order_canceled", 0, 1, 0, 0, 0, 0, 0),
    (7, ["PS_OS_REFUND"], "Refunded", "Remboursé", "refund", 1, 1, 0, 0, 0, 0, 0),
    (8, ["PS_OS_ERROR"], "Payment error", "Erreur de paiement", "payment_error", 0, 1, 0, 0, 0, 0, 0),
    (
        9,
        ["PS_OS_OUTOFSTOCK", "PS_OS_OUTOFSTOCK_PAID"],
        "On backorder (paid)",
        "En attente de réapprovisionnement (payé)",
        "outofstock",
        1,
        1,
        0,
        0,
        0,
        1,
        0,
    ),
    (10, ["PS_OS_BANKWIRE"], "Awaiting bank wire payment", "En attente de virement bancaire", "bankwire", 0, 1, 0, 0, 0, 0, 0),
    (11, ["PS_OS_WS_PAYMENT"], "Remote payment accepted", "Paiement à distance accepté", "payment", 1, 1, 1, 0, 0, 1, 0),
    (12, ["PS_OS_OUTOFSTOCK_UNPAID"], "On backorder (not paid)", "En attente de réapprovisionnement (non payé)", "outofstock", 0, 1, 0, 0, 0, 0, 0),
    (
        13,
        ["PS_OS_COD_VALIDATION"],
        "Awaiting Cash On Delivery validation",
        "En attente de paiement à la livraison",
        "cashondelivery",
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ),
]
FLAGS = ("invoice", "send_email", "logable", "delivery", "shipped", "paid", "pdf_invoice")

NATIVE_ORDER_STATES: list[dict] = [
    {
        "id": state_id,
        "config_keys": keys,
        "name": {"en": english, "fr": french},
        "template": template,
        **{flag: bool(value) for flag, value in zip(FLAGS, values, strict=True)},
    }
    for state_id, keys, english, french, template, *values in _NATIVE
]


def known_state_ids(states: list[dict] | None = None) -> set[int]:
    return {state["id"] for state in (states if states is not None else NATIVE_ORDER_STATES)}


def shop_states(shop, connections) -> list[dict]:
    """The shop's order states: its own when it is connected (`connections`, the app's ShopConnections) and
    answers, else PrestaShop's native ones."""
    reader = connections.states_for(shop) if connections is not None and shop is not None else None
    states = reader() if reader is not None else None
    return states or NATIVE_ORDER_STATES


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

    KEYS = [
        "PS_OS_CHEQUE",
        "PS_OS_PAYMENT",
        "PS_OS_PREPARATION",
        "PS_OS_SHIPPING",
        "PS_OS_DELIVERED",
        "PS_OS_CANCELED",
        "PS_OS_REFUND",
        "PS_OS_ERROR",
        "PS_OS_OUTOFSTOCK",
        "PS_OS_BANKWIRE",
        "PS_OS_WS_PAYMENT",
        "PS_OS_OUTOFSTOCK_UNPAID",
        "PS_OS_COD_VALIDATION",
    ]

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
