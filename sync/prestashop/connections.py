"""One PrestaShop connection per shop (issue 16): its webservice client and its order states, built once and kept.

The default shop connects through PRESTASHOP_URL and PRESTASHOP_API_KEY as before shops, unless the shop itself
carries a webservice address. Any other shop connects through its `prestashop_url` and the key of the
environment variable PRESTASHOP_API_KEY_<CODE> (its code in upper case, '-' as '_'); keys are never stored.

Multistore: shops on one PrestaShop installation (same host, port and path: `installation_of`) each have their
`id_shop`, which their client sends with every request (reference §2.4, §9.13). One webservice key can be enabled
for several shops of an installation (`webservice_account_shop`), so a shop of a shared installation without its
own PRESTASHOP_API_KEY_<CODE> uses the key of another shop of that installation: the first, default shop first
then by code, that has one (the default shop's is PRESTASHOP_API_KEY when it connects through PRESTASHOP_URL).
The clients of one installation share what is learnt of it (its version, whether PUT/PATCH must go as POST with
ps_method); each shop keeps its own client (its id_shop, its key) and its own order states (ShopStates).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy.orm import object_session

from sync.core.shops import installation_of
from sync.prestashop.client import Installation, PrestaShopClient
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
        self._installations: dict[tuple, Installation] = {}
        if default is not None and config.get("PRESTASHOP_URL"):
            self._installations[_installation_key(config["PRESTASHOP_URL"])] = default.client.installation

    def url_of(self, shop) -> str | None:
        """The webservice address a shop connects to: its own, else PRESTASHOP_URL for the default shop."""
        if shop.prestashop_url:
            return shop.prestashop_url
        return self.config.get("PRESTASHOP_URL") if shop.is_default else None

    def _own_key(self, shop) -> str | None:
        if shop.is_default and not shop.prestashop_url:
            return self.config.get("PRESTASHOP_API_KEY")
        return self.environ.get(key_variable(shop.code)) or (self.config.get("PRESTASHOP_API_KEY") if shop.is_default else None)

    def address_of(self, shop, shops: Iterable | None = None) -> tuple[str | None, str | None]:
        """(webservice address, key) a shop connects with; None for what is missing. `shops`: every shop (read from
        the shop row's session when not given), for the key of another shop of the same installation."""
        url, key = self.url_of(shop), self._own_key(shop)
        if url and not key:
            installation = _installation_key(url)
            for other in _others(shop, shops):
                other_url = self.url_of(other)
                if other_url and _installation_key(other_url) == installation and self._own_key(other):
                    key = self._own_key(other)
                    break
        return url, key

    def get(self, shop, shops: Iterable | None = None) -> Connection | None:
        """The shop's connection, or None when it does not push (no address, or no key)."""
        if shop.is_default and not shop.prestashop_url and shop.id_shop is None:
            return self.default  # PRESTASHOP_URL's, built with the app (app.extensions["shop"])
        url, key = self.address_of(shop, shops)
        if not url or not key:
            return None
        identity = (shop.code, url, key, shop.id_shop)
        with self._lock:
            connection = self._built.get(identity)
            if connection is None:
                installation = self._installations.setdefault(_installation_key(url), Installation())
                timeout = float(self.config.get("PRESTASHOP_TIMEOUT") or 30)
                client = PrestaShopClient(url, key, id_shop=shop.id_shop, installation=installation, timeout=(min(5.0, timeout), timeout))
                connection = self._built[identity] = Connection(client=client, states=ShopStates(client))
            return connection

    def client_for(self, shop, shops: Iterable | None = None) -> PrestaShopClient | None:
        connection = self.get(shop, shops)
        return None if connection is None else connection.client

    def states_for(self, shop, shops: Iterable | None = None) -> ShopStates | None:
        connection = self.get(shop, shops)
        return None if connection is None else connection.states


def _installation_key(url: str) -> tuple:
    """`installation_of`, the webservice's own `/api` left out (PRESTASHOP_URL may be given with or without it)."""
    host, port, path = installation_of(url if "://" in url else "http://" + url)
    return host, port, path[: -len("/api")] if path.endswith("/api") else path


def _others(shop, shops: Iterable | None) -> list:
    """The other shops, default first then by code (as list_shops gives them)."""
    if shops is None:
        session = _session_of(shop)
        if session is None:
            return []
        from sync.store.shops import list_shops  # the store only when the caller did not say which shops exist

        shops = list_shops(session)
    return sorted((other for other in shops if other.code != shop.code), key=lambda other: (not other.is_default, other.code))


def _session_of(shop):
    try:
        return object_session(shop)
    except Exception:  # not a mapped row (a plain object standing for a shop)
        return None
