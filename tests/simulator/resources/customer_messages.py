"""Customer messages (class CustomerMessage): a message in a customer thread, what the order page's Messages panel
shows since 1.7.7. What a real 8.1.2 shop does with them:

* POST /api/customer_messages (CustomerMessage::add): the message has its own date_add / date_upd; neither the
  thread's date_upd nor the order's moves, and no mail goes (recorded: customer_message_post_private,
  customer_message_post_xml; date_upd.md row 12; order-page-messages.md).
* the order page lists the messages of the threads whose id_order AND id_customer are the order's, newest first,
  never the legacy `message` table (order-page-messages.md).
* the back office's "send message" (AddOrderCustomerMessageCommand) adds one to the order's thread, opening one
  if needed, moves no date_upd, and mails the customer a public one (date_upd.md rows 13-14,
  order-page-messages.md).
"""

from __future__ import annotations

from ..protocol import Ctx
from ..shopdata import RESOURCES
from .registry import Hooks


class CustomerMessages:
    def add_customer_message(self, values: dict) -> dict:
        row = {"id": max(self.customer_messages, default=0) + 1, **values}
        self.customer_messages[row["id"]] = row
        return row

    def thread_messages(self, id_thread: int) -> list[dict]:
        return sorted((m for m in self.customer_messages.values() if m["id_customer_thread"] == id_thread), key=lambda m: m["id"])

    def _save_customer_message(self, ctx: Ctx, existing, obj: dict) -> dict:
        """CustomerMessage::add (recorded: customer_message_post_private, customer_message_post_xml): the
        message has its own dates; neither the thread's nor the order's date_upd moves (date_upd.md row 12)."""
        row = self._row(RESOURCES["customer_messages"], obj)
        row["date_add"] = row["date_upd"] = self.now()
        return self._added(RESOURCES["customer_messages"], obj, self.add_customer_message(row))

    # --- the back office -----------------------------------------------------------------------------------

    def back_office_add_message(self, id_order: int, message: str, *, private: bool = True, id_employee: int = 1) -> dict:
        """The order page's "send message" (AddOrderCustomerMessageCommand), recorded on 8.1.2
        (order-page-messages.md, date_upd.md rows 13-14): the thread found by customer email + shop + order is
        re-used, else one is created (id_contact 0, the order's customer, shop and language, status open, a random
        12-character token). No date_upd moves, not even the thread's. A public message is mailed to the customer
        (order-page-messages.md: "the back-office form e-mails the customer for non-private messages")."""
        with self.lock:
            order = self.orders[id_order]
            email = self.customers.get(order["id_customer"], {}).get("email", "")
            thread = self._order_thread(order, email)
            now = self.now()
            if thread is None:
                thread = self._open_order_thread(order, email, now)
            row = self.add_customer_message(
                {
                    "id_employee": id_employee,
                    "id_customer_thread": thread["id"],
                    "ip_address": "",
                    "message": message,
                    "file_name": "",
                    "user_agent": "",
                    "private": int(private),
                    "date_add": now,
                    "date_upd": now,
                    "read": 0,
                }
            )
            if not private:
                self.mails.append(
                    {
                        "id_order": id_order,
                        "template": "order_merchant_comment",
                        "kind": "message",
                        "message": message,
                        "id_lang": order["id_lang"],
                        "source": "back_office",
                        "date_add": now,
                    }
                )
            return row

    def order_page_messages(self, id_order: int) -> list[dict]:
        """What the back-office order page's Messages panel lists, newest first.

        1.7.7+ (recorded on 8.1.2, order-page-messages.md; reference §9 15b for 1.7.7 and 9): the
        customer_message rows of the threads whose id_customer AND id_order are the order's, never the legacy
        `message` table. Before 1.7.7 (reference §9 15b) the page read the legacy table."""
        with self.lock:
            order = self.orders[id_order]
            customer = self.customers.get(order["id_customer"], {})
            if self.version_tuple[:3] < (1, 7, 7):
                rows = self._legacy_page_messages(id_order)
            else:
                threads = {t["id"] for t in self.customer_threads.values() if t["id_order"] == id_order and t["id_customer"] == order["id_customer"]}
                rows = [
                    {
                        "id": m["id"],
                        "table": "customer_message",
                        "message": m["message"],
                        "private": m["private"],
                        "id_employee": m["id_employee"],
                        "date_add": m["date_add"],
                    }
                    for m in self.customer_messages.values()
                    if m["id_customer_thread"] in threads
                ]
            for row in rows:
                row["efirstname"] = self.employees.get(row["id_employee"], {}).get("firstname")
                row["cfirstname"] = customer.get("firstname")
            return sorted(rows, key=lambda r: (r["date_add"], r["id"]), reverse=True)


HOOKS = {"customer_messages": Hooks(rows=lambda shop: shop.customer_messages.values(), save=CustomerMessages._save_customer_message)}
