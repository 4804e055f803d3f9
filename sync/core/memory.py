"""What we remember of a shop order (`OrderMemory`), and every rule that changes it.

Sage forgets what the shop still needs (a BL header and its parcel number vanish when the BL is invoiced, a BC
when it is fully transformed), and the shop must never get the same thing twice nor go backwards: so each shop
order keeps a memory between runs. A run concludes through `follow()` (sync/core/stages.py), which ends in
`remember_run`; what happens on the shop's side (a state set there, a tracking number written back to GesCom, what
a push wrote, a carrier value acted on) goes through the `note_…`/`remember_…` rules below.

Everything here is pure. sync/store/memory.py loads a memory from the stored shop order and saves it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sync.core.sage import DocumentType


@dataclass(frozen=True)
class OrderMemory:
    """Everything we remember of one shop order."""

    stage: str | None = None  # the stage reached: never moves backwards
    current_stage: str | None = None  # the stage GesCom shows now (may be lower than the stage reached)
    state_rank: int = -1  # rank of the last state produced
    states_sent: tuple[int, ...] = ()  # every state produced, or set in the shop: never produced again
    snapshot: dict = field(default_factory=dict)  # the last shop-facing values put into an update
    documents: dict = field(default_factory=dict)  # what each document showed ("3:BL00017" -> tracking, date, carrier)
    vanished_runs: int = 0  # runs in a row that found nothing of the order
    is_open: bool = True  # still re-read by the runs
    shop_state_id: int | None = None  # the state the shop last said the order is in
    shop_id_order: int | None = None  # push: the shop's id_order, once found
    shop_state_pushed: int | None = None  # push: the last state written to the shop
    shop_tracking: str | None = None  # push: the last tracking value written to the shop
    shop_tracking_seen: str | None = None  # poll: the last carrier value read in the shop that was acted on
    messages_sent: tuple[str, ...] = ()  # push: fingerprints of the back-office messages posted (never twice)


# --- the documents remembered ---------------------------------------------------------------------------


def remember_documents(documents: dict[str, dict], seen: dict[str, dict]) -> dict[str, dict]:
    """The documents after this look: present ones replace what we had, vanished ones are kept as last seen."""
    merged = {key: dict(value) for key, value in documents.items()}
    next_seq = max((value.get("seq", 0) for value in merged.values()), default=0) + 1
    for key, value in seen.items():
        before = merged.get(key, {})
        seq = before.get("seq")
        if seq is None:
            seq, next_seq = next_seq, next_seq + 1
        merged[key] = {**value, "seq": seq}
        if before.get("from_shop"):  # numbers the shop gave us stay marked as the shop's
            merged[key]["from_shop"] = before["from_shop"]
    return merged


def tracking_numbers(documents: dict[str, dict]) -> list[str]:
    """Every tracking number of the order, in the order first seen, each once."""
    ordered = sorted(documents.values(), key=lambda value: value.get("seq", 0))
    return unique(number for value in ordered for number in value.get("tracking", []))


def document_holding(documents: dict[str, dict], number: str) -> str | None:
    """The first document (as first seen) whose tracking numbers include `number`."""
    for key, entry in sorted(documents.items(), key=lambda item: item[1].get("seq", 0)):
        if number in entry.get("tracking", []):
            return key
    return None


def unique(values) -> list:
    """Each value once, in first-seen order, blanks dropped."""
    return list(dict.fromkeys(filter(None, values)))


# --- what a run concluded ---------------------------------------------------------------------------------


def remember_run(
    memory: OrderMemory,
    *,
    stage: str | None,
    current_stage: str | None,
    state: tuple[int, int] | None,
    snapshot: dict,
    documents: dict,
    vanished_runs: int,
    is_open: bool,
) -> OrderMemory:
    """What a run concluded (`follow`): the stage reached and the one GesCom shows, the state produced as
    (state id, rank) if any, the values sent, the documents seen, and whether the order is still followed."""
    state_id, state_rank = state if state is not None else (None, memory.state_rank)
    return replace(
        memory,
        stage=stage,
        current_stage=current_stage,
        state_rank=state_rank,
        states_sent=memory.states_sent + ((state_id,) if state_id is not None else ()),
        snapshot=snapshot,
        documents=documents,
        vanished_runs=vanished_runs,
        is_open=is_open,
    )


# --- what the shop tells us ---------------------------------------------------------------------------------


def note_shop_state(memory: OrderMemory, state_id: int, rank: int | None) -> OrderMemory:
    """The shop says the order is in `state_id` (often set by hand by the merchant), a state that ranks `rank` by the
    mapping (None: no stage maps to it). It counts as produced: never produced again, and no lower state follows it."""
    return replace(
        memory,
        shop_state_id=state_id,
        states_sent=memory.states_sent if state_id in memory.states_sent else (*memory.states_sent, state_id),
        state_rank=rank if rank is not None and rank > memory.state_rank else memory.state_rank,
    )


def remember_tracking_from_shop(memory: OrderMemory, seen: dict[str, dict], where: str, number: str, shipped_document_type: int) -> OrderMemory:
    """GesCom shows `number`, a number the shop told us, on document `where` now: remember it as the next run will,
    so that run finds no news in it.

    Only that document's entry changes: replaced, when the document is present (`seen`: what each present
    document shows), by what the run will observe (a document new to us gets the next seq), with the number, and
    the numbers the shop told us under "from_shop". The shop-facing snapshot gains the number (tracking numbers,
    and the delivery of that document), nothing else: whatever else changed in GesCom is still news for the run.
    """
    entry = dict(remember_documents(memory.documents, seen)[where])
    if number not in entry.get("tracking", []):
        entry["tracking"] = [*entry.get("tracking", []), number]
    entry["from_shop"] = unique([*memory.documents.get(where, {}).get("from_shop", []), number])
    documents = {key: dict(value) for key, value in memory.documents.items()}
    documents[where] = entry
    return replace(memory, documents=documents, snapshot=_snapshot_with(memory.snapshot, entry, number, shipped_document_type))


def _snapshot_with(snapshot: dict, entry: dict, number: str, shipped_document_type: int) -> dict:
    """The snapshot with `number` where the next run will put it: the order's tracking numbers, and the numbers of
    the delivery made by the document `entry` (in the document's own order, header before lines, others kept)."""
    snapshot = dict(snapshot)
    if "tracking_numbers" in snapshot and number not in (snapshot["tracking_numbers"] or []):
        snapshot["tracking_numbers"] = [*(snapshot["tracking_numbers"] or []), number]
    if snapshot.get("deliveries") and shipped_document_type <= entry["type"] <= DocumentType.BON_DE_LIVRAISON:
        deliveries = []
        for delivery in snapshot["deliveries"]:
            old = delivery.get("tracking_numbers") or []
            if delivery.get("piece") == entry["piece"] and number not in old:
                ordered = [n for n in entry["tracking"] if n == number or n in old]
                delivery = {**delivery, "tracking_numbers": unique([*ordered, *old])}
            deliveries.append(delivery)
        snapshot["deliveries"] = deliveries
    return snapshot


def note_shop_tracking_seen(memory: OrderMemory, value: str) -> OrderMemory:
    """A tracking value read on the shop's carrier row was acted on (written to GesCom, found there, or refused for
    good): the poll does not act on it again."""
    return replace(memory, shop_tracking_seen=value)


# --- what a push wrote in the shop ---------------------------------------------------------------------------


def note_shop_order(memory: OrderMemory, shop_id_order: int) -> OrderMemory:
    """The shop's own id_order for this order, found by id or by reference."""
    return replace(memory, shop_id_order=shop_id_order)


def note_tracking_pushed(memory: OrderMemory, value: str) -> OrderMemory:
    """The shop's carrier row holds `value` now (written by us, or already there)."""
    return replace(memory, shop_tracking=value)


def note_state_pushed(memory: OrderMemory, state_id: int) -> OrderMemory:
    """The shop's order is in `state_id` now, by our doing (posted, or found already there)."""
    return replace(memory, shop_state_pushed=state_id)


def note_messages_sent(memory: OrderMemory, fingerprints: list[str]) -> OrderMemory:
    """These back-office messages are in the shop now (posted, or found there): never posted again."""
    return replace(memory, messages_sent=(*memory.messages_sent, *(f for f in fingerprints if f not in memory.messages_sent)))
