"""What we know of one shop order: its documents in GesCom now, its stage, tracking numbers and timeline."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import OrderEvent, ShopOrder, Update
from models.shops import Shop
from sync.core.memory import tracking_numbers
from sync.core.sage import ABBREVIATIONS
from sync.core.settings import SettingsError
from sync.core.stages import plain_number
from sync.gescom.adapter import GesCom, GesComError
from sync.gescom.settings_check import check_settings
from sync.services.runs import id_order_of, load_chains
from sync.store.memory import load_memory
from sync.store.settings import load_settings
from sync.store.shops import pushes, stored_shops


def _documents(chain) -> list[dict]:
    lines_of: dict[str, list] = {}
    for line in sorted(chain.lines, key=lambda line: (line.position, line.marq)):
        lines_of.setdefault(line.doc_key, []).append(line)
    documents = []
    for doc in sorted(chain.documents, key=lambda d: (d.doc_type, d.date.isoformat() if d.date else "", d.piece)):
        documents.append(
            {
                "type": doc.doc_type,
                "type_name": ABBREVIATIONS.get(doc.doc_type, str(doc.doc_type)),
                "piece": doc.piece,
                "date": doc.date.isoformat() if doc.date else None,
                "carrier": doc.carrier,
                "tracking": doc.tracking or None,
                "lines": [
                    {"sku": line.sku, "name": line.name, "quantity": plain_number(line.quantity), "origin_piece": line.origin_piece or None}
                    for line in lines_of.get(doc.key, [])
                ],
            }
        )
    return documents


def shop_order_key(session: Session, gescom: GesCom, text: str) -> str:
    """A shop order key typed by a person or sent by a client, made the way runs make keys: a shop's code as it is
    (codes are lower case), then its link value by the base's key rule (`GesCom.order_key`)."""
    settings = load_settings(session)
    return stored_shops(session).typed_key(text, lambda link_value: gescom.order_key(link_value, settings))


def order_view(session: Session, gescom: GesCom, order_key: str, *, push_mode: bool = False, connections=None) -> dict | None:
    """None when we do not follow this order. GesCom being down only hides the live documents.

    `push_mode`: the order's shop is connected, which `connections` (the app's ShopConnections) tell when given; without
    a connection, no update is ever pushed and `to_shop.push` is null.
    """
    order_key = shop_order_key(session, gescom, order_key)
    order = session.scalar(select(ShopOrder).where(ShopOrder.order_key == order_key))
    if order is None:
        return None
    stored = load_settings(session, order.shop_id)
    shop = session.get(Shop, order.shop_id)
    if connections is not None:
        push_mode = pushes(shop, connections)
    memory = load_memory(order)
    view = {
        "order_key": order.order_key,
        "shop": shop.code,
        "id_order": order.id_order,
        "stage": memory.stage,
        "current_stage": memory.current_stage,
        "is_open": memory.is_open,
        "shop_state_id": memory.shop_state_id,
        "tracking_numbers": tracking_numbers(memory.documents),
        "bc_pieces": sorted(piece.piece for piece in order.pieces),
        "first_seen_at": order.first_seen_at.isoformat() + "Z",
        "checked_at": order.checked_at.isoformat() + "Z",
        "documents": None,
        "gescom_error": None,
    }
    try:
        settings = check_settings(stored.to_document(), gescom.schema())
        with gescom.connect() as conn:
            carriers, carriage = gescom.carriers(conn)
            loaded, _ = load_chains(session, gescom, conn, settings, [order_key], carriers, carriage, orders={order_key: order})
        if order_key in loaded.malformed:
            view["gescom_error"] = loaded.malformed[order_key]
        else:
            view["documents"] = _documents(loaded.chains[order_key])
    except (GesComError, SettingsError) as error:
        view["gescom_error"] = str(error)
    view["timeline"] = _timeline(session, order_key, push_mode)
    return view


def _timeline(session: Session, order_key: str, push_mode: bool) -> list[dict]:
    """The order's updates (with how they went to the shop: pulled or pushed) and events, oldest first."""
    timeline = []
    for update in session.scalars(select(Update).where(Update.order_key == order_key).order_by(Update.id)):
        entry = update.to_dict()
        timeline.append(
            {
                "at": entry["created_at"],
                "kind": "update",
                "update": entry,
                "to_shop": {
                    # Pull: the module acknowledged it. Push: what pushing it through the webservice gave.
                    "status": "acknowledged" if update.acked_at else "pending",
                    "acked_at": entry["acked_at"],
                    "push": None
                    if not push_mode
                    else {
                        "status": update.push_status,
                        "attempts": update.push_attempts,
                        "error": update.push_error,
                        "answer": update.push_answer,
                        "pushed_at": update.pushed_at.isoformat() + "Z" if update.pushed_at else None,
                        "next_attempt_at": update.next_attempt_at.isoformat() + "Z" if update.next_attempt_at else None,
                    },
                },
            }
        )
    for event in session.scalars(select(OrderEvent).where(OrderEvent.order_key == order_key).order_by(OrderEvent.id)):
        timeline.append({"at": event.created_at.isoformat() + "Z", "kind": event.kind, "data": event.data})
    timeline.sort(key=lambda entry: entry["at"])
    return timeline


def find_order_keys(session: Session, gescom: GesCom, text: str) -> tuple[list[str], list[str]]:
    """Shop orders a person means by `text`: (followed keys, keys seen in GesCom but not followed yet).

    First the link value exactly, then the PrestaShop id_order, then the reference: GesCom headers whose DO_Ref
    is `text`, mapped to their link values. Raises GesComError when GesCom has to be read and cannot be.
    """
    text = text.strip()
    if not text:
        return [], []
    stored = load_settings(session)
    key = shop_order_key(session, gescom, text)
    if session.scalar(select(ShopOrder.order_key).where(ShopOrder.order_key == key)) is not None:
        return [key], []
    id_order = id_order_of(text)
    if id_order is not None:
        keys = list(session.scalars(select(ShopOrder.order_key).where(ShopOrder.id_order == id_order).order_by(ShopOrder.id)))
        if keys:
            return keys, []
    try:
        settings = check_settings(stored.to_document(), gescom.schema())
    except SettingsError as error:
        raise GesComError(f"the settings do not match GesCom: {error}") from error
    with gescom.connect() as conn:
        found = gescom.keys_by_reference(conn, settings, text, claims=stored_shops(session).claims)
    followed = set(session.scalars(select(ShopOrder.order_key).where(ShopOrder.order_key.in_(found)))) if found else set()
    return [key for key in found if key in followed], [key for key in found if key not in followed]


def recently_updated(session: Session, limit: int = 10) -> list[ShopOrder]:
    """The shop orders that got an update last, newest first."""
    return list(session.scalars(select(ShopOrder).order_by(ShopOrder.updated_at.desc(), ShopOrder.id.desc()).limit(limit)))
