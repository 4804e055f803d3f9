"""Orders (class Order). What a real 8.1.2 shop does with them:

* GET: `shipping_number` is virtual, read from the order's first order_carrier row (Order::getWsShippingNumber,
  §3.1); the product rows come as the `order_rows` association (recorded: orders_full_json).
* PATCH /api/orders/{id}: Order::update() stamps date_upd (recorded: order_patch_shipping_number, date_upd.md
  row 8). A `shipping_number` in the body is written to the first order_carrier row, no mail (§3.1, same
  exchange); a `current_state` goes through setWsCurrentState: the state change of order_histories.py, its mail
  always, nothing when the order already has that state from 1.7.8 on (§5.3).

Simulator choices: orders are restricted to the shop context (`id_shop`) in lists and details (§11 leaves it
open); `add_order` logs no mail (the order confirmation is outside the sync); POST and PUT are not simulated.
"""

from __future__ import annotations

import string

from ..php import php_int
from ..protocol import Ctx, PhpFatal, WsError
from ..shopdata import RESOURCES
from .registry import Hooks

ZERO_DATE = "0000-00-00 00:00:00"


class Orders:
    def add_order(
        self,
        id_order: int | None = None,
        reference: str | None = None,
        current_state: int = 2,
        id_carrier: int = 27,
        id_customer: int = 1,
        tracking_number: str = "",
        id_shop: int = 1,
        *,
        id_lang: int = 1,
        date_add: str | None = None,
        carriers: tuple[int, ...] = (),
        rows: list[dict] | None = None,
    ) -> dict:
        """An order as validateOrder leaves it: one order_carriers row (plus one per id in `carriers`, legacy
        multi-shipping, §3.3), one initial history row (id_employee 0), its product rows.

        Simulator choice: no mail is logged for the initial state (the order confirmation is not part of
        the sync), so `mails` only holds what the middleware (or the back office methods) caused."""
        with self.lock:
            if id_order is None:
                id_order = max(self.orders, default=0) + 1
            if id_order in self.orders:
                raise ValueError(f"order {id_order} already exists")
            if current_state not in self.states:
                raise ValueError(f"unknown order state {current_state}")
            if id_customer not in self.customers:
                self.add_customer(id_customer, id_lang=id_lang, id_shop=id_shop)
            state = self.states[current_state]
            now = date_add or self.now()
            order = self._new_order(id_order, reference, current_state, id_carrier, id_customer, id_shop, id_lang, now)
            self.orders[id_order] = order
            self.order_details[id_order] = rows if rows is not None else [self._product_row(id_order)]
            self.shops.setdefault(id_shop, f"Shop {id_shop}")
            invoice = 0
            if state["invoice"]:
                invoice = self._new_invoice(order, now)
            if state["delivery"]:
                order["delivery_number"], order["delivery_date"] = self.next_delivery, now
                self.next_delivery += 1
            for position, carrier_id in enumerate((id_carrier, *carriers)):
                self.add_order_carrier(
                    id_order,
                    carrier_id,
                    tracking_number=tracking_number if not position else "",
                    id_order_invoice=invoice if not position else 0,
                    date_add=now,
                )
            self.histories.append(
                {"id": self.next_history_id(), "id_order": id_order, "id_order_state": current_state, "id_employee": 0, "date_add": now}
            )
            return order

    def _new_order(
        self, id_order: int, reference: str | None, current_state: int, id_carrier: int, id_customer: int, id_shop: int, id_lang: int, now: str
    ) -> dict:
        """The orders row validateOrder writes, before any invoice or delivery number."""
        return {
            "id": id_order,
            "id_address_delivery": 1,
            "id_address_invoice": 1,
            "id_cart": id_order,
            "id_currency": 1,
            "id_lang": id_lang,
            "id_customer": id_customer,
            "id_carrier": id_carrier,
            "current_state": current_state,
            "module": "ps_wirepayment",
            "invoice_number": 0,
            "invoice_date": ZERO_DATE,
            "delivery_number": 0,
            "delivery_date": ZERO_DATE,
            "valid": int(self.states[current_state]["logable"]),
            "date_add": now,
            "date_upd": now,
            "note": "",
            "id_shop_group": 1,
            "id_shop": id_shop,
            "secure_key": self.customers[id_customer]["secure_key"],
            "payment": "Bank wire",
            "recyclable": 0,
            "gift": 0,
            "gift_message": "",
            "mobile_theme": 0,
            "total_discounts": "0.000000",
            "total_discounts_tax_incl": "0.000000",
            "total_discounts_tax_excl": "0.000000",
            "total_paid": "42.900000",
            "total_paid_tax_incl": "42.900000",
            "total_paid_tax_excl": "35.750000",
            "total_paid_real": "0.000000",
            "total_products": "29.000000",
            "total_products_wt": "35.000000",
            "total_shipping": "7.900000",
            "total_shipping_tax_incl": "7.900000",
            "total_shipping_tax_excl": "6.580000",
            "carrier_tax_rate": "20.000",
            "total_wrapping": "0.000000",
            "total_wrapping_tax_incl": "0.000000",
            "total_wrapping_tax_excl": "0.000000",
            "round_mode": 2,
            "round_type": 2,
            "conversion_rate": "1.000000",
            "reference": reference or self._reference(),
        }

    def _reference(self) -> str:
        return "".join(self.rng.choice(string.ascii_uppercase) for _ in range(9))

    def _product_row(self, id_order: int) -> dict:
        detail_id = max((row["id"] for rows in self.order_details.values() for row in rows), default=0) + 1
        return {
            "id": detail_id,
            "product_id": 1,
            "product_attribute_id": 0,
            "product_quantity": 1,
            "product_name": "Simulated product",
            "product_reference": "SIM-1",
            "product_ean13": "",
            "product_isbn": "",
            "product_upc": "",
            "product_price": "29.000000",
            "id_customization": 0,
            "unit_price_tax_incl": "35.000000",
            "unit_price_tax_excl": "29.000000",
        }

    def _new_invoice(self, order: dict, now: str) -> int:
        """Order::setInvoice: the next invoice number and its date (the first invoice state, or validateOrder)."""
        invoice = self.next_invoice
        self.next_invoice += 1
        order["invoice_number"], order["invoice_date"] = invoice, now
        return invoice

    # --- the virtual shipping_number (§3.1) ----------------------------------------------------------------

    def shipping_number(self, order: dict) -> str:
        """Order::getWsShippingNumber (§3.1): the first order_carrier row, else the legacy column."""
        rows = self.carrier_rows(order["id"])
        return rows[0]["tracking_number"] if rows else order.get("shipping_number", "")

    def set_shipping_number(self, order: dict, number: str) -> None:
        """Order::setWsShippingNumber (§3.1): a plain update of the first order_carrier row, no mail."""
        rows = self.carrier_rows(order["id"])
        if rows:
            rows[0]["tracking_number"] = number[:64]  # varchar(64)
        else:
            order["shipping_number"] = number

    # --- webservice writes ---------------------------------------------------------------------------------

    def _set_ws_shipping_number(self, order: dict | None, text: str) -> None:
        """`<shipping_number>` in a written order (recorded: order_patch_shipping_number)."""
        self.set_shipping_number(_loaded(order), text)

    def _set_ws_current_state(self, order: dict | None, text: str) -> None:
        """Order::setWsCurrentState (§5.3): setCurrentState, state mail always, same-state guard from 1.7.8."""
        order = _loaded(order)
        state_id = php_int(text)
        if state_id not in self.states:
            raise PhpFatal()
        if self.version_tuple >= (1, 7, 8) and order["current_state"] == state_id:
            return
        self.change_state(order, state_id, id_employee=0, send_mail=True, source="webservice")

    def _save_order(self, ctx: Ctx, existing: dict, obj: dict) -> dict:
        """PATCH /api/orders/{id}: Order::update() stamps date_upd (recorded: order_patch_shipping_number,
        date_upd.md row 8)."""
        for name, value in self._row(RESOURCES["orders"], obj).items():
            existing[name] = value
        existing["date_upd"] = obj["date_upd"] = self.now()
        return existing


def _loaded(order: dict | None) -> dict:
    if order is None:
        raise WsError(501, 124, "Simulator: creating an order is not simulated")
    return order


HOOKS = {
    "orders": Hooks(
        rows=lambda shop: shop.orders.values(),
        save=Orders._save_order,
        getters={"shipping_number": Orders.shipping_number},
        setters={"shipping_number": Orders._set_ws_shipping_number, "current_state": Orders._set_ws_current_state},
        associations={"order_rows": lambda shop, order: shop.order_details.get(order["id"], [])},
        in_context_shop=True,
    ),
}
