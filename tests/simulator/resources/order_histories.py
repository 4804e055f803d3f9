"""Order histories (class OrderHistory): a change of an order's state (§5). What a real 8.1.2 shop does:

* POST /api/order_histories: OrderHistory::addWs, without a same-state guard (recorded:
  order_history_post_same_state_again adds a second row, date_upd.md row 2). The order takes the state and its
  date_upd moves; `valid` follows the state's logable flag; the first invoice state sets the invoice number and
  date and links the first order_carrier row without one; the first delivery state sets delivery_number and every
  delivery state re-stamps delivery_date; a paid state fills total_paid_real (recorded: order_history_post_sendemail,
  order_history_post_no_sendemail_json, order_2_after_history_json; date_upd.md rows 1-3).
* With `sendemail` the state's mail goes, carrying the tracking number read at send time (§5.1 step 11); a state
  with an empty template mails nothing even with send_email=1 (§3.4). (Mail was off on the recorded shop.)
* An unknown order or state is a PHP fatal error before anything is written: 500, empty body (recorded:
  order_history_post_order_999, order_history_post_state_999; date_upd.md row 4).
* The back office's state change (§5.3) refuses the order's current state and always mails.
"""

from __future__ import annotations

from ..php import php_int
from ..protocol import Ctx, PhpFatal
from ..shopdata import RESOURCES
from .registry import Hooks


class OrderHistories:
    def next_history_id(self) -> int:
        return max((h["id"] for h in self.histories), default=0) + 1

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
        history = {
            "id": self.next_history_id(),
            "id_order": order["id"],
            "id_order_state": state_id,
            "id_employee": int(id_employee or 0),
            "date_add": now,
        }
        self.histories.append(history)  # step 11
        if send_mail:
            self._state_mail(order, state, source)
        return history

    def _state_mail(self, order: dict, state: dict, source: str) -> None:
        lang = order.get("id_lang", 1)
        template = state["template"].get(lang) or state["template"].get(self.languages[0], "")
        if not state["send_email"] or not template:  # empty template = no mail even with send_email=1 (§3.4)
            return
        tracking = self.shipping_number(order)  # read at send time (§5.1 step 11)
        self.mails.append(
            {
                "id_order": order["id"],
                "template": template,
                "kind": "state",
                "state_id": state["id"],
                "tracking_number": tracking,
                "followup": self._followup(order, tracking),
                "id_lang": lang,
                "source": source,
                "date_add": self.now(),
            }
        )

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

    def _save_history(self, ctx: Ctx, existing, obj: dict) -> dict:
        """OrderHistory::addWs (§3.2): no same-state guard, date_add set by add(). An unknown order or state is
        a PHP fatal error before anything is written: 500, empty body (recorded: order_history_post_order_999,
        order_history_post_state_999; date_upd.md row 4)."""
        id_order, state_id = php_int(obj["id_order"]), php_int(obj["id_order_state"])
        if id_order not in self.orders or state_id not in self.states:
            raise PhpFatal()
        history = self.change_state(
            self.orders[id_order], state_id, id_employee=php_int(obj.get("id_employee") or 0), send_mail=self._mails_go(ctx), source="webservice"
        )
        obj["id_order_state"] = state_id  # changeIdOrderState casts it: an int in JSON (recorded)
        return self._added(RESOURCES["order_histories"], obj, history)


HOOKS = {"order_histories": Hooks(rows=lambda shop: shop.histories, save=OrderHistories._save_history)}
