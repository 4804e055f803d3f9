"""What we remember of a shop order: each rule of sync/core/memory.py, and the mapping to the stored row."""

from __future__ import annotations

from dataclasses import replace

from models import ShopOrder
from sync.core.memory import (
    OrderMemory,
    document_holding,
    note_messages_sent,
    note_shop_order,
    note_shop_state,
    note_shop_tracking_seen,
    note_state_pushed,
    note_tracking_pushed,
    remember_documents,
    remember_run,
    remember_tracking_from_shop,
    tracking_numbers,
)
from sync.store.memory import change_memory, load_memory, save_memory


def bl(piece="BL1", tracking=(), **extra) -> dict:
    return {"type": 3, "piece": piece, "date": "2024-05-03", "carrier": "Colissimo", "tracking": list(tracking), **extra}


# --- the documents remembered ------------------------------------------------------------------------------


def test_present_documents_replace_what_we_had_and_vanished_ones_stay():
    before = {"1:BC1": {"type": 1, "piece": "BC1", "tracking": [], "seq": 1}, "3:BL1": {**bl(tracking=["6A1"]), "seq": 2}}
    after = remember_documents(before, {"3:BL1": bl(tracking=["6A2"]), "3:BL2": bl("BL2")})
    assert after["1:BC1"] == before["1:BC1"]  # gone from GesCom, remembered as last seen
    assert after["3:BL1"]["tracking"] == ["6A2"] and after["3:BL1"]["seq"] == 2  # what it shows now, same place
    assert after["3:BL2"]["seq"] == 3  # new to us: next in line
    assert before["3:BL1"]["tracking"] == ["6A1"]  # nothing changed in place


def test_tracking_numbers_in_first_seen_order_and_who_holds_one():
    documents = {"3:BL2": {"tracking": ["B", "C"], "seq": 1}, "3:BL1": {"tracking": ["A", "B"], "seq": 2}}
    assert tracking_numbers(documents) == ["B", "C", "A"]
    assert document_holding(documents, "B") == "3:BL2" and document_holding(documents, "A") == "3:BL1"
    assert document_holding(documents, "Z") is None


# --- what a run concluded ------------------------------------------------------------------------------------


def test_a_run_records_the_state_it_produced_and_what_it_saw():
    memory = OrderMemory(stage="ordered", state_rank=1, states_sent=(2,), shop_tracking="6A1")
    after = remember_run(
        memory,
        stage="shipped",
        current_stage="shipped",
        state=(4, 10),
        snapshot={"tracking_numbers": ["6A1"]},
        documents={"3:BL1": bl()},
        vanished_runs=0,
        is_open=True,
    )
    assert (after.stage, after.current_stage, after.state_rank, after.states_sent) == ("shipped", "shipped", 10, (2, 4))
    assert after.snapshot == {"tracking_numbers": ["6A1"]} and after.documents == {"3:BL1": bl()}
    assert after.shop_tracking == "6A1"  # the shop's side is not the run's business
    assert memory.stage == "ordered"  # a new memory, the old one untouched


def test_a_run_that_produced_no_state_keeps_the_rank_and_may_close_the_order():
    memory = OrderMemory(stage="shipped", state_rank=10, states_sent=(4,), vanished_runs=1)
    after = remember_run(memory, stage="shipped", current_stage=None, state=None, snapshot={}, documents={}, vanished_runs=2, is_open=False)
    assert after.state_rank == 10 and after.states_sent == (4,) and after.vanished_runs == 2 and after.is_open is False


# --- what the shop tells us ----------------------------------------------------------------------------------


def test_a_state_set_in_the_shop_counts_as_produced_once_and_only_raises_the_rank():
    memory = OrderMemory(state_rank=10, states_sent=(4,))
    after = note_shop_state(memory, 5, 13)
    assert after.shop_state_id == 5 and after.states_sent == (4, 5) and after.state_rank == 13
    again = note_shop_state(after, 5, 13)
    assert again.states_sent == (4, 5)  # never twice
    lower = note_shop_state(memory, 3, 7)
    assert lower.state_rank == 10 and lower.states_sent == (4, 3)  # a lower state: produced, the rank stays
    unmapped = note_shop_state(memory, 99, None)
    assert unmapped.state_rank == 10 and unmapped.shop_state_id == 99


def test_a_number_from_the_shop_is_remembered_on_its_document_as_the_run_will_see_it():
    memory = OrderMemory(
        documents={"1:BC1": {"type": 1, "piece": "BC1", "tracking": [], "seq": 1}, "3:BL1": {**bl(), "seq": 2}},
        snapshot={"tracking_numbers": [], "deliveries": [{"piece": "BL1", "tracking_numbers": []}, {"piece": "BL9", "tracking_numbers": []}]},
    )
    seen = {"3:BL1": bl(tracking=["6A1"], carrier="DPD"), "3:BL2": bl("BL2", tracking=["6A2"])}
    after = remember_tracking_from_shop(memory, seen, "3:BL1", "6A1", 3)
    assert after.documents["3:BL1"] == {**bl(tracking=["6A1"], carrier="DPD"), "seq": 2, "from_shop": ["6A1"]}
    assert "3:BL2" not in after.documents and after.documents["1:BC1"] == memory.documents["1:BC1"]  # the rest is news
    assert after.snapshot["tracking_numbers"] == ["6A1"]
    assert after.snapshot["deliveries"] == [{"piece": "BL1", "tracking_numbers": ["6A1"]}, {"piece": "BL9", "tracking_numbers": []}]
    assert memory.documents["3:BL1"]["tracking"] == [] and memory.snapshot["tracking_numbers"] == []


def test_a_number_from_the_shop_on_a_vanished_document_or_a_bc():
    memory = OrderMemory(
        documents={"3:BL1": {**bl(tracking=["6A1"]), "seq": 1, "from_shop": ["6A0"]}, "1:BC1": {"type": 1, "piece": "BC1", "tracking": [], "seq": 2}},
        snapshot={"deliveries": [{"piece": "BC1", "tracking_numbers": []}]},
    )
    vanished = remember_tracking_from_shop(memory, {}, "3:BL1", "6A1", 3)
    assert vanished.documents["3:BL1"]["tracking"] == ["6A1"] and vanished.documents["3:BL1"]["from_shop"] == ["6A0", "6A1"]
    assert "tracking_numbers" not in vanished.snapshot  # not sent: stays unsent
    on_bc = remember_tracking_from_shop(memory, {}, "1:BC1", "6A3", 3)
    assert on_bc.documents["1:BC1"]["tracking"] == ["6A3"]
    assert on_bc.snapshot["deliveries"] == [{"piece": "BC1", "tracking_numbers": []}]  # a BC is no delivery


def test_a_number_joins_its_delivery_where_the_run_will_put_it():
    memory = OrderMemory(
        documents={"3:BL1": {**bl(tracking=["6A1"]), "seq": 1}},
        snapshot={"deliveries": [{"piece": "BL1", "tracking_numbers": ["COL9"]}]},
    )
    seen = {"3:BL1": bl(tracking=["6A1", "6A2", "COL9"])}  # header numbers first, then the lines'
    after = remember_tracking_from_shop(memory, seen, "3:BL1", "6A2", 3)
    assert after.snapshot["deliveries"] == [{"piece": "BL1", "tracking_numbers": ["6A2", "COL9"]}]


def test_what_the_poll_and_the_push_note():
    memory = OrderMemory(messages_sent=("a",))
    assert note_shop_tracking_seen(memory, "XY1").shop_tracking_seen == "XY1"
    assert note_shop_order(memory, 12).shop_id_order == 12
    assert note_tracking_pushed(memory, "6A1 6A2").shop_tracking == "6A1 6A2"
    assert note_state_pushed(memory, 4).shop_state_pushed == 4
    assert note_messages_sent(memory, ["b", "a", "c"]).messages_sent == ("a", "b", "c")
    assert memory == OrderMemory(messages_sent=("a",))


# --- the mapping -------------------------------------------------------------------------------------------------


def test_the_stored_row_holds_every_part_of_the_memory():
    memory = OrderMemory(
        stage="shipped",
        current_stage="ordered",
        state_rank=10,
        states_sent=(4, 12),
        snapshot={"piece": "BL1"},
        documents={"3:BL1": bl()},
        vanished_runs=1,
        is_open=False,
        shop_state_id=5,
        shop_id_order=4711,
        shop_state_pushed=4,
        shop_tracking="6A1",
        shop_tracking_seen="XY1",
        messages_sent=("f1",),
    )
    order = ShopOrder(order_key="4711")
    save_memory(order, memory)
    assert order.documents == {"3:BL1": bl()} and order.states_sent == [4, 12] and order.messages_sent == ["f1"]
    assert load_memory(order) == memory
    assert load_memory(None) == OrderMemory()
    changed = change_memory(order, note_state_pushed, 12)
    assert order.shop_state_pushed == 12 and changed == replace(memory, shop_state_pushed=12)
