"""Messages: the legacy `message` table (class Message). What a real 8.1.2 shop does with them:

* POST /api/messages stores one row, date_add "now", and moves no date_upd (recorded: message_post_legacy,
  messages_by_order_json; date_upd.md row 15); it has no mail step.
* the order page does not show them since 1.7.7: it reads customer threads (order-page-messages.md; reference
  §9 15b); before 1.7.7 it read this table (order_page_messages, customer_messages.py).

Simulator choice (not recorded): a message for an unknown order is refused, 400 code 85.
"""

from __future__ import annotations

from ..protocol import Ctx, WsError
from ..shopdata import RESOURCES
from .registry import Hooks


class Messages:
    def _save_message(self, ctx: Ctx, existing, obj: dict) -> dict:
        """Legacy `message` table (recorded: message_post_legacy): no date_upd moves (date_upd.md row 15)."""
        record = self._row(RESOURCES["messages"], obj)
        if record["id_order"] and record["id_order"] not in self.orders:
            # Simulator choice (not recorded): a message for an unknown order is refused as invalid.
            prop = self._property(RESOURCES["messages"], "id_order")
            raise WsError(400, 85, f'Validation error: "Property {prop} is not valid" (order {record["id_order"]} does not exist)')
        record["date_add"] = self.now()
        record = {"id": max((m["id"] for m in self.messages), default=0) + 1, **record}
        self.messages.append(record)
        return self._added(RESOURCES["messages"], obj, record)

    def _legacy_page_messages(self, id_order: int) -> list[dict]:
        """The order page's Messages panel before 1.7.7 (reference §9 15b): the order's legacy messages."""
        return [
            {
                "id": m["id"],
                "table": "message",
                "message": m["message"],
                "private": m["private"],
                "id_employee": m["id_employee"],
                "date_add": m["date_add"],
            }
            for m in self.messages
            if m["id_order"] == id_order
        ]


HOOKS = {"messages": Hooks(rows=lambda shop: shop.messages, save=Messages._save_message)}
