"""Customers (class Customer), read-only over the webservice and not recorded. A sync reads a customer for the
email its customer thread carries (customer_threads.py); the recorded shop's customer is 2, pub@prestashop.com,
John DOE (README).
"""

from __future__ import annotations

from .registry import Hooks


class Customers:
    def add_customer(
        self, id: int, email: str | None = None, firstname: str = "John", lastname: str = "DOE", *, id_lang: int = 1, id_shop: int = 1
    ) -> dict:
        with self.lock:
            customer = {
                "id": id,
                "id_default_group": 3,
                "id_lang": id_lang,
                "secure_key": self._hex(32),
                "deleted": 0,
                "lastname": lastname,
                "firstname": firstname,
                "email": email or f"customer{id}@example.com",
                "id_gender": 1,
                "newsletter": 0,
                "optin": 0,
                "active": 1,
                "note": "",
                "is_guest": 0,
                "id_shop": id_shop,
                "id_shop_group": 1,
                "date_add": self.now(),
                "date_upd": self.now(),
            }
            self.customers[id] = customer
            return customer

    def _hex(self, length: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(length))


HOOKS = {"customers": Hooks(rows=lambda shop: shop.customers.values())}
