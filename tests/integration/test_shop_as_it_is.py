"""Push mode against PrestaShop as a real shop behaves (the simulator reproduces the 8.1.2 recordings):
messages the order page shows, tracking typed in the back office, redirects, firewalls, unknown states,
orders with several carrier rows."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import Update
from sync.services.push import carrier_row, push_pending
from sync.services.shop_poll import poll_shop_tracking
from sync.services.unit_of_work import UnitOfWork
from tests.integration.test_push import KEY, LINES, client_for
from tests.simulator import ShopSimulator


@pytest.fixture(params=["8.1.2"])
def shop(request):
    """The version the recordings were made on."""
    sim = ShopSimulator(version=request.param, key=KEY).start()
    yield sim
    sim.stop()


def ship(sync, warehouse, clock, key: str = "4711", tracking: str | None = "6A11111111111") -> str:
    piece = warehouse.create_order(key, LINES)
    sync.run()
    clock.tick()
    bl = warehouse.transform((1, piece), 3, header={"DO_Coord01": tracking} if tracking else None)
    sync.run()
    return bl


def push(sync, client):
    report = push_pending(UnitOfWork(sync.session), client, employee_id=1)
    sync.session.expire_all()
    return report


def updates(sync) -> list[Update]:
    return list(sync.session.scalars(select(Update).order_by(Update.id)))


# --- messages where the order page shows them ----------------------------------------------------------------


def test_the_piece_number_is_a_private_message_on_the_orders_thread(sync, warehouse, clock, shop):
    sync.settings(options__send_piece_number=True)
    shop.add_order(4711, current_state=2)
    bl = ship(sync, warehouse, clock)
    report = push(sync, client_for(shop))
    assert report.pushed == len(updates(sync)) and report.failed == 0, report.details
    page = shop.order_page_messages(4711)
    assert [m["message"] for m in page if m["message"].startswith("Sage : document")] == [f"Sage : document {bl}"]
    assert all(m["table"] == "customer_message" and str(m["private"]) == "1" for m in page)
    assert shop.messages == []  # nothing in the legacy table, which the order page does not read
    [thread] = [t for t in shop.customer_threads.values() if t["id_order"] == 4711]
    order = shop.orders[4711]
    assert thread["id_customer"] == order["id_customer"] and thread["id_contact"] == 0 and thread["status"] == "open"
    assert len(thread["token"]) == 12

    clock.tick()
    invoice = warehouse.transform((3, bl), 6)
    sync.run()
    push(sync, client_for(shop))
    assert [t["id"] for t in shop.customer_threads.values() if t["id_order"] == 4711] == [thread["id"]]  # reused
    texts = [m["message"] for m in shop.order_page_messages(4711)]
    assert texts.count(f"Sage : document {invoice}") == 1 and texts.count(f"Sage : document {bl}") == 1


def test_a_thread_the_back_office_made_is_reused_and_nothing_is_posted_twice(sync, warehouse, clock, shop):
    sync.settings(options__send_piece_number=True)
    shop.add_order(4711, current_state=2)
    shop.back_office_add_message(4711, "Colis préparé")  # the merchant wrote first: the thread exists
    bl = ship(sync, warehouse, clock)
    push(sync, client_for(shop))
    assert len([t for t in shop.customer_threads.values() if t["id_order"] == 4711]) == 1
    # A worker died after posting, before remembering: the thread is read first, nothing is posted again.
    order = sync.order("4711")
    order.messages_sent = []
    for item in updates(sync):
        item.push_status = "pending"
    sync.session.commit()
    push(sync, client_for(shop))
    texts = [m["message"] for m in shop.order_page_messages(4711)]
    assert texts.count(f"Sage : document {bl}") == 1 and "Colis préparé" in texts


def test_before_1_7_7_messages_go_to_the_legacy_table(sync, warehouse, clock):
    sim = ShopSimulator(version="1.7.6.9", key=KEY).start()
    try:
        sync.settings(options__send_piece_number=True)
        sim.add_order(4711, current_state=2)
        bl = ship(sync, warehouse, clock)
        push(sync, client_for(sim))
        assert [m["message"] for m in sim.order_page_messages(4711)] == [f"Sage : document {bl}"]
        assert not sim.customer_threads
    finally:
        sim.stop()


# --- tracking typed in the back office -----------------------------------------------------------------------


def test_a_number_typed_in_the_back_office_reaches_gescom_though_date_upd_does_not_move(sync, warehouse, clock, shop):
    sync.settings(tracking__import_from_shop=True)
    shop.add_order(4711, current_state=2)
    bl = ship(sync, warehouse, clock, tracking=None)
    push(sync, client_for(shop))
    date_upd = shop.orders[4711]["date_upd"]
    shop.back_office_set_tracking(4711, "XY123456789FR")
    assert shop.orders[4711]["date_upd"] == date_upd  # 8.x: only order_carrier is saved
    report = poll_shop_tracking(UnitOfWork(sync.session), sync.gescom, client_for(shop))
    assert report.written == 1, report
    with warehouse.engine.connect() as conn:
        value = conn.execute(select(warehouse.h.c.DO_Coord01).where(warehouse.h.c.DO_Type == 3, warehouse.h.c.DO_Piece == bl)).scalar_one()
    assert value.strip() == "XY123456789FR"
    again = poll_shop_tracking(UnitOfWork(sync.session), sync.gescom, client_for(shop))
    assert again.written == 0 and not again.warnings  # no echo, nothing twice
    sync.run()
    assert [u for u in updates(sync) if "tracking" in u.changes and u.tracking_numbers == ["XY123456789FR"]] == []


def test_a_number_gescom_refuses_is_said_once_not_at_every_poll(sync, warehouse, clock, shop):
    sync.settings(tracking__import_from_shop=True)
    shop.add_order(4711, current_state=2)
    ship(sync, warehouse, clock, tracking=None)
    bl = warehouse.documents("4711")[-1][1]
    warehouse.set_header(3, bl, DO_Coord01="SAGE-NUMBER")  # typed in Sage meanwhile, not yet read by a run
    shop.back_office_set_tracking(4711, "OTHER123")
    first = poll_shop_tracking(UnitOfWork(sync.session), sync.gescom, client_for(shop))
    assert first.written == 0 and len(first.warnings) == 1 and "never overwritten" in first.warnings[0]
    second = poll_shop_tracking(UnitOfWork(sync.session), sync.gescom, client_for(shop))
    assert second.warnings == []


def test_the_poll_reads_carrier_rows_in_batches_and_goes_round(sync, warehouse, clock, shop):
    sync.settings(tracking__import_from_shop=True)
    for key in range(4711, 4716):
        shop.add_order(key, current_state=2)
        warehouse.create_order(str(key), LINES)
    sync.run()
    shop.requests.clear()
    first = poll_shop_tracking(UnitOfWork(sync.session), sync.gescom, client_for(shop), limit=3, batch=2)
    second = poll_shop_tracking(UnitOfWork(sync.session), sync.gescom, client_for(shop), limit=3, batch=2)
    assert (first.orders_seen, second.orders_seen) == (3, 3)  # 5 orders, 3 a poll: 3, then 2 and round to the first
    reads = [r for r in shop.requests if r["resource"] == "order_carriers"]
    assert len(reads) == 4 and all(r["method"] == "GET" for r in reads)
    assert all("date_upd" not in str(r) for r in shop.requests)


# --- writes that cannot be misread ------------------------------------------------------------------------


def test_a_shop_behind_a_redirect_keeps_the_update_pending_until_the_url_is_corrected(sync, warehouse, clock, shop):
    shop.add_order(4711, current_state=2)
    ship(sync, warehouse, clock)
    shop.redirect_to_https(writes_only=True)
    report = push(sync, client_for(shop))
    assert report.error and "301" in report.error and "https://" in report.error and "PRESTASHOP_URL" in report.error
    assert {u.push_status for u in updates(sync)} == {"pending"}
    assert shop.carrier_rows(4711)[0]["tracking_number"] == ""
    shop.clear_faults()  # the URL corrected
    assert push(sync, client_for(shop)).error is None
    assert {u.push_status for u in updates(sync)} == {"pushed"}
    assert shop.carrier_rows(4711)[0]["tracking_number"] == "6A11111111111"


def test_an_unknown_state_fails_once_clearly_and_the_rest_is_pushed(sync, warehouse, clock, shop):
    sync.settings(stage_states__shipped=99)
    shop.add_order(4711, current_state=2)
    ship(sync, warehouse, clock)
    report = push(sync, client_for(shop))
    [failed] = [u for u in updates(sync) if u.push_status == "failed"]
    assert failed.state_id == 99 and "state 99 does not exist in the shop" in failed.push_error
    assert failed.push_answer["pushed"]["tracking"]["action"] == "written"
    assert report.failed == 1 and not [h for h in shop.histories if h["id_order"] == 4711 and h["id_order_state"] == 99]
    shop.requests.clear()
    push(sync, client_for(shop))
    assert not [r for r in shop.requests if r["method"] == "POST"]  # never retried


def test_a_firewall_refusing_patch_is_passed_with_ps_method(sync, warehouse, clock, shop):
    shop.add_order(4711, current_state=2)
    ship(sync, warehouse, clock)
    shop.waf_block(("PUT", "PATCH"), status=403)
    report = push(sync, client_for(shop))
    assert report.error is None and report.failed == 0, report.details
    assert shop.carrier_rows(4711)[0]["tracking_number"] == "6A11111111111"
    writes = [(r["method"], r["query"].get("ps_method")) for r in shop.requests if r["resource"] == "order_carriers" and r["method"] != "GET"]
    assert writes[-1] == ("POST", "PATCH"), writes


def test_shop_check_says_how_writes_go(sync, shop):
    client = client_for(shop)
    assert "PATCH reaches the webservice" in client.probe_write_method()
    shop.waf_block(("PATCH",), status=405)
    client = client_for(shop)
    line = client.probe_write_method()
    assert "refused with 405" in line and "ps_method=PATCH" in line and client.method_override


# --- several carrier rows ---------------------------------------------------------------------------------


def test_the_number_goes_to_the_latest_row_of_the_orders_current_carrier():
    rows = [{"id": 7, "id_carrier": 27}, {"id": 9, "id_carrier": 30}, {"id": 8, "id_carrier": 27}]
    assert carrier_row(rows, 27)["id"] == 8
    assert carrier_row(rows, "30")["id"] == 9
    assert carrier_row(rows, 99)["id"] == 9  # no row of that carrier: the latest row
    assert carrier_row([], 27) is None


def test_an_order_whose_carrier_changed_gets_its_number_on_the_new_carriers_row(sync, warehouse, clock, shop):
    shop.add_order(4711, current_state=2, id_carrier=27, carriers=(30,))
    shop.orders[4711]["id_carrier"] = 30  # the second row is the order's carrier now
    ship(sync, warehouse, clock)
    push(sync, client_for(shop))
    by_carrier = {row["id_carrier"]: row["tracking_number"] for row in shop.carrier_rows(4711)}
    assert by_carrier == {27: "", 30: "6A11111111111"}


def test_a_number_that_cannot_be_written_yet_is_not_lost(sync, warehouse, clock, shop):
    """A refusal the merchant can fix (here: the settings name a header field that is read, never written) is
    said at every poll and the number goes in once it is fixed; only refusals about the number itself are final."""
    sync.settings(tracking__import_from_shop=True, tracking__header_field="DO_Ref")
    shop.add_order(4711, current_state=2)
    ship(sync, warehouse, clock, tracking=None)
    bl = warehouse.documents("4711")[-1][1]
    shop.back_office_set_tracking(4711, "XY123456789FR")
    first = poll_shop_tracking(UnitOfWork(sync.session), sync.gescom, client_for(shop))
    assert first.written == 0 and "retried next poll" in first.warnings[0]
    assert "retried next poll" in poll_shop_tracking(UnitOfWork(sync.session), sync.gescom, client_for(shop)).warnings[0]
    sync.settings(tracking__header_field="DO_Coord01")
    assert poll_shop_tracking(UnitOfWork(sync.session), sync.gescom, client_for(shop)).written == 1
    with warehouse.engine.connect() as conn:
        value = conn.execute(select(warehouse.h.c.DO_Coord01).where(warehouse.h.c.DO_Type == 3, warehouse.h.c.DO_Piece == bl)).scalar_one()
    assert value.strip() == "XY123456789FR"
