"""Customer threads (class CustomerThread): the customer-service conversation an order's messages hang on. What a
real 8.1.2 shop does with them:

* POST /api/customer_threads (CustomerThread::add): date_add = date_upd = "now"; the token column is varchar(12),
  a longer token is accepted and cut; a thread with id_customer 0 is accepted but its messages are not on the
  order page; no order's date_upd moves (recorded: customer_thread_post, customer_thread_post_long_token,
  customer_thread_post_without_customer; date_upd.md row 11; order-page-messages.md).
* GET lists its messages' ids in the `customer_messages` association (recorded: customer_threads_by_order_xml).
* the back office's "send message" re-uses the thread found by customer email + shop + order, else opens one
  (date_upd.md rows 13-14): back_office_add_message in customer_messages.py.
"""

from __future__ import annotations

import string

from ..protocol import Ctx
from ..shopdata import RESOURCES
from .registry import Hooks

THREAD_TOKEN = string.ascii_letters + string.digits


class CustomerThreads:
    def add_thread(self, values: dict) -> dict:
        thread = {"id": max(self.customer_threads, default=0) + 1, **values}
        self.customer_threads[thread["id"]] = thread
        return thread

    def _order_thread(self, order: dict, email: str) -> dict | None:
        """The thread the back office re-uses for an order: same customer email, shop and order
        (order-page-messages.md)."""
        return next(
            (t for t in self.customer_threads.values() if t["email"] == email and t["id_shop"] == order["id_shop"] and t["id_order"] == order["id"]),
            None,
        )

    def _open_order_thread(self, order: dict, email: str, now: str) -> dict:
        """The thread the back office opens (date_upd.md row 14): id_contact 0, the order's customer, shop and
        language, status open, a random 12-character token."""
        return self.add_thread(
            {
                "id_lang": order["id_lang"],
                "id_shop": order["id_shop"],
                "id_customer": order["id_customer"],
                "id_order": order["id"],
                "id_product": 0,
                "id_contact": 0,
                "email": email,
                "token": "".join(self.rng.choice(THREAD_TOKEN) for _ in range(12)),
                "status": "open",
                "date_add": now,
                "date_upd": now,
            }
        )

    def _save_thread(self, ctx: Ctx, existing, obj: dict) -> dict:
        """CustomerThread::add (recorded: customer_thread_post; token cut to 12 by its column,
        customer_thread_post_long_token; a thread with id_customer 0 is accepted,
        customer_thread_post_without_customer). No order's date_upd moves (date_upd.md row 11)."""
        row = self._row(RESOURCES["customer_threads"], obj)
        row["date_add"] = row["date_upd"] = self.now()
        return self._added(RESOURCES["customer_threads"], obj, self.add_thread(row))


HOOKS = {
    "customer_threads": Hooks(
        rows=lambda shop: shop.customer_threads.values(),
        save=CustomerThreads._save_thread,
        associations={"customer_messages": lambda shop, thread: [{"id": m["id"]} for m in shop.thread_messages(thread["id"])]},
    ),
}
