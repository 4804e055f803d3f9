"""The simulated shop's data and what PrestaShop's classes do to it: orders and their carrier rows, state changes
(OrderHistory), mails, customer threads and messages, and what a merchant does in the back office.

Where a behaviour comes from: "recorded" names an exchange of recordings/prestashop-8.1.2/transcripts.jsonl,
"date_upd.md row N" / "order-page-messages.md" the measurements beside it, "§" a section of the webservice
reference (prestashop-webservice.md). 1.7 and 9.x, which were not recorded, follow the reference.
"""
from __future__ import annotations

import random
import re
import string
import threading
from datetime import datetime
from zoneinfo import ZoneInfo

from .shopdata import CARRIERS, NATIVE_STATES

ZERO_DATE = "0000-00-00 00:00:00"
THREAD_TOKEN = string.ascii_letters + string.digits


def _money(value) -> str:
    return f"{float(value):.6f}"


class Shop:
    """The shop's tables, readable and writable by tests: `orders`, `order_details` (order rows per order),
    `order_carriers`, `histories`, `messages` (legacy), `customer_threads`, `customer_messages`, `customers`,
    `employees`, `states`, `carriers`, `configuration`; what it would mail goes to `mails`."""

    def __init__(self, version: str = "8.1.5", languages=(1, 2), *, shop_name: str = "Sim", seed: int | None = None,
                 timezone: str | None = None):
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
            self.add_carrier(carrier_id, name, url, id_reference=reference, deleted=deleted,
                             delay={1: delay_en, 2: delay_fr}, shipping_cost=(cost_excl, cost_incl))
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

    # --- data set-up ---------------------------------------------------------------------------------------

    def _ml(self, value) -> dict[int, str]:
        """A multilingual value for every shop language: a dict per language id, or one string for all."""
        if isinstance(value, dict):
            default = value.get(1, next(iter(value.values()), ""))
            return {lang: str(value.get(lang, default)) for lang in self.languages}
        return {lang: str(value) for lang in self.languages}

    def _add_native_state(self, state_id, keys, english, french, template, invoice, send_email, logable,
                          delivery, shipped, paid, pdf_invoice, module, color):
        self.add_state({1: english, 2: french}, id=state_id, config_key=list(keys), template=template,
                       invoice=invoice, send_email=send_email, logable=logable, delivery=delivery,
                       shipped=shipped, paid=paid, pdf_invoice=pdf_invoice, module_name=module, color=color,
                       unremovable=1)

    def add_state(self, name, *, id: int | None = None, template="", send_email=0, logable=0, invoice=0,
                  delivery=0, shipped=0, paid=0, pdf_invoice=0, pdf_delivery=0, hidden=0, deleted=0,
                  unremovable=0, module_name="", color="#3498D8", config_key=None) -> dict:
        """A custom (or native) order state. `name`/`template`: one string, or a dict per language id."""
        with self.lock:
            state_id = id if id is not None else max(self.states, default=0) + 1
            state = {
                "id": state_id, "unremovable": int(unremovable), "delivery": int(delivery), "hidden": int(hidden),
                "send_email": int(send_email), "module_name": module_name, "invoice": int(invoice), "color": color,
                "logable": int(logable), "shipped": int(shipped), "paid": int(paid), "pdf_delivery": int(pdf_delivery),
                "pdf_invoice": int(pdf_invoice), "deleted": int(deleted), "name": self._ml(name),
                "template": self._ml(template),
            }
            self.states[state_id] = state
            for key in ([config_key] if isinstance(config_key, str) else config_key or []):
                self.configuration[key] = str(state_id)
            return state

    def add_carrier(self, id: int, name: str, url: str = "", *, id_reference: int | None = None, active=1,
                    deleted=0, delay="", shipping_cost=("0.000000", "0.000000")) -> dict:
        """A carrier; `shipping_cost` (tax excl, tax incl) is what the BO charges when an order moves to it."""
        with self.lock:
            carrier = {
                "id": id, "deleted": int(deleted), "is_module": 0, "id_tax_rules_group": 1,
                "id_reference": id_reference if id_reference is not None else id, "name": name, "active": int(active),
                "is_free": int(not float(shipping_cost[1])), "url": url, "shipping_handling": 1, "shipping_external": 0,
                "range_behavior": 0, "shipping_method": 2, "max_width": 0, "max_height": 0, "max_depth": 0,
                "max_weight": "0.000000", "grade": 0, "external_module_name": "", "need_range": 0,
                "position": len(self.carriers), "delay": self._ml(delay),
                "shipping_cost_tax_excl": _money(shipping_cost[0]), "shipping_cost_tax_incl": _money(shipping_cost[1]),
            }
            self.carriers[id] = carrier
            return carrier

    def add_customer(self, id: int, email: str | None = None, firstname: str = "John", lastname: str = "DOE", *,
                     id_lang: int = 1, id_shop: int = 1) -> dict:
        with self.lock:
            customer = {
                "id": id, "id_default_group": 3, "id_lang": id_lang, "secure_key": self._hex(32), "deleted": 0,
                "lastname": lastname, "firstname": firstname, "email": email or f"customer{id}@example.com",
                "id_gender": 1, "newsletter": 0, "optin": 0, "active": 1, "note": "", "is_guest": 0, "id_shop": id_shop,
                "id_shop_group": 1, "date_add": self.now(), "date_upd": self.now(),
            }
            self.customers[id] = customer
            return customer

    def _hex(self, length: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(length))

    def _reference(self) -> str:
        return "".join(self.rng.choice(string.ascii_uppercase) for _ in range(9))

    def add_order(self, id_order: int | None = None, reference: str | None = None, current_state: int = 2,
                  id_carrier: int = 27, id_customer: int = 1, tracking_number: str = "", id_shop: int = 1, *,
                  id_lang: int = 1, date_add: str | None = None, carriers: tuple[int, ...] = (),
                  rows: list[dict] | None = None) -> dict:
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
            order = {
                "id": id_order, "id_address_delivery": 1, "id_address_invoice": 1, "id_cart": id_order,
                "id_currency": 1, "id_lang": id_lang, "id_customer": id_customer, "id_carrier": id_carrier,
                "current_state": current_state, "module": "ps_wirepayment", "invoice_number": 0,
                "invoice_date": ZERO_DATE, "delivery_number": 0, "delivery_date": ZERO_DATE,
                "valid": int(state["logable"]), "date_add": now, "date_upd": now, "note": "", "id_shop_group": 1,
                "id_shop": id_shop, "secure_key": self.customers[id_customer]["secure_key"], "payment": "Bank wire",
                "recyclable": 0, "gift": 0, "gift_message": "", "mobile_theme": 0, "total_discounts": "0.000000",
                "total_discounts_tax_incl": "0.000000", "total_discounts_tax_excl": "0.000000",
                "total_paid": "42.900000", "total_paid_tax_incl": "42.900000", "total_paid_tax_excl": "35.750000",
                "total_paid_real": "0.000000", "total_products": "29.000000", "total_products_wt": "35.000000",
                "total_shipping": "7.900000", "total_shipping_tax_incl": "7.900000",
                "total_shipping_tax_excl": "6.580000", "carrier_tax_rate": "20.000", "total_wrapping": "0.000000",
                "total_wrapping_tax_incl": "0.000000", "total_wrapping_tax_excl": "0.000000", "round_mode": 2,
                "round_type": 2, "conversion_rate": "1.000000", "reference": reference or self._reference(),
            }
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
                self.add_order_carrier(id_order, carrier_id, tracking_number=tracking_number if not position else "",
                                       id_order_invoice=invoice if not position else 0, date_add=now)
            self.histories.append({"id": self.next_history_id(), "id_order": id_order,
                                   "id_order_state": current_state, "id_employee": 0, "date_add": now})
            return order

    def _product_row(self, id_order: int) -> dict:
        detail_id = max((row["id"] for rows in self.order_details.values() for row in rows), default=0) + 1
        return {"id": detail_id, "product_id": 1, "product_attribute_id": 0, "product_quantity": 1,
                "product_name": "Simulated product", "product_reference": "SIM-1", "product_ean13": "",
                "product_isbn": "", "product_upc": "", "product_price": "29.000000", "id_customization": 0,
                "unit_price_tax_incl": "35.000000", "unit_price_tax_excl": "29.000000"}

    def add_order_carrier(self, id_order: int, id_carrier: int = 27, *, tracking_number: str = "",
                          id_order_invoice: int = 0, weight: str = "1.200000", shipping_cost_tax_excl: str = "6.580000",
                          shipping_cost_tax_incl: str = "7.900000", date_add: str | None = None,
                          id: int | None = None) -> dict:
        """Another order_carriers row (legacy multi-shipping, §3.3); add_order already creates the first one."""
        with self.lock:
            row = {
                "id": id or max(self.order_carriers, default=0) + 1, "id_order": id_order, "id_carrier": id_carrier,
                "id_order_invoice": id_order_invoice, "weight": weight, "shipping_cost_tax_excl": shipping_cost_tax_excl,
                "shipping_cost_tax_incl": shipping_cost_tax_incl, "tracking_number": tracking_number,
                "date_add": date_add or self.now(),
            }
            self.order_carriers[row["id"]] = row
            return row

    def carrier_rows(self, id_order: int) -> list[dict]:
        """The order's order_carriers rows, lowest id first (what MySQL returns first, §3.3)."""
        with self.lock:
            return sorted((r for r in self.order_carriers.values() if r["id_order"] == id_order), key=lambda r: r["id"])

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

    # --- state changes (§5) --------------------------------------------------------------------------------

    def next_history_id(self) -> int:
        return max((h["id"] for h in self.histories), default=0) + 1

    def _new_invoice(self, order: dict, now: str) -> int:
        invoice = self.next_invoice
        self.next_invoice += 1
        order["invoice_number"], order["invoice_date"] = invoice, now
        return invoice

    def change_state(self, order: dict, state_id: int, *, id_employee: int, send_mail: bool, source: str) -> dict:
        """OrderHistory::changeIdOrderState (§5.1) then add() / addWithemail(). Recorded on 8.1.2
        (order_history_post_sendemail, date_upd.md rows 1-3): date_upd moves, invoice and delivery numbers are
        set by the first invoice / delivery state, delivery_date at every delivery state."""
        state = self.states[state_id]
        now = self.now()
        order["current_state"] = state_id
        order["valid"] = 1 if state["logable"] else 0  # step 5
        if state["invoice"] and not order["invoice_number"]:  # step 6: first invoice
            invoice = self._new_invoice(order, now)
            for row in self.carrier_rows(order["id"]):  # Order::setInvoice links the first unlinked carrier row
                if not row["id_order_invoice"]:
                    row["id_order_invoice"] = invoice
                    break
        if state["paid"] and order["invoice_number"] and float(order["total_paid_real"]) < float(order["total_paid_tax_incl"]):
            order["total_paid_real"] = order["total_paid_tax_incl"]  # step 7 (recorded: order_2_after_history_json)
        if state["delivery"]:  # step 8: Order::setDelivery, delivery_date re-stamped at every such transition
            if not order["delivery_number"]:
                order["delivery_number"] = self.next_delivery
                self.next_delivery += 1
            order["delivery_date"] = now
        order["date_upd"] = now
        history = {"id": self.next_history_id(), "id_order": order["id"], "id_order_state": state_id,
                   "id_employee": int(id_employee or 0), "date_add": now}
        self.histories.append(history)  # step 11
        if send_mail:
            self._state_mail(order, state, source)
        return history

    def _followup(self, order: dict, tracking: str) -> str:
        carrier = self.carriers.get(order["id_carrier"])  # orders.id_carrier, not order_carrier's (§3.3)
        url = carrier["url"] if carrier else ""
        return url.replace("@", tracking) if url and tracking else ""

    def _state_mail(self, order: dict, state: dict, source: str) -> None:
        lang = order.get("id_lang", 1)
        template = state["template"].get(lang) or state["template"].get(self.languages[0], "")
        if not state["send_email"] or not template:  # empty template = no mail even with send_email=1 (§3.4)
            return
        tracking = self.shipping_number(order)  # read at send time (§5.1 step 11)
        self.mails.append({"id_order": order["id"], "template": template, "kind": "state", "state_id": state["id"],
                           "tracking_number": tracking, "followup": self._followup(order, tracking), "id_lang": lang,
                           "source": source, "date_add": self.now()})

    def in_transit_mail(self, row: dict, source: str = "webservice") -> None:
        order = self.orders.get(row["id_order"])
        if order is None:
            return
        carrier = self.carriers.get(order["id_carrier"])
        if self.version_tuple >= (8, 1) and not (carrier and carrier["url"]):
            # Skipped since 8.1.x when the carrier has no URL (PR #32535, §0; recorded:
            # order_carrier_put_full_sendemail on "My carrier", which has none).
            return
        self.mails.append({"id_order": order["id"], "template": "in_transit", "kind": "in_transit",
                           "tracking_number": row["tracking_number"],
                           "followup": self._followup(order, row["tracking_number"]),
                           "id_lang": order.get("id_lang", 1), "source": source, "date_add": self.now()})

    # --- the back office -----------------------------------------------------------------------------------

    def set_state_by_hand(self, id_order: int, state_id: int, id_employee: int = 1) -> dict:
        """What a merchant does on the BO order page (§5.3): refused when the order already has that state,
        always mails when the state sends mail. Returns the history row."""
        with self.lock:
            order = self.orders[id_order]
            if state_id not in self.states:
                raise KeyError(f"unknown order state {state_id}")
            if order["current_state"] == state_id:
                raise ValueError("The order has already been assigned this status.")
            return self.change_state(order, state_id, id_employee=id_employee, send_mail=True, source="back_office")

    def back_office_set_tracking(self, id_order: int, number: str, carrier_id: int | None = None) -> dict:
        """The merchant types a tracking number on the order page ("edit shipping",
        UpdateOrderShippingDetailsCommand), optionally with another carrier. Returns the order_carrier row.

        8.x / 9.x, measured on 8.1.2 (date_upd.md): same carrier → only order_carrier.tracking_number changes,
        orders.date_upd does not move (row 9); a new carrier → orders.id_carrier, the row's carrier and the
        shipping totals change and date_upd moves (row 10). 1.7 (reference §0, §7.3): the handler also copies the
        number into the deprecated orders.shipping_number column, so the order is saved and date_upd moves.
        The in_transit mail goes when the number changed and is not empty (§7.3)."""
        with self.lock:
            order = self.orders[id_order]
            row = self.carrier_rows(id_order)[0]
            changed = row["tracking_number"] != number
            order_saved = False
            if carrier_id is not None and carrier_id != row["id_carrier"]:
                self._change_carrier(order, row, carrier_id)
                order_saved = True
            row["tracking_number"] = number
            if self.version_tuple < (8,):
                order["shipping_number"] = number
                order_saved = True
            if order_saved:
                order["date_upd"] = self.now()
            if changed and number:
                self.in_transit_mail(row, source="back_office")
            return row

    def set_tracking_by_hand(self, id_order: int, tracking_number: str) -> dict:
        """Former name of back_office_set_tracking (same carrier)."""
        return self.back_office_set_tracking(id_order, tracking_number)

    def _change_carrier(self, order: dict, row: dict, carrier_id: int) -> None:
        """Recorded on 8.1.2 (date_upd.md row 10): order 5 from carrier 2 to 1 took total_shipping_tax_incl
        8.40 → 0.00 and total_paid_tax_incl 27.30 → 18.90: the new carrier's cost replaces the old one."""
        carrier = self.carriers[carrier_id]
        delta_incl = float(carrier["shipping_cost_tax_incl"]) - float(order["total_shipping_tax_incl"])
        delta_excl = float(carrier["shipping_cost_tax_excl"]) - float(order["total_shipping_tax_excl"])
        order["id_carrier"] = row["id_carrier"] = carrier_id
        order["total_shipping_tax_incl"] = row["shipping_cost_tax_incl"] = carrier["shipping_cost_tax_incl"]
        order["total_shipping_tax_excl"] = row["shipping_cost_tax_excl"] = carrier["shipping_cost_tax_excl"]
        order["total_shipping"] = carrier["shipping_cost_tax_incl"]
        for name, delta in (("total_paid_tax_incl", delta_incl), ("total_paid", delta_incl),
                            ("total_paid_tax_excl", delta_excl)):
            order[name] = _money(float(order[name]) + delta)

    def back_office_add_message(self, id_order: int, message: str, *, private: bool = True,
                                id_employee: int = 1) -> dict:
        """The order page's "send message" (AddOrderCustomerMessageCommand), recorded on 8.1.2
        (order-page-messages.md, date_upd.md rows 13-14): the thread found by customer email + shop + order is
        re-used, else one is created (id_contact 0, the order's customer, shop and language, status open, a random
        12-character token). No date_upd moves, not even the thread's. A public message is mailed to the customer
        (order-page-messages.md: "the back-office form e-mails the customer for non-private messages")."""
        with self.lock:
            order = self.orders[id_order]
            customer = self.customers.get(order["id_customer"], {})
            email = customer.get("email", "")
            thread = next((t for t in self.customer_threads.values() if t["email"] == email
                           and t["id_shop"] == order["id_shop"] and t["id_order"] == id_order), None)
            now = self.now()
            if thread is None:
                thread = self.add_thread({
                    "id_lang": order["id_lang"], "id_shop": order["id_shop"], "id_customer": order["id_customer"],
                    "id_order": id_order, "id_product": 0, "id_contact": 0, "email": email,
                    "token": "".join(self.rng.choice(THREAD_TOKEN) for _ in range(12)), "status": "open",
                    "date_add": now, "date_upd": now})
            row = self.add_customer_message({
                "id_employee": id_employee, "id_customer_thread": thread["id"], "ip_address": "", "message": message,
                "file_name": "", "user_agent": "", "private": int(private), "date_add": now, "date_upd": now, "read": 0})
            if not private:
                self.mails.append({"id_order": id_order, "template": "order_merchant_comment", "kind": "message",
                                   "message": message, "id_lang": order["id_lang"], "source": "back_office",
                                   "date_add": now})
            return row

    def add_thread(self, values: dict) -> dict:
        thread = {"id": max(self.customer_threads, default=0) + 1, **values}
        self.customer_threads[thread["id"]] = thread
        return thread

    def add_customer_message(self, values: dict) -> dict:
        row = {"id": max(self.customer_messages, default=0) + 1, **values}
        self.customer_messages[row["id"]] = row
        return row

    def thread_messages(self, id_thread: int) -> list[dict]:
        return sorted((m for m in self.customer_messages.values() if m["id_customer_thread"] == id_thread),
                      key=lambda m: m["id"])

    def order_page_messages(self, id_order: int) -> list[dict]:
        """What the back-office order page's Messages panel lists, newest first.

        1.7.7+ (recorded on 8.1.2, order-page-messages.md; reference §9 15b for 1.7.7 and 9): the
        customer_message rows of the threads whose id_customer AND id_order are the order's, never the legacy
        `message` table. Before 1.7.7 (reference §9 15b) the page read the legacy table."""
        with self.lock:
            order = self.orders[id_order]
            customer = self.customers.get(order["id_customer"], {})
            if self.version_tuple[:3] < (1, 7, 7):
                rows = [{"id": m["id"], "table": "message", "message": m["message"], "private": m["private"],
                         "id_employee": m["id_employee"], "date_add": m["date_add"]}
                        for m in self.messages if m["id_order"] == id_order]
            else:
                threads = {t["id"] for t in self.customer_threads.values()
                           if t["id_order"] == id_order and t["id_customer"] == order["id_customer"]}
                rows = [{"id": m["id"], "table": "customer_message", "message": m["message"], "private": m["private"],
                         "id_employee": m["id_employee"], "date_add": m["date_add"]}
                        for m in self.customer_messages.values() if m["id_customer_thread"] in threads]
            for row in rows:
                row["efirstname"] = self.employees.get(row["id_employee"], {}).get("firstname")
                row["cfirstname"] = customer.get("firstname")
            return sorted(rows, key=lambda r: (r["date_add"], r["id"]), reverse=True)
