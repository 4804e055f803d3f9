"""The demo's store set-up: its two shops (the default one claims souche 0, `b2b` souche 1), made idempotently."""

from __future__ import annotations

from sqlalchemy.orm import Session

from sync.gescom.demo.shops import demo_shop_changes
from sync.store.shops import core_shop, create_shop, list_shops, update_shop


def demo_shops(session: Session) -> list[str]:
    """Make the store's shops the demo's two; returns the codes of the shops changed (none when they already are).
    Raises sync.core.shops.ShopError when other shops stand in the way. The caller commits."""
    changes = demo_shop_changes(core_shop(row).to_document() for row in list_shops(session))
    for change in changes:
        if change.create:
            create_shop(session, change.document)
        else:
            update_shop(session, change.code, change.document)
    return [change.code for change in changes]
