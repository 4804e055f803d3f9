"""The demo's two shops: the numbering series (DO_Souche) that holds each one's orders, and what makes the store's
shops tell them apart (the default shop claims souche 0, shop `b2b` souche 1).

Pure: `demo_shop_changes` says what to change, the caller applies it with sync/store/shops.py and commits
(sync/gescom/ never reaches our store).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from sync.core.shops import KEY_SEPARATOR

DEFAULT_SOUCHE = 0
PRO_SOUCHE = 1
PRO_CODE = "b2b"
PRO_SHOP = {"code": PRO_CODE, "name": "Boutique pro", "rule": {"kind": "souche", "values": [PRO_SOUCHE]}}
DEFAULT_RULE = {"kind": "souche", "values": [DEFAULT_SOUCHE]}
CODE_OF_SOUCHE = {DEFAULT_SOUCHE: "default", PRO_SOUCHE: PRO_CODE}


class ShopChange(NamedTuple):
    """One change to the store's shops: create shop `code` from `document`, or apply `document` to it as a patch."""

    code: str
    document: dict
    create: bool


def _same_rule(stored: Mapping | None, wanted: Mapping) -> bool:
    stored = stored or {}
    return stored.get("kind") == wanted["kind"] and list(stored.get("values") or []) == wanted["values"] and stored.get("field") is None


def demo_shop_changes(shops: Iterable[Mapping]) -> list[ShopChange]:
    """What makes these shops (documents as sync.core.shops.Shop.to_document gives them) the demo's two, in the order
    to apply them (the default shop's rule first, or the new shop would overlap it); empty when they already are."""
    shops = list(shops)
    changes = []
    default = next(shop for shop in shops if shop.get("is_default"))
    if not _same_rule(default.get("rule"), DEFAULT_RULE):
        changes.append(ShopChange(default["code"], {"rule": dict(DEFAULT_RULE)}, create=False))
    pro = next((shop for shop in shops if shop["code"] == PRO_CODE), None)
    if pro is None:
        changes.append(ShopChange(PRO_CODE, {**PRO_SHOP, "rule": dict(PRO_SHOP["rule"])}, create=True))
        return changes
    patch = {} if _same_rule(pro.get("rule"), PRO_SHOP["rule"]) else {"rule": dict(PRO_SHOP["rule"])}
    if pro.get("name") != PRO_SHOP["name"]:
        patch["name"] = PRO_SHOP["name"]
    if patch:
        changes.append(ShopChange(PRO_CODE, patch, create=False))
    return changes


def order_key(souche: int, link_value: str) -> str:
    """A demo order's key as the middleware makes it once the shops are the demo's: `1001`, or `b2b:1001` in souche 1."""
    code = CODE_OF_SOUCHE.get(souche)
    return link_value if souche == DEFAULT_SOUCHE or code is None else f"{code}{KEY_SEPARATOR}{link_value}"
