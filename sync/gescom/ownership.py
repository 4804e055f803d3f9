"""Whose is a line? The rules that attribute the lines of a document to a shop order (pure, no SQL).

A header carries one link value, but a line keeps the number of its bon de commande (`DL_PieceBC`), and Sage
may put several orders' lines into one document: most often one invoice made from the BLs of several orders,
whose header carries only one of their link values. A chain read asks, for each line of a document whose
header carries the order's link value (the document's owner): is this line that order's? (docs/concepts.md,
"The document chain", steps 3 and 4.)
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from enum import Enum

from sync.core.sage import INVOICE_TYPES, DocumentType


class Verdict(Enum):
    """Whose a line is, as far as its own document tells."""

    OURS = "ours"  # the owner's line
    LEARNED = "learned"  # the owner's line, and its BC number (never seen before) is the owner's too
    ANOTHER_ORDER = "another order"  # its BC belongs to another shop order of the batch: read with that order
    UNDECIDED = "undecided"  # on an invoice, from a BC no order of the batch has: `invoice_origins` decides


class UndecidedInvoice(ValueError):
    """An invoice groups lines of several BCs nobody claims, and nothing tells which are the owner's."""


def whose_line(doc_type: int, origin: str, own_pieces: Collection[str], batch_pieces: Collection[str]) -> Verdict:
    """The verdict on one line (its document's type, its BC number `origin`) of a document the order owns.

    `own_pieces`: the order's BC numbers; `batch_pieces`: the BC numbers of every order read with it."""
    if doc_type == DocumentType.BON_DE_COMMANDE or not origin or origin in own_pieces:
        return Verdict.OURS  # a BC's own line, a line typed without a BC (a BL made by hand), a line of its BCs
    if origin in batch_pieces:
        return Verdict.ANOTHER_ORDER  # a grouped document
    if doc_type in INVOICE_TYPES:
        return Verdict.UNDECIDED  # maybe a grouped invoice: decided once all its lines are read
    return Verdict.LEARNED  # a PL, BL, return... of the order from a BC gone already: all of that BC's lines are its


def invoice_origins(
    owner: str,
    invoice: str,
    lines: Iterable[tuple[str, str]],
    header_reference: str,
    claimed: Mapping[str, str],
    decided: Collection[str],
) -> set[str]:
    """The BC numbers whose lines on `invoice` are the `owner` order's, among its undecided lines.

    `lines`: (BC number, the line's DO_Ref) of the undecided lines; `header_reference`: the invoice header's DO_Ref;
    `claimed`: BC number -> the shop order our store knows it belongs to; `decided`: BC numbers already attributed
    in this read. A BC claimed by another order, or decided, is not the owner's. One BC left: the owner's. Several:
    those whose lines carry the header's DO_Ref, if that is exactly one BC (a line keeps its order's reference,
    the header shows one). Still several: raises UndecidedInvoice, for the order is skipped rather than guessed.
    """
    lines = [(origin, reference) for origin, reference in lines if claimed.get(origin, owner) == owner and origin not in decided]
    origins = {origin for origin, _ in lines}
    if len(origins) > 1 and header_reference:
        matching = {origin for origin, reference in lines if reference == header_reference}
        origins = matching if len(matching) == 1 else origins
    if len(origins) > 1:
        raise UndecidedInvoice(
            f"invoice {invoice} groups lines of several orders we have not seen ({', '.join(sorted(origins))}) "
            "and nothing tells which are this order's"
        )
    return origins
