"""A tracking number the shop knows, written back onto the order's GesCom document (Sage reference §8.4).

`write_tracking` is the one service every face (API, CLI) shares. It writes into the configured header field
of the order's latest bon de livraison, else préparation, else bon de commande, and only when that field is
empty: a number typed in Sage is never overwritten, an invoice (types 6/7, anti-fraud hash) never touched.
Then it remembers the number as GesCom's, so the next run does not send it back to the shop as news.

Failures are `WriteBackError`s carrying the HTTP `status` the API answers with and a stable `code`.
GesCom unreachable raises `GesComError` (the API answers 503).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import OrderEvent, ShopOrder
from models.shops import DEFAULT_SHOP_ID
from sync.core.memory import document_holding, remember_documents, remember_tracking_from_shop
from sync.core.sage import STANDARD_TRACKING_HEADER_FIELDS, DocumentType
from sync.core.settings import Settings, SettingsError
from sync.core.stages import Chain, Document, observe, split_tracking
from sync.gescom.adapter import GesCom, GesComBusy
from sync.gescom.settings_check import check_settings
from sync.services.orders import shop_order_key
from sync.services.runs import load_chains
from sync.store.memory import load_memory, save_memory
from sync.store.settings import load_settings
from sync.store.shops import order_shop_id

# PrestaShop's order_carrier.tracking_number is 64 characters wide.
SHOP_TRACKING_LENGTH = 64
# PrestaShop's Validate::isTrackingNumber set, without ",": our reader splits a field on ; , | tab and newlines.
ALLOWED_CHARACTERS = "A-Z a-z 0-9 and space _ - . / # : + @ ( ) = ? ~ % &"
_ALLOWED = re.compile(r"[A-Za-z0-9 _\-./#:+@()=?~%&]+")
# Preferred target among the documents left: the latest BL, else the latest PL, else the BC.
_PREFERENCE = (DocumentType.BON_DE_LIVRAISON, DocumentType.PREPARATION_DE_LIVRAISON, DocumentType.BON_DE_COMMANDE)
EVENT_KIND = "tracking_from_shop"


@dataclass(frozen=True)
class WriteResult:
    order_key: str
    document: dict  # {"type": int, "piece": str}: the document that holds the number
    field: str  # the configured header field (the column written, or that would have been)
    tracking_number: str
    changed: bool  # False: GesCom already showed this number for the order, nothing was written


class WriteBackError(Exception):
    """The number was not written. `status` is the HTTP status the API answers with, `code` a stable name."""

    status = 500
    code = "write_back_failed"


class UnknownOrder(WriteBackError):
    status, code = 404, "order_not_found"


class ImportDisabled(WriteBackError):
    status, code = 409, "tracking_import_disabled"


class NoHeaderField(WriteBackError):
    status, code = 409, "no_tracking_header_field"


class HeaderFieldNotWritable(WriteBackError):
    """The configured header field is neither Entête 1-4 nor an information libre: it is read, never written."""

    status, code = 409, "tracking_header_field_not_writable"


class SettingsMismatch(WriteBackError):
    """The stored settings no longer match GesCom (a column dropped or renamed in Sage)."""

    status, code = 409, "settings_do_not_match_gescom"


class UnreadableOrder(WriteBackError):
    """The order's rows in GesCom cannot be read (the run skips it too, with the same reason)."""

    status, code = 409, "order_unreadable"


class InvalidTrackingNumber(WriteBackError):
    status, code = 422, "invalid_tracking_number"
    field = "tracking_number"  # the request field at fault, for the API's problem document


class OnlyInvoicesLeft(WriteBackError):
    status, code = 422, "only_invoices_left"


class FieldAlreadyFilled(WriteBackError):
    """`existing` is what the GesCom `column` of `document` holds. (No `field` attribute: that names a request
    field at fault, and the request is not at fault here.)"""

    status, code = 409, "tracking_field_not_empty"

    def __init__(self, message: str, *, existing: str, document: dict, column: str):
        super().__init__(message)
        self.existing, self.document, self.column = existing, document, column


class DocumentBusy(WriteBackError):
    status, code = 409, "document_busy"

    def __init__(self, message: str, *, document: dict):
        super().__init__(message)
        self.document = document


def check_tracking_number(value, width: int | None, field: str) -> str:
    """The number, stripped, if the shop and the GesCom column can both hold it; else InvalidTrackingNumber."""
    if not isinstance(value, str):
        raise InvalidTrackingNumber("the tracking number must be a string")
    number = value.strip()
    if not number:
        raise InvalidTrackingNumber("the tracking number is empty")
    if not number.isascii():
        odd = sorted({c for c in number if not c.isascii()})
        raise InvalidTrackingNumber(f"the tracking number has non-ASCII characters ({' '.join(map(repr, odd))}); allowed: {ALLOWED_CHARACTERS}")
    if not _ALLOWED.fullmatch(number):
        odd = sorted({c for c in number if not _ALLOWED.fullmatch(c)})
        raise InvalidTrackingNumber(
            f"the tracking number has characters that are not allowed ({' '.join(map(repr, odd))}); allowed: {ALLOWED_CHARACTERS}"
        )
    if len(number) > SHOP_TRACKING_LENGTH:
        raise InvalidTrackingNumber(f"the tracking number is {len(number)} characters long; the shop holds at most {SHOP_TRACKING_LENGTH}")
    if width is not None and len(number) > width:
        raise InvalidTrackingNumber(f"the tracking number is {len(number)} characters long; GesCom field {field} holds at most {width}")
    return number


def target_document(chain: Chain) -> Document | None:
    """The document to write on: the latest BL, else the latest PL, else the BC; never an invoice."""
    for doc_type in _PREFERENCE:
        candidates = [d for d in chain.documents if d.doc_type == doc_type]
        if candidates:
            return max(candidates, key=lambda d: (d.date or date.min, d.marq))
    return None


def _ref(doc_type: int, piece: str) -> dict:
    return {"type": int(doc_type), "piece": piece}


def write_tracking(session: Session, gescom: GesCom, order_key: str, tracking_number: str, *, source: str = "api") -> WriteResult:
    """Write `tracking_number` onto the order's GesCom document and remember it as GesCom's. GesCom's write is
    committed at once in its own guarded transaction; what our store remembers of it is left to the caller's
    (committed with, say, the request's idempotency record).

    Idempotent: when GesCom already shows the number for the order (in the target field, or on any of its
    documents now or remembered, e.g. a number the shop got from us and sends back) nothing is written and
    `changed` is False. An OrderEvent "tracking_from_shop" is recorded when GesCom was written, or the first
    time the shop tells this number for the order; a repeat of the same request records nothing more.
    """
    order_key = shop_order_key(session, gescom, order_key)
    stored = load_settings(session, order_shop_id(session, order_key) or DEFAULT_SHOP_ID)
    settings, order = _writable(session, gescom, order_key, stored)
    field = settings.tracking.header_field
    number = check_tracking_number(tracking_number, gescom.schema().header[field].length, field)

    with gescom.connect() as conn:
        chain = _chain(session, gescom, conn, settings, order_key)
        memory = load_memory(order)
        known = document_holding(remember_documents(memory.documents, observe(chain)), number)
        if known is not None:
            where, changed = known, False
        else:
            target = _target(order_key, chain)
            where, changed, holds = target.key, *_write(gescom, conn, order_key, target, field, number)
            # The chain as it stands now, with the target's header field as written.
            chain = replace(chain, documents=[replace(d, tracking=holds) if d.key == where else d for d in chain.documents])

    memory = remember_tracking_from_shop(memory, observe(chain), where, number, settings.shipped_document_type)
    save_memory(order, memory)
    document = _ref(memory.documents[where]["type"], memory.documents[where]["piece"])
    if changed or not _told_before(session, order_key, number):
        session.add(
            OrderEvent(
                order_key=order_key,
                kind=EVENT_KIND,
                data={"tracking_number": number, "document": document, "field": field, "changed": changed, "source": source},
            )
        )
    session.flush()
    return WriteResult(order_key=order_key, document=document, field=field, tracking_number=number, changed=changed)


def _writable(session: Session, gescom: GesCom, order_key: str, stored: Settings) -> tuple[Settings, ShopOrder]:
    """The settings, checked against GesCom, and the followed shop order, when the settings allow writing back."""
    if not stored.tracking.import_from_shop:
        raise ImportDisabled("importing tracking numbers from the shop is off (settings tracking.import_from_shop)")
    if not stored.tracking.header_field:
        raise NoHeaderField("no GesCom header field is configured for tracking numbers (settings tracking.header_field)")
    order = session.scalars(select(ShopOrder).where(ShopOrder.order_key == order_key).execution_options(populate_existing=True)).first()
    if order is None:
        raise UnknownOrder(f"no shop order {order_key!r} is followed")
    schema = gescom.schema()
    try:
        settings = check_settings(stored.to_document(), schema)
    except SettingsError as error:
        raise SettingsMismatch(f"the settings no longer match GesCom: {error}") from error
    field = settings.tracking.header_field
    if field not in STANDARD_TRACKING_HEADER_FIELDS and not schema.header[field].free:
        names = ", ".join(STANDARD_TRACKING_HEADER_FIELDS)
        raise HeaderFieldNotWritable(f"{field} is read, never written: only {names} or an information libre is written back")
    return settings, order


def _chain(session: Session, gescom: GesCom, conn, settings: Settings, order_key: str) -> Chain:
    """The order's chain as GesCom shows it now; the read's transaction ended (the write runs in its own)."""
    carriers, carriage = gescom.carriers(conn)
    loaded, _ = load_chains(session, gescom, conn, settings, [order_key], carriers, carriage)
    conn.rollback()
    if order_key in loaded.malformed:
        raise UnreadableOrder(f"shop order {order_key} cannot be read in GesCom: {loaded.malformed[order_key]}")
    return loaded.chains[order_key]


def _target(order_key: str, chain: Chain) -> Document:
    """The document to write on; OnlyInvoicesLeft when there is none."""
    target = target_document(chain)
    if target is None:
        present = ", ".join(d.key for d in chain.documents) or "none"
        raise OnlyInvoicesLeft(
            f"shop order {order_key} has no bon de commande, préparation or bon de livraison left in GesCom "
            f"(documents: {present}); invoices are never written"
        )
    return target


def _write(gescom: GesCom, conn, order_key: str, target: Document, field: str, number: str) -> tuple[bool, str]:
    """Fill the target's empty header field with `number`: (whether we wrote it, what the field holds now)."""
    existing = target.tracking.strip()
    if existing:
        raise _filled(order_key, existing, _ref(target.doc_type, target.piece), field)
    try:
        written = gescom.fill_header_field(conn, target.doc_type, target.piece, target.marq, field, number)
    except GesComBusy as error:  # a lock held too long, or Sage's triggers refusing a locked record
        raise DocumentBusy(
            f"document {target.key} of shop order {order_key} is held by a Sage user or transaction; retry later ({error})",
            document=_ref(target.doc_type, target.piece),
        ) from error
    if written == 1:
        return True, number
    return False, _after_refusal(gescom, conn, order_key, target, field, number)


def _filled(order_key: str, existing: str, document: dict, field: str) -> FieldAlreadyFilled:
    return FieldAlreadyFilled(
        f"{field} of document {document['type']}:{document['piece']} (shop order {order_key}) already holds "
        f"{existing!r}: a number typed in Sage is never overwritten",
        existing=existing,
        document=document,
        column=field,
    )


def _after_refusal(gescom: GesCom, conn, order_key: str, target: Document, field: str, number: str) -> str:
    """The guarded UPDATE changed nothing: tell why from the row as it stands now.

    Returns the field's value when it holds `number` (written meanwhile by another request or a Sage user).
    """
    document = _ref(target.doc_type, target.piece)
    now = gescom.header_field(conn, target.marq, field)
    conn.rollback()
    if now is not None and (now[0], now[1]) == (target.doc_type, target.piece):
        existing = now[2].strip()
        if number in split_tracking(existing):
            return existing
        if existing:
            raise _filled(order_key, existing, document, field)
    raise DocumentBusy(
        f"document {target.key} of shop order {order_key} could not be written: it was transformed, deleted "
        "or is open in Sage meanwhile; retry later",
        document=document,
    )


def _told_before(session: Session, order_key: str, number: str) -> bool:
    events = session.scalars(select(OrderEvent).where(OrderEvent.order_key == order_key, OrderEvent.kind == EVENT_KIND))
    return any((event.data or {}).get("tracking_number") == number for event in events)


__all__ = [
    "WriteResult",
    "WriteBackError",
    "UnknownOrder",
    "ImportDisabled",
    "NoHeaderField",
    "HeaderFieldNotWritable",
    "SettingsMismatch",
    "UnreadableOrder",
    "InvalidTrackingNumber",
    "OnlyInvoicesLeft",
    "FieldAlreadyFilled",
    "DocumentBusy",
    "check_tracking_number",
    "target_document",
    "write_tracking",
]
