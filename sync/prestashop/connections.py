"""One PrestaShop connection per shop (issue 16): its webservice client and its order states, built once and kept.

The default shop connects through PRESTASHOP_URL and PRESTASHOP_API_KEY as before shops, unless the shop itself
carries a webservice address. Any other shop connects through its `prestashop_url` and the key of the
environment variable PRESTASHOP_API_KEY_<CODE> (its code in upper case, '-' as '_'); keys are never stored.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from sync.prestashop.client import PrestaShopClient
from sync.prestashop.states import ShopStates


def key_variable(code: str) -> str:
    """The environment variable holding a shop's webservice key."""
    return "PRESTASHOP_API_KEY_" + code.upper().replace("-", "_")


@dataclass(frozen=True)
class Connection:
    """A shop's webservice client and its order states (cached)."""

    client: PrestaShopClient
    states: ShopStates


class ShopConnections:
    """The connection of each shop that pushes, by shop: built at first use from the shop's address and key."""

    def __init__(self, config: Mapping, environ: Mapping[str, str], default: Connection | None = None):
        self.config, self.environ, self.default = config, environ, default
        self._lock = threading.Lock()
        self._built: dict[tuple, Connection] = {}

    def address_of(self, shop) -> tuple[str | None, str | None]:
        """(webservice address, key) a shop connects with; None for what is missing."""
        if shop.is_default and not shop.prestashop_url:
            return self.config.get("PRESTASHOP_URL"), self.config.get("PRESTASHOP_API_KEY")
        key = self.environ.get(key_variable(shop.code)) or (self.config.get("PRESTASHOP_API_KEY") if shop.is_default else None)
        return shop.prestashop_url, key

    def get(self, shop) -> Connection | None:
        """The shop's connection, or None when it does not push (no address, or no key)."""
        if shop.is_default and not shop.prestashop_url:
            return self.default  # PRESTASHOP_URL's, built with the app (app.extensions["shop"])
        url, key = self.address_of(shop)
        if not url or not key:
            return None
        identity = (shop.code, url, key, shop.id_shop)
        with self._lock:
            connection = self._built.get(identity)
            if connection is None:
                timeout = float(self.config.get("PRESTASHOP_TIMEOUT") or 30)
                client = PrestaShopClient(url, key, timeout=(min(5.0, timeout), timeout))
                connection = self._built[identity] = Connection(client=client, states=ShopStates(client))
            return connection

    def client_for(self, shop) -> PrestaShopClient | None:
        connection = self.get(shop)
        return None if connection is None else connection.client

    def states_for(self, shop) -> ShopStates | None:
        connection = self.get(shop)
        return None if connection is None else connection.states
