"""Carriers (class Carrier), read-only over the webservice (§3.5). What a real shop does with them:

* a carrier's tracking URL, `@` replaced by the tracking number, is the `{followup}` of the in_transit and state
  mails; the URL of `orders.id_carrier` is used, not the order_carrier row's (§3.3). On the recorded 8.1.2 shop
  carrier 2 "My carrier" has none (README), so no in_transit mail went (order_carrier_put_full_sendemail).
* editing a carrier in the back office creates a new id and flags the old one deleted; id_reference stays (§3.5).
* the shipping cost is not a webservice field: the back office charges it when the merchant moves an order to the
  carrier (date_upd.md row 10, order_carriers.py).
"""

from __future__ import annotations

from ..php import mysql_decimal
from .registry import Hooks


class Carriers:
    def add_carrier(
        self,
        id: int,
        name: str,
        url: str = "",
        *,
        id_reference: int | None = None,
        active=1,
        deleted=0,
        delay="",
        shipping_cost=("0.000000", "0.000000"),
    ) -> dict:
        """A carrier; `shipping_cost` (tax excl, tax incl) is what the BO charges when an order moves to it."""
        with self.lock:
            carrier = {
                "id": id,
                "deleted": int(deleted),
                "is_module": 0,
                "id_tax_rules_group": 1,
                "id_reference": id_reference if id_reference is not None else id,
                "name": name,
                "active": int(active),
                "is_free": int(not float(shipping_cost[1])),
                "url": url,
                "shipping_handling": 1,
                "shipping_external": 0,
                "range_behavior": 0,
                "shipping_method": 2,
                "max_width": 0,
                "max_height": 0,
                "max_depth": 0,
                "max_weight": "0.000000",
                "grade": 0,
                "external_module_name": "",
                "need_range": 0,
                "position": len(self.carriers),
                "delay": self._ml(delay),
                "shipping_cost_tax_excl": mysql_decimal(shipping_cost[0]),
                "shipping_cost_tax_incl": mysql_decimal(shipping_cost[1]),
            }
            self.carriers[id] = carrier
            return carrier

    def _followup(self, order: dict, tracking: str) -> str:
        """The `{followup}` of a mail: the tracking URL of the order's carrier with `@` replaced (§3.3, §3.5)."""
        carrier = self.carriers.get(order["id_carrier"])  # orders.id_carrier, not order_carrier's (§3.3)
        url = carrier["url"] if carrier else ""
        return url.replace("@", tracking) if url and tracking else ""


HOOKS = {"carriers": Hooks(rows=lambda shop: shop.carriers.values())}
