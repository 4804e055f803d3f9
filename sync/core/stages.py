"""Pure logic: a shop order's GesCom document chain -> stage, tracking numbers, deliveries, and the next update.

No I/O here. The GesCom adapter builds `Chain`s; the run service feeds them, with what we remembered of the
order (`OrderMemory`, sync/core/memory.py), to `follow()`, which returns the new memory and the update to store, if any.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import Enum
from functools import cache
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING

from sync.core.memory import OrderMemory, remember_documents, remember_run, tracking_numbers, unique
from sync.core.sage import DOWN_PAYMENT_PROVENANCE, INVOICE_TYPES, RETURN_PROVENANCES, RETURN_TYPES, DocumentType

if TYPE_CHECKING:
    from sync.core.settings import Settings  # the settings module builds on the stages: typed here only


class Stage(str, Enum):
    ORDERED = "ordered"
    IN_PREPARATION = "in_preparation"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    INVOICED = "invoiced"
    RETURNED = "returned"
    CANCELLED = "cancelled"


# The way forward. Cancelled stands apart: reachable only before anything was shipped.
PROGRESSION = (
    Stage.ORDERED,
    Stage.IN_PREPARATION,
    Stage.PARTIALLY_SHIPPED,
    Stage.SHIPPED,
    Stage.INVOICED,
    Stage.RETURNED,
)
STAGES = PROGRESSION + (Stage.CANCELLED,)
TERMINAL_STAGES = frozenset({Stage.INVOICED, Stage.RETURNED, Stage.CANCELLED})
# How many consecutive runs must find nothing left of an order before we call it cancelled: a half-done
# transformation read between two statements must not mail a customer that their order is cancelled.
CANCEL_CONFIRMATIONS = 2


# Every stage by member and by value (an Enum member hashes by its name, not as its value): a run ranks each order's
# stages many times.
_RANKS: dict = {None: -1, Stage.CANCELLED: len(PROGRESSION), Stage.CANCELLED.value: len(PROGRESSION)}
_RANKS.update({stage: index for index, stage in enumerate(PROGRESSION)} | {stage.value: index for index, stage in enumerate(PROGRESSION)})


def rank(stage: Stage | str | None) -> int:
    """Position of a stage on the way forward (-1 for none)."""
    found = _RANKS.get(stage)
    return found if found is not None else _RANKS[Stage(stage)]  # Stage() raises ValueError on what is not a stage


def can_reach(reached: Stage | str | None, new: Stage) -> bool:
    """Whether an order that reached `reached` may move to `new` (never backwards; cancel only before shipping)."""
    if reached is not None and Stage(reached) is Stage.CANCELLED:
        return False
    if new is Stage.CANCELLED:
        return rank(reached) < rank(Stage.PARTIALLY_SHIPPED)
    return rank(new) > rank(reached)


@dataclass(frozen=True)
class Line:
    """A document line as it stands now (lines move between documents when Sage transforms them)."""

    doc_type: int
    piece: str
    sku: str = ""
    name: str = ""
    quantity: Decimal = Decimal(0)
    origin_piece: str = ""  # DL_PieceBC: the bon de commande the line came from
    piece_pl: str = ""
    piece_bl: str = ""
    tracking: str = ""  # value of the configured line field (e.g. DL_NoColis)
    date_bl: date | None = None
    countable: bool = True  # False for kit components, technical discounts, carriage, "not delivered" lines
    position: int = 0
    marq: int = 0

    @property
    def is_goods(self) -> bool:
        """Counts when judging completeness: an article (comment lines have none) that is not technical."""
        return bool(self.sku) and self.countable

    @property
    def doc_key(self) -> str:
        return f"{self.doc_type}:{self.piece}"


@dataclass(frozen=True)
class Document:
    """A document header present in GesCom."""

    doc_type: int
    piece: str
    date: date | None = None
    marq: int = 0
    tracking: str = ""  # value of the configured header field (Entête 1-4 or a free field)
    carrier: str | None = None
    provenance: int = 0
    delivered_on: date | None = None  # DO_DateLivrRealisee when the base has it and it is filled

    @property
    def key(self) -> str:
        return f"{self.doc_type}:{self.piece}"

    @property
    def is_down_payment(self) -> bool:
        """A facture d'acompte: an invoice made for a payment received, not for goods shipped."""
        return self.doc_type in INVOICE_TYPES and self.provenance == DOWN_PAYMENT_PROVENANCE


@dataclass
class Chain:
    """Every document header and line of one shop order found in GesCom now."""

    documents: list[Document] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not self.documents and not self.lines

    def goods(self) -> list[Line]:
        """The lines that count when judging what was shipped: goods, not on a down-payment invoice."""
        down_payments = {d.key for d in self.documents if d.provenance == DOWN_PAYMENT_PROVENANCE and d.doc_type in INVOICE_TYPES}  # is_down_payment
        if not down_payments:
            return [line for line in self.lines if line.sku and line.countable]
        return [line for line in self.lines if line.is_goods and line.doc_key not in down_payments]


@cache
def _shipped_types(shipped_document_type: int) -> frozenset[int]:
    first = DocumentType(shipped_document_type)
    return frozenset(t for t in range(first, DocumentType.BON_DE_LIVRAISON + 1)) | INVOICE_TYPES


def stage_of(chain: Chain, shipped_document_type: int = DocumentType.BON_DE_LIVRAISON) -> Stage | None:
    """The stage the chain shows now; None when nothing at all is left of the order."""
    if chain.is_empty():
        return None
    provenance = {d.key: d.provenance for d in chain.documents}
    for line in chain.lines:
        if line.doc_type in RETURN_TYPES:
            return Stage.RETURNED
        if line.doc_type in INVOICE_TYPES and provenance.get(line.doc_key, 0) in RETURN_PROVENANCES:
            return Stage.RETURNED
    if any(d.doc_type in RETURN_TYPES for d in chain.documents):
        return Stage.RETURNED
    goods = chain.goods()
    if not goods:
        return Stage.ORDERED  # a header with comment lines only: nothing to ship yet
    shipped_types = _shipped_types(shipped_document_type)
    remaining = [line for line in goods if line.doc_type not in shipped_types]
    shipped = [line for line in goods if line.doc_type in shipped_types]
    if all(line.doc_type in INVOICE_TYPES for line in goods):
        return Stage.INVOICED
    if remaining:
        if shipped:
            return Stage.PARTIALLY_SHIPPED
        if any(line.doc_type == DocumentType.PREPARATION_DE_LIVRAISON for line in remaining):
            return Stage.IN_PREPARATION
        return Stage.ORDERED
    return Stage.SHIPPED


_SEPARATORS = re.compile(r"[;,|\r\n\t]+")


def split_tracking(value: str | None) -> list[str]:
    """Tracking numbers typed in one field ("6A1;6A2" is two parcels); blanks dropped."""
    if not value:
        return []
    return [part.strip() for part in _SEPARATORS.split(value) if part.strip()]


def observe(chain: Chain) -> dict[str, dict]:
    """What each present document shows now: its tracking numbers (header field + its lines), date, carrier."""
    seen: dict[str, dict] = {}
    for doc in chain.documents:
        day = doc.delivered_on or doc.date
        seen[doc.key] = {
            "type": doc.doc_type,
            "piece": doc.piece,
            "date": day.isoformat() if day else None,
            "carrier": doc.carrier,
            "tracking": split_tracking(doc.tracking),
        }
    from_lines: dict[str, list[str]] = {}  # a document's numbers on its lines, in line order
    in_order = sorted([(line.doc_key, line.position, line.marq, line.tracking) for line in chain.lines], key=_LINE_ORDER)
    for doc_key, _position, _marq, tracking in in_order:
        if doc_key in seen:
            from_lines.setdefault(doc_key, []).extend(split_tracking(tracking))
    for doc_key, numbers in from_lines.items():
        seen[doc_key]["tracking"] = unique(seen[doc_key]["tracking"] + numbers)
    return seen


def _delivery_piece(line: Line, shipped_document_type: int) -> str:
    """The shipping document a shipped line left with, also once that document was invoiced."""
    if line.doc_type in INVOICE_TYPES:
        if shipped_document_type == DocumentType.PREPARATION_DE_LIVRAISON and line.piece_pl:
            return f"{DocumentType.PREPARATION_DE_LIVRAISON}:{line.piece_pl}"
        if line.piece_bl:
            return f"{DocumentType.BON_DE_LIVRAISON}:{line.piece_bl}"
        return line.doc_key  # invoiced straight from the order: the invoice is the delivery
    shipped_by_preparation = shipped_document_type == DocumentType.PREPARATION_DE_LIVRAISON
    if line.doc_type == DocumentType.BON_DE_LIVRAISON and shipped_by_preparation and line.piece_pl:
        return f"{DocumentType.PREPARATION_DE_LIVRAISON}:{line.piece_pl}"
    return line.doc_key


_ZERO = Decimal(0)
_POSITION_ORDER = attrgetter("position", "marq")
_LINE_ORDER = itemgetter(0, 1, 2)


def deliveries_of(chain: Chain, documents: dict[str, dict], shipped_document_type: int) -> list[dict]:
    """One entry per shipment: piece, date, carrier, tracking numbers and what left (by article)."""
    shipped_types = _shipped_types(shipped_document_type)
    groups: dict[str, list[Line]] = {}
    for line in chain.goods():
        if line.doc_type in shipped_types:
            groups.setdefault(_delivery_piece(line, shipped_document_type), []).append(line)
    result = []
    for key, lines in groups.items():
        known = documents.get(key, {})
        quantities: dict[tuple[str, str], Decimal] = {}
        for line in sorted(lines, key=_POSITION_ORDER) if len(lines) > 1 else lines:
            article = (line.sku, line.name)
            quantities[article] = quantities.get(article, _ZERO) + line.quantity
        line_dates = [line.date_bl for line in lines if line.date_bl]
        day = known.get("date") or (max(line_dates).isoformat() if line_dates else None)
        result.append(
            {
                "piece": key.split(":", 1)[1],
                "date": day,
                "carrier": known.get("carrier"),
                "tracking_numbers": unique(list(known.get("tracking", [])) + [n for line in lines for n in split_tracking(line.tracking)]),
                "lines": [{"sku": sku, "name": name, "quantity": plain_number(quantity)} for (sku, name), quantity in quantities.items()],
            }
        )
    result.sort(key=lambda d: (d["date"] or "", d["piece"]))
    return result


def plain_number(quantity: Decimal) -> int | float:
    return int(quantity) if quantity == quantity.to_integral_value() else float(quantity)


def latest_piece(chain: Chain, deliveries: list[dict]) -> str | None:
    """The latest invoice number when there is one, else the latest delivery's."""
    invoices = sorted(
        (d for d in chain.documents if d.doc_type in INVOICE_TYPES and not d.is_down_payment),
        key=lambda d: (d.date or date.min, d.marq),
    )
    if invoices:
        return invoices[-1].piece
    return deliveries[-1]["piece"] if deliveries else None


# --- the next update -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShopUpdate:
    """What to tell the shop: the full current values of the fields switched on, and what changed."""

    stage: str | None
    state_id: int | None
    tracking_numbers: list[str] | None
    piece: str | None
    delivery_date: date | None
    deliveries: list[dict] | None
    changes: list[str]  # state, stage, tracking, piece, delivery_date, deliveries


@dataclass(frozen=True)
class Outcome:
    memory: OrderMemory  # what to remember now
    update: ShopUpdate | None  # what to send, when something changed


def _state_rank(stage: Stage, on_tracking: bool = False) -> int:
    """States are ranked by the stage they stand for. The tracking state (state_on_send) comes right after its
    stage's own state and before the next stage's: typing the parcel number is the later, more specific event."""
    return 3 * rank(stage) + (2 if on_tracking else 1)


def shop_state_rank(state_id: int, settings: Settings, reached: str | None) -> int | None:
    """The rank a state set in the shop stands for, by the mapping (None when no stage maps to it).

    A state the merchant sets by hand counts as produced: no state of an earlier stage may follow it.
    """
    ranks = [_state_rank(Stage(stage)) for stage, mapped in settings.stage_states.items() if mapped == state_id]
    if settings.tracking.state_on_send == state_id:
        ranks.append(_state_rank(Stage(reached) if reached else Stage.ORDERED, on_tracking=True))
    return max(ranks) if ranks else None


def _stages_passed(reached: str | None, new: Stage) -> list[Stage]:
    if new is Stage.CANCELLED:
        return [new]
    return list(PROGRESSION[rank(reached) + 1 : rank(new) + 1])  # a stage's rank is its place in PROGRESSION


def _comparable(key: str, value):
    """[] and null are no news; the same tracking numbers in another order are no news either."""
    if not value:
        return None
    return sorted(value) if key == "tracking_numbers" else value


def follow(chain: Chain, memory: OrderMemory, settings: Settings) -> Outcome:
    """Compare what GesCom shows now with what we remember; say what to remember and what to send."""
    current = stage_of(chain, settings.shipped_document_type)
    vanished_runs = 0 if current is not None else memory.vanished_runs + 1
    documents = remember_documents(memory.documents, observe(chain)) if current is not None else memory.documents
    stage = _stage_reached(memory.stage, current, vanished_runs)
    snapshot = _snapshot(chain, documents, memory.snapshot, settings, gone=current is None)
    state = _state_produced(memory, stage, snapshot, settings)
    changes = _changes(memory, stage, state, snapshot)
    new_memory = remember_run(
        memory,
        stage=stage,
        current_stage=current.value if current is not None else None,
        state=state,
        snapshot=snapshot,
        documents=documents,
        vanished_runs=vanished_runs,
        is_open=_still_open(stage, vanished_runs),
    )
    if not changes:
        return Outcome(memory=new_memory, update=None)
    delivery_date = snapshot.get("delivery_date")
    update = ShopUpdate(
        stage=stage,
        state_id=state[0] if state is not None else None,
        tracking_numbers=snapshot.get("tracking_numbers"),
        piece=snapshot.get("piece"),
        delivery_date=date.fromisoformat(delivery_date) if delivery_date else None,
        deliveries=snapshot.get("deliveries"),
        changes=changes,
    )
    return Outcome(memory=new_memory, update=update)


def _stage_reached(reached: str | None, current: Stage | None, vanished_runs: int) -> str | None:
    """The stage reached after this look: never backwards; cancelled once nothing was left for enough runs."""
    if current is None:
        new = Stage.CANCELLED if vanished_runs >= CANCEL_CONFIRMATIONS else None
    else:
        new = current
    return new.value if new is not None and can_reach(reached, new) else reached


def _still_open(stage: str | None, vanished_runs: int) -> bool:
    """Whether runs keep re-reading the order. One gone from GesCom after it shipped cannot be cancelled: after the
    confirmation runs, stop looking (a new document carrying its link value brings it back)."""
    if vanished_runs >= CANCEL_CONFIRMATIONS:
        return False
    return stage is None or Stage(stage) not in TERMINAL_STAGES


def _snapshot(chain: Chain, documents: dict, previous: dict, settings: Settings, *, gone: bool) -> dict:
    """The shop-facing values: only what the settings send. When nothing is left in GesCom, the last ones stand."""
    wanted = {
        "tracking_numbers": settings.tracking.send,
        "piece": settings.options.send_piece_number,
        "delivery_date": settings.options.send_delivery_date,
        "deliveries": settings.options.send_delivery_details,
    }
    if gone:
        return {key: previous.get(key) for key, on in wanted.items() if on}
    deliveries = deliveries_of(chain, documents, settings.shipped_document_type)
    dates = [d["date"] for d in deliveries if d["date"]]
    values = {
        "tracking_numbers": tracking_numbers(documents),
        "piece": latest_piece(chain, deliveries),
        "delivery_date": max(dates) if dates else None,
        "deliveries": deliveries,
    }
    return {key: values[key] for key, on in wanted.items() if on}


def _state_produced(memory: OrderMemory, stage: str | None, snapshot: dict, settings: Settings) -> tuple[int, int] | None:
    """(state id, rank) to produce: the latest mapped stage passed since last time, or the tracking state; never
    twice, never back. None when there is none."""
    candidates: list[tuple[int, int]] = []
    if stage != memory.stage and stage is not None:
        for passed in _stages_passed(memory.stage, Stage(stage)):
            state_id = settings.stage_states.get(passed.value)
            if state_id is not None:
                candidates.append((_state_rank(passed), state_id))
    tracking_state = settings.tracking.state_on_send
    first_tracking = settings.tracking.send and snapshot.get("tracking_numbers") and not memory.snapshot.get("tracking_numbers")
    if first_tracking and tracking_state is not None and stage is not None:
        candidates.append((_state_rank(Stage(stage), on_tracking=True), tracking_state))
    if not candidates:
        return None
    best_rank, best_state = max(candidates)
    if best_rank > memory.state_rank and best_state not in memory.states_sent:
        return best_state, best_rank
    return None


def _changes(memory: OrderMemory, stage: str | None, state: tuple[int, int] | None, snapshot: dict) -> list[str]:
    """What changed since the last update: its `changes` list."""
    changes = []
    if state is not None:
        changes.append("state")
    if stage != memory.stage:
        changes.append("stage")
    for key, change in (("tracking_numbers", "tracking"), ("piece", "piece"), ("delivery_date", "delivery_date"), ("deliveries", "deliveries")):
        if key in snapshot and _comparable(key, snapshot[key]) != _comparable(key, memory.snapshot.get(key)):
            changes.append(change)
    return changes
