"""Order carriers (class OrderCarrier): one shipment of an order and its tracking number (§3.3). What a real 8.1.2
shop does with them:

* PUT / PATCH, and POST with ps_method=PUT|PATCH: OrderCarrier::updateWs saves the row and leaves the order alone,
  its date_upd stays (recorded: order_carrier_put_full_sendemail, order_carrier_patch_json, ps_method_put_via_post,
  ps_method_patch_via_post; date_upd.md rows 5-7). A 65-character number is accepted and cut to the varchar(64)
  column (recorded: order_carrier_patch_65_chars).
* With `sendemail` the in_transit mail goes, without checking that the number changed (§3.3), but from 8.1 on
  not when the carrier has no tracking URL (PR #32535; recorded: order_carrier_put_full_sendemail on "My
  carrier", which has none).
* The back office's "edit shipping" (date_upd.md rows 9-10): with the same carrier only the row's number
  changes; another carrier moves the order's carrier, its shipping totals and its date_upd.
"""

from __future__ import annotations

from ..php import mysql_decimal
from ..protocol import Ctx
from ..shopdata import RESOURCES
from .registry import Hooks


class OrderCarriers:
    def add_order_carrier(
        self,
        id_order: int,
        id_carrier: int = 27,
        *,
        tracking_number: str = "",
        id_order_invoice: int = 0,
        weight: str = "1.200000",
        shipping_cost_tax_excl: str = "6.580000",
        shipping_cost_tax_incl: str = "7.900000",
        date_add: str | None = None,
        id: int | None = None,
    ) -> dict:
        """Another order_carriers row (legacy multi-shipping, §3.3); add_order already creates the first one."""
        with self.lock:
            row = {
                "id": id or max(self.order_carriers, default=0) + 1,
                "id_order": id_order,
                "id_carrier": id_carrier,
                "id_order_invoice": id_order_invoice,
                "weight": weight,
                "shipping_cost_tax_excl": shipping_cost_tax_excl,
                "shipping_cost_tax_incl": shipping_cost_tax_incl,
                "tracking_number": tracking_number,
                "date_add": date_add or self.now(),
            }
            self.order_carriers[row["id"]] = row
            return row

    def carrier_rows(self, id_order: int) -> list[dict]:
        """The order's order_carriers rows, lowest id first (what MySQL returns first, §3.3)."""
        with self.lock:
            return sorted((r for r in self.order_carriers.values() if r["id_order"] == id_order), key=lambda r: r["id"])

    def in_transit_mail(self, row: dict, source: str = "webservice") -> None:
        order = self.orders.get(row["id_order"])
        if order is None:
            return
        carrier = self.carriers.get(order["id_carrier"])
        if self.version_tuple >= (8, 1) and not (carrier and carrier["url"]):
            # Skipped since 8.1.x when the carrier has no URL (PR #32535, §0; recorded:
            # order_carrier_put_full_sendemail on "My carrier", which has none).
            return
        self.mails.append(
            {
                "id_order": order["id"],
                "template": "in_transit",
                "kind": "in_transit",
                "tracking_number": row["tracking_number"],
                "followup": self._followup(order, row["tracking_number"]),
                "id_lang": order.get("id_lang", 1),
                "source": source,
                "date_add": self.now(),
            }
        )

    def _save_order_carrier(self, ctx: Ctx, existing: dict, obj: dict) -> dict:
        """OrderCarrier::updateWs: the row is saved, then the in_transit mail if sendemail (no same-number check,
        §3.3). The order is not touched: its date_upd stays (date_upd.md rows 5-7)."""
        for name, value in self._row(RESOURCES["order_carriers"], obj).items():
            existing[name] = value
        if obj.get("date_add") in (None, ""):
            obj["date_add"] = existing["date_add"]  # ObjectModel::update sets a reset date_add to "now"
        if self._mails_go(ctx):
            self.in_transit_mail(existing)
        return existing

    # --- the back office -----------------------------------------------------------------------------------

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
        for name, delta in (("total_paid_tax_incl", delta_incl), ("total_paid", delta_incl), ("total_paid_tax_excl", delta_excl)):
            order[name] = mysql_decimal(float(order[name]) + delta)


HOOKS = {"order_carriers": Hooks(rows=lambda shop: shop.order_carriers.values(), save=OrderCarriers._save_order_carrier)}
