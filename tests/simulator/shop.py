"""The simulated shop: its tables, its version, its clock. What PrestaShop's classes and back office do to each
resource is in resources/, one module per resource, mixed in here.

Where a behaviour comes from: "recorded" names an exchange of recordings/prestashop-8.1.2/transcripts.jsonl,
"date_upd.md row N" / "order-page-messages.md" the measurements beside it, "§" a section of the webservice
reference (prestashop-webservice.md). 1.7 and 9.x, which were not recorded, follow the reference.
"""

from __future__ import annotations

import random
import re
import threading
from datetime import datetime
from zoneinfo import ZoneInfo

from .resources import ShopResources
from .shopdata import CARRIERS, NATIVE_STATES


class Shop(ShopResources):
    """The shop's tables, readable and writable by tests: `orders`, `order_details` (order rows per order),
    `order_carriers`, `histories`, `messages` (legacy), `customer_threads`, `customer_messages`, `customers`,
    `employees`, `states`, `carriers`, `configuration`; what it would mail goes to `mails`."""

    def __init__(self, version: str = "8.1.5", languages=(1, 2), *, shop_name: str = "Sim", seed: int | None = None, timezone: str | None = None):
        self.version = version
        self.languages = tuple(int(lang) for lang in languages)
        self.shop_name = shop_name
        self.lock = threading.RLock()
        self.rng = random.Random(seed)
        # Dates are written in shop-local wall-clock time, PS_TIMEZONE (date_upd.md, last section). Without a
        # timezone the machine's local time is used; replace `clock` to control date_add / date_upd.
        self.clock = (lambda: datetime.now(ZoneInfo(timezone)).replace(tzinfo=None)) if timezone else datetime.now
        self.shops: dict[int, str] = {1: shop_name}
        self.states: dict[int, dict] = {}  # insertion order is the order the webservice lists them in
        self.configuration: dict[str, str] = {"PS_SHOP_NAME": shop_name, "PS_LANG_DEFAULT": "1"}
        if timezone:
            self.configuration["PS_TIMEZONE"] = timezone
        self.config_ids: dict[str, int] = {}
        for row in NATIVE_STATES:
            self._add_native_state(*row)
        self.carriers: dict[int, dict] = {}
        for carrier_id, reference, name, url, deleted, delay_en, delay_fr, cost_excl, cost_incl in CARRIERS:
            self.add_carrier(
                carrier_id, name, url, id_reference=reference, deleted=deleted, delay={1: delay_en, 2: delay_fr}, shipping_cost=(cost_excl, cost_incl)
            )
        self.customers: dict[int, dict] = {}
        self.employees: dict[int, dict] = {1: {"id": 1, "firstname": "Admin", "lastname": "Admin"}}
        self.orders: dict[int, dict] = {}
        self.order_details: dict[int, list[dict]] = {}
        self.order_carriers: dict[int, dict] = {}
        self.histories: list[dict] = []
        self.messages: list[dict] = []
        self.customer_threads: dict[int, dict] = {}
        self.customer_messages: dict[int, dict] = {}
        self.mails: list[dict] = []
        self.next_invoice = 1
        self.next_delivery = 1

    # --- version -------------------------------------------------------------------------------------------

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", self.version)[:4]) or (0,)

    @property
    def supports_patch(self) -> bool:
        """PATCH exists from 8.0.0 (§0)."""
        return self.version_tuple[0] >= 8

    def now(self) -> str:
        return self.clock().strftime("%Y-%m-%d %H:%M:%S")

    # --- multilingual values -------------------------------------------------------------------------------

    def _ml(self, value) -> dict[int, str]:
        """A multilingual value for every shop language: a dict per language id, or one string for all."""
        if isinstance(value, dict):
            default = value.get(1, next(iter(value.values()), ""))
            return {lang: str(value.get(lang, default)) for lang in self.languages}
        return {lang: str(value) for lang in self.languages}
