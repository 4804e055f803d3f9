"""Pure stage logic: the Sage reference's worked example (§6.5) and every rule of `follow()`."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

import pytest

from sync.core.memory import OrderMemory, remember_documents, tracking_numbers
from sync.core.sage import as_date
from sync.core.settings import Settings
from sync.core.stages import (
    Chain,
    Document,
    Line,
    Stage,
    can_reach,
    deliveries_of,
    follow,
    observe,
    split_tracking,
    stage_of,
)


def line(doc_type, piece, sku="TSHIRT-M", qty=1, origin="", **extra) -> Line:
    return Line(doc_type=doc_type, piece=piece, sku=sku, name=sku.title(), quantity=Decimal(qty), origin_piece=origin, **extra)


def doc(doc_type, piece, day=date(2024, 5, 2), **extra) -> Document:
    return Document(doc_type=doc_type, piece=piece, date=day, **extra)


def configured(**document) -> Settings:
    """The default settings with these parts of the settings document changed."""
    return Settings.from_document(document)


# --- The worked example: BC00042, 3 x TSHIRT-M + 1 x MUG -------------------------------------------------


def t0() -> Chain:
    return Chain(
        documents=[doc(1, "BC00042")],
        lines=[line(1, "BC00042", qty=3), line(1, "BC00042", "MUG"), line(1, "BC00042", "", 0)],  # + a comment
    )


def t1() -> Chain:
    """Partial BL00017 (2 tshirts + mug, tracking in Entête 1), reliquat of 1 tshirt left in the BC."""
    return Chain(
        documents=[doc(1, "BC00042"), doc(3, "BL00017", date(2024, 5, 3), tracking="6A11111111111", carrier="Colissimo")],
        lines=[
            line(1, "BC00042", qty=1),
            line(3, "BL00017", "MUG", origin="BC00042"),
            line(3, "BL00017", qty=2, origin="BC00042"),
        ],
    )


def t2() -> Chain:
    """Remainder shipped in BL00023: the BC header is gone."""
    return Chain(
        documents=[
            doc(3, "BL00017", date(2024, 5, 3), tracking="6A11111111111", carrier="Colissimo"),
            doc(3, "BL00023", date(2024, 5, 6), tracking="6A22222222222", carrier="Colissimo"),
        ],
        lines=[
            line(3, "BL00017", "MUG", origin="BC00042"),
            line(3, "BL00017", qty=2, origin="BC00042"),
            line(3, "BL00023", qty=1, origin="BC00042"),
        ],
    )


def t3(doc_type=6) -> Chain:
    """Grouped invoice FA00108: BL headers deleted, lines keep DL_PieceBL; Entête 1 not copied."""
    return Chain(
        documents=[doc(doc_type, "FA00108", date(2024, 5, 31))],
        lines=[
            line(doc_type, "FA00108", "MUG", origin="BC00042", piece_bl="BL00017"),
            line(doc_type, "FA00108", qty=2, origin="BC00042", piece_bl="BL00017"),
            line(doc_type, "FA00108", qty=1, origin="BC00042", piece_bl="BL00023"),
        ],
    )


def test_worked_example_stages():
    assert stage_of(t0()) is Stage.ORDERED
    assert stage_of(t1()) is Stage.PARTIALLY_SHIPPED
    assert stage_of(t2()) is Stage.SHIPPED
    assert stage_of(t3(6)) is Stage.INVOICED
    assert stage_of(t3(7)) is Stage.INVOICED  # posting 6 -> 7 is still invoiced


def test_worked_example_updates_in_sequence():
    settings = configured(
        options={"send_piece_number": True, "send_delivery_date": True, "send_delivery_details": True},
        stage_states={"partially_shipped": 3, "shipped": 4, "invoiced": 5},
    )
    memory, produced = OrderMemory(), []
    for chain in (t0(), t1(), t2(), t3(6), t3(7)):
        outcome = follow(chain, memory, settings)
        memory = outcome.memory
        produced.append(outcome.update)
    first, partial, shipped, invoiced, posted = produced
    assert first.stage == "ordered" and first.state_id is None and first.changes == ["stage"]
    assert partial.state_id == 3 and partial.tracking_numbers == ["6A11111111111"] and partial.piece == "BL00017"
    assert set(partial.changes) == {"state", "stage", "tracking", "piece", "delivery_date", "deliveries"}
    assert shipped.state_id == 4 and shipped.tracking_numbers == ["6A11111111111", "6A22222222222"]
    assert shipped.delivery_date == date(2024, 5, 6) and shipped.piece == "BL00023"
    # The BL headers are gone at T3, yet their tracking numbers, dates and carriers are remembered.
    assert invoiced.state_id == 5 and invoiced.piece == "FA00108"
    assert invoiced.tracking_numbers == ["6A11111111111", "6A22222222222"]
    assert [d["piece"] for d in invoiced.deliveries] == ["BL00017", "BL00023"]
    assert invoiced.deliveries[0] == {
        "piece": "BL00017",
        "date": "2024-05-03",
        "carrier": "Colissimo",
        "tracking_numbers": ["6A11111111111"],
        "lines": [{"sku": "MUG", "name": "Mug", "quantity": 1}, {"sku": "TSHIRT-M", "name": "Tshirt-M", "quantity": 2}],
    }
    assert set(invoiced.changes) == {"state", "stage", "piece"}
    assert posted is None  # 6 -> 7 changes nothing the shop sees


def test_rerun_without_change_produces_nothing():
    settings = Settings()
    memory = follow(t1(), OrderMemory(), settings).memory
    assert follow(t1(), memory, settings).update is None


# --- Stage rules ---------------------------------------------------------------------------------------


def test_preparation_is_in_preparation_unless_pl_means_shipped():
    chain = Chain(documents=[doc(2, "PL001")], lines=[line(2, "PL001", origin="BC1")])
    assert stage_of(chain, 3) is Stage.IN_PREPARATION
    assert stage_of(chain, 2) is Stage.SHIPPED
    mixed = Chain(documents=[doc(1, "BC1"), doc(2, "PL001")], lines=[line(1, "BC1", "MUG"), line(2, "PL001", origin="BC1")])
    assert stage_of(mixed, 3) is Stage.IN_PREPARATION
    assert stage_of(mixed, 2) is Stage.PARTIALLY_SHIPPED


def test_comment_and_technical_lines_do_not_count():
    chain = Chain(
        documents=[doc(1, "BC1"), doc(3, "BL1")],
        lines=[
            line(3, "BL1", origin="BC1"),
            line(1, "BC1", "", 0),  # comment line left behind in the BC
            line(1, "BC1", "PORT-COLISSIMO", countable=False),  # carriage line
            line(1, "BC1", "KIT-PART", countable=False),  # kit component
        ],
    )
    assert stage_of(chain) is Stage.SHIPPED


def test_header_with_comments_only_is_ordered():
    assert stage_of(Chain(documents=[doc(1, "BC1")], lines=[line(1, "BC1", "", 0)])) is Stage.ORDERED


def test_nothing_left_is_none():
    assert stage_of(Chain()) is None


@pytest.mark.parametrize(
    "chain",
    [
        Chain(documents=[doc(4, "BR1")], lines=[line(4, "BR1", origin="BC1")]),
        Chain(documents=[doc(6, "FA2", provenance=1)], lines=[line(6, "FA2", origin="BC1")]),
        Chain(documents=[doc(3, "BL1"), doc(5, "BA1")], lines=[line(3, "BL1", origin="BC1")]),
    ],
    ids=["bon de retour", "facture de retour", "bon d'avoir"],
)
def test_returns(chain):
    assert stage_of(chain) is Stage.RETURNED


def test_partial_invoice_with_remainder_in_order_is_partially_shipped():
    chain = Chain(documents=[doc(1, "BC1"), doc(6, "FA1")], lines=[line(1, "BC1"), line(6, "FA1", "MUG", origin="BC1")])
    assert stage_of(chain) is Stage.PARTIALLY_SHIPPED


def test_sentinel_dates_are_empty():
    assert as_date(datetime(1753, 1, 1)) is None
    assert as_date(datetime(1900, 1, 1)) is None
    assert as_date(None) is None
    assert as_date(datetime(2024, 5, 2, 10, 30)) == date(2024, 5, 2)


def test_sentinel_dates_give_no_delivery_date():
    chain = Chain(documents=[doc(3, "BL1", None)], lines=[line(3, "BL1", origin="BC1")])
    assert deliveries_of(chain, remember_documents({}, observe(chain)), 3)[0]["date"] is None


# --- Update rules -------------------------------------------------------------------------------------


def shipped_chain(tracking="") -> Chain:
    return Chain(documents=[doc(3, "BL1", tracking=tracking)], lines=[line(3, "BL1", origin="BC1")])


def ordered_chain() -> Chain:
    return Chain(documents=[doc(1, "BC1")], lines=[line(1, "BC1")])


def test_stage_going_backwards_produces_no_state():
    settings = configured(stage_states={"ordered": 2})
    memory = follow(shipped_chain(), OrderMemory(), settings).memory
    assert memory.stage == "shipped"
    outcome = follow(ordered_chain(), memory, settings)  # the BL was deleted: lines back in a BC
    assert outcome.update is None
    assert outcome.memory.current_stage == "ordered" and outcome.memory.stage == "shipped"


def test_jumping_stages_sends_the_latest_mapped_one_only():
    settings = configured(stage_states={"in_preparation": 3, "shipped": 4, "invoiced": None})
    memory = follow(ordered_chain(), OrderMemory(), settings).memory
    invoiced = Chain(documents=[doc(6, "FA1")], lines=[line(6, "FA1", origin="BC1")])
    outcome = follow(invoiced, memory, settings)
    assert outcome.update.stage == "invoiced"
    assert outcome.update.state_id == 4  # invoiced is "ne pas modifier": shipped was passed on the way


def test_a_state_is_never_produced_twice():
    settings = configured(stage_states={"partially_shipped": 4, "shipped": 4})
    memory = follow(t1(), OrderMemory(), settings).memory
    assert memory.states_sent == (4,)
    outcome = follow(t2(), memory, settings)
    assert outcome.update.stage == "shipped" and outcome.update.state_id is None


def test_state_on_send_applies_when_tracking_is_first_sent():
    settings = configured(stage_states={"shipped": None}, tracking={"state_on_send": 4})
    memory = follow(shipped_chain(), OrderMemory(), settings).memory  # shipped, no tracking typed yet
    outcome = follow(shipped_chain("6A1"), memory, settings)
    assert outcome.update.state_id == 4 and outcome.update.changes == ["state", "tracking"]
    again = follow(Chain(documents=[doc(3, "BL1", tracking="6A1;6A2")], lines=[line(3, "BL1", origin="BC1")]), outcome.memory, settings)
    assert again.update.state_id is None and again.update.tracking_numbers == ["6A1", "6A2"]


def test_a_later_stage_state_still_follows_the_tracking_state():
    settings = configured(stage_states={"shipped": 4, "invoiced": 5}, tracking={"state_on_send": 12})
    outcome = follow(
        Chain(documents=[doc(1, "BC1"), doc(3, "BL1", tracking="6A1")], lines=[line(1, "BC1", "MUG"), line(3, "BL1", origin="BC1")]),
        OrderMemory(),
        settings,
    )
    assert outcome.update.stage == "partially_shipped" and outcome.update.state_id == 12
    shipped = follow(shipped_chain("6A1"), outcome.memory, settings)
    assert shipped.update.state_id == 4


def test_cancelled_needs_two_consecutive_empty_looks_and_nothing_shipped():
    settings = configured(stage_states={"cancelled": 6})
    memory = follow(ordered_chain(), OrderMemory(), settings).memory
    first = follow(Chain(), memory, settings)
    assert first.update is None and first.memory.vanished_runs == 1
    second = follow(Chain(), first.memory, settings)
    assert second.update.stage == "cancelled" and second.update.state_id == 6
    shipped = follow(shipped_chain(), OrderMemory(), settings).memory
    gone = follow(Chain(), follow(Chain(), shipped, settings).memory, settings)
    assert gone.update is None and gone.memory.stage == "shipped"  # a shipped order is never "cancelled"


def test_an_order_that_comes_back_resets_the_vanished_count():
    settings = Settings()
    memory = follow(ordered_chain(), OrderMemory(), settings).memory
    memory = follow(Chain(), memory, settings).memory
    memory = follow(ordered_chain(), memory, settings).memory
    assert memory.vanished_runs == 0
    assert follow(Chain(), memory, settings).update is None


def test_optional_parts_are_null_unless_their_option_is_on():
    settings = configured(tracking={"send": False})
    update = follow(shipped_chain("6A1"), OrderMemory(), settings).update
    assert update.tracking_numbers is None and update.piece is None
    assert update.delivery_date is None and update.deliveries is None
    assert "tracking" not in update.changes


def test_corrected_tracking_replaces_the_typo_while_the_document_exists():
    settings = Settings()
    memory = follow(shipped_chain("6A1TYPO"), OrderMemory(), settings).memory
    outcome = follow(shipped_chain("6A1"), memory, settings)
    assert outcome.update.tracking_numbers == ["6A1"] and outcome.update.changes == ["tracking"]


def test_can_reach():
    assert can_reach(None, Stage.ORDERED)
    assert not can_reach("shipped", Stage.PARTIALLY_SHIPPED)
    assert can_reach("invoiced", Stage.RETURNED)
    assert can_reach("in_preparation", Stage.CANCELLED)
    assert not can_reach("partially_shipped", Stage.CANCELLED)
    assert not can_reach("cancelled", Stage.RETURNED)


def test_split_tracking_and_memory_order():
    assert split_tracking(" 6A1 ; 6A2,6A3\n") == ["6A1", "6A2", "6A3"]
    assert split_tracking("1Z 999 AA1 01 2345 6784") == ["1Z 999 AA1 01 2345 6784"]  # spaces belong to the number
    first = remember_documents({}, {"3:BL2": {"tracking": ["B"]}})
    both = remember_documents(first, {"3:BL1": {"tracking": ["A", "B"]}})
    assert tracking_numbers(both) == ["B", "A"]


def test_tracking_typed_after_the_stage_state_still_changes_the_state():
    settings = configured(tracking={"state_on_send": 12})  # shipped -> 4
    memory = follow(shipped_chain(), OrderMemory(), settings).memory  # BL made, parcel number not typed yet
    assert memory.states_sent == (4,)
    outcome = follow(shipped_chain("6A1"), memory, settings)
    assert outcome.update.state_id == 12 and outcome.update.changes == ["state", "tracking"]
    invoiced = Chain(documents=[doc(6, "FA1")], lines=[line(6, "FA1", origin="BC1", piece_bl="BL1")])
    settings = configured(tracking={"state_on_send": 12}, stage_states={"invoiced": 5})
    assert follow(invoiced, outcome.memory, settings).update.state_id == 5


def test_tracking_state_wins_over_its_stage_state_in_the_same_update():
    settings = configured(tracking={"state_on_send": 12})  # shipped -> 4
    outcome = follow(shipped_chain("6A1"), OrderMemory(), settings)
    assert outcome.update.state_id == 12


def test_the_same_tracking_numbers_in_another_order_are_no_news():
    settings = Settings()
    memory = follow(shipped_chain("6A2;6A1"), OrderMemory(), settings).memory
    memory = replace(memory, snapshot={**memory.snapshot, "tracking_numbers": ["6A1", "6A2"]})
    assert follow(shipped_chain("6A2;6A1"), memory, settings).update is None


def test_numbers_from_the_shop_stay_marked_after_the_document_is_seen_again():
    memory = remember_documents({}, {"3:BL1": {"tracking": ["6A1"]}})
    memory["3:BL1"]["from_shop"] = ["6A1"]
    again = remember_documents(memory, {"3:BL1": {"tracking": ["6A1"], "date": "2024-05-02"}})
    assert again["3:BL1"]["from_shop"] == ["6A1"] and again["3:BL1"]["date"] == "2024-05-02"


def test_a_down_payment_invoice_ships_nothing_and_is_not_the_orders_piece():
    """DO_Provenance 4, a facture d'acompte: it may carry the order's link value and an article line."""
    settings = configured(options={"send_piece_number": True})
    acompte = doc(6, "FA00099", provenance=4)
    chain = Chain(
        documents=[doc(1, "BC00042"), acompte],
        lines=[line(1, "BC00042", qty=3), line(6, "FA00099", sku="ACOMPTE")],
    )
    assert acompte.is_down_payment and stage_of(chain) is Stage.ORDERED
    assert deliveries_of(chain, {}, 3) == []
    outcome = follow(chain, OrderMemory(), settings)
    assert outcome.update.stage == "ordered" and outcome.update.piece is None
    shipped = replace(
        chain, lines=[line(3, "BL00001", qty=3, origin="BC00042"), line(6, "FA00099", sku="ACOMPTE")], documents=[doc(3, "BL00001"), acompte]
    )
    assert stage_of(shipped) is Stage.SHIPPED  # the BL ships it, not the down payment
