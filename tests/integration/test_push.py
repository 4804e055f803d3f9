"""Push mode against the PrestaShop simulator over real HTTP: exact request sequences, faults, concurrency."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import Update
from sync.prestashop.client import PrestaShopClient
from sync.services.push import push_pending
from sync.services.unit_of_work import UnitOfWork
from tests.simulator import ShopSimulator

KEY = "K" * 32
LINES = [("TSHIRT-M", "T-shirt M", 2), ("MUG", "Mug", 1)]


@pytest.fixture(params=["8.1.5"])
def shop(request):
    sim = ShopSimulator(version=request.param, key=KEY).start()
    yield sim
    sim.stop()


@pytest.fixture
def shop17():
    sim = ShopSimulator(version="1.7.8.11", key=KEY).start()
    yield sim
    sim.stop()


def client_for(sim, timeout: float = 2.0) -> PrestaShopClient:
    return PrestaShopClient(sim.url, KEY, timeout=(timeout, timeout), sleep=lambda seconds: None)


def calls(sim) -> list[str]:
    """The requests the simulator received, as 'METHOD resource' (the exact sequence)."""
    return [f"{r['method']} {r['resource']}" for r in sim.requests]


def histories(sim, id_order: int) -> list[int]:
    return [row["id_order_state"] for row in sim.histories if int(row["id_order"]) == id_order]


def state_mails(sim, id_order: int) -> list[dict]:
    return [mail for mail in sim.mails if int(mail["id_order"]) == id_order and mail["kind"] == "state"]


def ship(sync, warehouse, clock, key: str, tracking: str | None = "6A11111111111", take=None) -> None:
    """A shop order imported into GesCom, seen by a run, then delivered (fully or partly) with a tracking number."""
    piece = warehouse.create_order(key, LINES)
    sync.run()
    clock.tick()
    warehouse.transform((1, piece), 3, take=take, header={"DO_Coord01": tracking} if tracking else None)
    sync.run()


def push(sync, client, **options):
    report = push_pending(UnitOfWork(sync.session), client, **options)
    sync.session.expire_all()
    return report


def make_due(sync) -> None:
    """Let the updates waiting for a retry be tried now."""
    sync.session.execute(update(Update).values(next_attempt_at=None))
    sync.session.commit()


def statuses(sync) -> list[str]:
    return [u.push_status for u in sync.session.scalars(select(Update).order_by(Update.id))]


# --- exact request sequences ------------------------------------------------------------------------------------


def test_first_shipment_with_tracking_and_state(sync, warehouse, clock, shop):
    shop.add_order(4711, current_state=2)
    ship(sync, warehouse, clock, "4711")
    shop.reset_log()
    report = push(sync, client_for(shop))
    assert report.pushed == 2 and report.failed == 0  # the "ordered" update, then the shipment
    # The "ordered" update has nothing for the shop: no request. The shipment: the order; the shop's conflict
    # states (its configuration, once a pass: is the order cancelled, refunded, in payment error?); its states (once
    # a pass: the state must exist); who set its current state (2 maps to no stage: by hand?) - decided first,
    # since it says which mail goes; tracking; then the state.
    assert calls(shop) == [
        "GET orders",
        "GET configurations",
        "GET order_states",
        "GET order_histories",
        "GET order_carriers",
        "PATCH order_carriers",
        "POST order_histories",
    ]
    carrier = next(row for row in shop.order_carriers.values() if int(row["id_order"]) == 4711)
    assert carrier["tracking_number"] == "6A11111111111"
    assert histories(shop, 4711)[-1] == 4 and int(shop.orders[4711]["current_state"]) == 4
    assert len(state_mails(shop, 4711)) == 1 and not [m for m in shop.mails if m["kind"] == "in_transit"]
    assert push(sync, client_for(shop)).pushed == 0  # nothing pending: nothing sent twice


def test_second_parcel_updates_tracking_with_the_in_transit_mail(sync, warehouse, clock, shop):
    shop.add_order(4711, current_state=2)
    piece = warehouse.create_order("4711", LINES)
    sync.run()
    clock.tick()
    warehouse.transform((1, piece), 3, take={"MUG": 1}, header={"DO_Coord01": "6A11111111111"})
    sync.settings(stage_states__partially_shipped=4, stage_states__shipped=None)
    sync.run()
    push(sync, client_for(shop))
    shop.reset_log()
    clock.tick()
    warehouse.transform((1, piece), 3, header={"DO_Coord01": "6A22222222222"})
    sync.run()
    report = push(sync, client_for(shop))
    assert report.pushed == 1
    assert calls(shop) == ["GET orders", "GET configurations", "GET order_carriers", "PATCH order_carriers"]  # configurations: once a pass
    carrier = next(row for row in shop.order_carriers.values() if int(row["id_order"]) == 4711)
    assert carrier["tracking_number"] == "6A11111111111 6A22222222222"  # both parcels, while they fit in 64
    assert [m["kind"] for m in shop.mails if int(m["id_order"]) == 4711] == ["state", "in_transit"]
    assert histories(shop, 4711).count(4) == 1


def test_a_state_the_shop_already_has_is_not_posted(sync, warehouse, clock, shop):
    shop.add_order(4711, current_state=4)
    ship(sync, warehouse, clock, "4711")
    shop.reset_log()
    push(sync, client_for(shop))
    assert "POST order_histories" not in calls(shop)
    assert histories(shop, 4711).count(4) == 1 and state_mails(shop, 4711) == []


def test_a_later_state_set_by_hand_is_kept(sync, warehouse, clock, shop):
    sync.settings(stage_states__partially_shipped=3)
    shop.add_order(4711, current_state=2)
    shop.set_state_by_hand(4711, 5)  # "Delivered", by the merchant
    ship(sync, warehouse, clock, "4711", take={"MUG": 1})
    push(sync, client_for(shop))
    assert int(shop.orders[4711]["current_state"]) == 5 and 3 not in histories(shop, 4711)
    answer = sync.session.scalars(select(Update).where(Update.state_id == 3)).one().push_answer
    assert answer["state"]["action"] in ("shop_already_further", "kept_state_set_by_hand")


def test_17_mode_puts_the_whole_carrier_row_back(sync, warehouse, clock, shop17):
    shop17.add_order(4711, current_state=2)
    before = dict(next(row for row in shop17.order_carriers.values() if int(row["id_order"]) == 4711))
    ship(sync, warehouse, clock, "4711")
    shop17.reset_log()
    push(sync, client_for(shop17))
    assert calls(shop17) == [
        "GET orders",
        "GET configurations",
        "GET order_states",
        "GET order_histories",
        "GET order_carriers",
        "PUT order_carriers",
        "POST order_histories",
    ]
    after = next(row for row in shop17.order_carriers.values() if int(row["id_order"]) == 4711)
    assert after["tracking_number"] == "6A11111111111"
    for field in ("id_order", "id_carrier", "id_order_invoice", "weight", "shipping_cost_tax_excl", "shipping_cost_tax_incl", "date_add"):
        assert str(after[field]) == str(before[field]), field  # PUT replaces everything: nothing else may change


def test_order_resolved_by_reference(sync, warehouse, clock, shop):
    sync.settings(link_field="DO_Ref")
    shop.add_order(5000, reference="KHWTQZXNB", current_state=2)
    piece = warehouse.create_order("", LINES, reference="KHWTQZXNB")
    sync.run()
    warehouse.transform((1, piece), 3, header={"DO_Coord01": "6A1"})
    sync.run()
    push(sync, client_for(shop))
    assert int(shop.orders[5000]["current_state"]) == 4


def test_messages_for_piece_date_and_deliveries_never_repeated(sync, warehouse, clock, shop):
    sync.settings(options__send_piece_number=True, options__send_delivery_date=True, options__send_delivery_details=True)
    shop.add_order(4711, current_state=2)
    ship(sync, warehouse, clock, "4711")
    push(sync, client_for(shop))
    page = shop.order_page_messages(4711)  # 8.x: the order's customer thread, what the order page lists
    texts = [m["message"] for m in page]
    assert any(t.startswith("Sage : document BL") for t in texts) and any("date de livraison" in t for t in texts)
    assert any(t.startswith("Sage : livraison BL") and "6A11111111111" in t for t in texts)
    assert all(str(m["private"]) == "1" for m in page) and len(texts) == len(set(texts))
    sync.run(full=True)
    push(sync, client_for(shop))
    assert len(shop.order_page_messages(4711)) == len(texts)


# --- faults -------------------------------------------------------------------------------------------------------

FAULTS = [
    ("POST", "order_histories", "500_after_commit"),
    ("POST", "order_histories", "timeout"),
    ("POST", "order_histories", "reset_after_commit"),
    ("POST", "order_histories", "500"),
    ("POST", "order_histories", "reset"),
    ("POST", "order_histories", "timeout_before"),
    ("POST", "order_histories", "503"),
    ("POST", "order_histories", "429"),
    ("PATCH", "order_carriers", "500_after_commit"),
    ("PATCH", "order_carriers", "timeout"),
    ("PATCH", "order_carriers", "500"),
    ("PATCH", "order_carriers", "reset"),
    ("GET", "orders", "500"),
    ("GET", "orders", "429"),
    ("GET", "order_carriers", "reset"),
    ("GET", "order_carriers", "503"),
]


@pytest.mark.parametrize("method, resource, kind", FAULTS, ids=[f"{m} {r} {k}" for m, r, k in FAULTS])
def test_every_fault_ends_pushed_once(sync, warehouse, clock, shop, method, resource, kind):
    shop.add_order(4711, current_state=2)
    ship(sync, warehouse, clock, "4711")
    shop.fail_next(method, resource, kind, retry_after=0, delay=1.5)
    client = client_for(shop, timeout=0.5)
    for _ in range(4):  # the first pass may leave it for later; later passes finish it
        push(sync, client)
        make_due(sync)
    assert statuses(sync) == ["pushed", "pushed"]
    assert histories(shop, 4711).count(4) == 1, histories(shop, 4711)  # no duplicate history row
    assert len(state_mails(shop, 4711)) <= 1  # no duplicate mail (a mail that failed after commit stays failed)
    assert int(shop.orders[4711]["current_state"]) == 4
    carrier = next(row for row in shop.order_carriers.values() if int(row["id_order"]) == 4711)
    assert carrier["tracking_number"] == "6A11111111111"  # nothing lost
    assert len([m for m in shop.mails if m["kind"] == "in_transit"]) == 0


def test_permanent_failures_stop_and_do_not_block_other_orders(sync, warehouse, clock, shop):
    shop.add_order(4712, current_state=2)  # 4711 does not exist in the shop
    ship(sync, warehouse, clock, "4711")
    ship(sync, warehouse, clock, "4712")
    report = push(sync, client_for(shop))
    by_order = {u.order_key: u for u in sync.session.scalars(select(Update).where(Update.state_id.is_not(None)))}
    assert by_order["4711"].push_status == "failed" and "does not exist in the shop" in by_order["4711"].push_error
    assert by_order["4712"].push_status == "pushed" and report.failed >= 1
    assert push(sync, client_for(shop)).failed == 0  # failed updates are not retried


def test_wrong_key_stops_the_push_without_failing_updates(sync, warehouse, clock, shop):
    shop.add_order(4711, current_state=2)
    ship(sync, warehouse, clock, "4711")
    report = push_pending(UnitOfWork(sync.session), PrestaShopClient(shop.url, "W" * 32, sleep=lambda s: None))
    assert report.error and "401" in report.error
    assert set(statuses(sync)) == {"pending"}
    assert report.pushed == 0 and report.failed == 0


def test_permission_missing_is_a_setup_error(sync, warehouse, clock, shop):
    shop.permissions["order_histories"] = {"GET"}
    shop.add_order(4711, current_state=2)
    ship(sync, warehouse, clock, "4711")
    report = push(sync, client_for(shop))
    assert report.error and "405" in report.error
    assert "failed" not in statuses(sync)


# --- concurrency ----------------------------------------------------------------------------------------------------


def test_two_workers_push_each_update_once(sync, warehouse, clock, shop, store_db, backend):
    if backend != "postgresql":
        pytest.skip("FOR UPDATE SKIP LOCKED is PostgreSQL's; SQLite runs one push at a time (tested by the lease)")
    keys = [str(6000 + n) for n in range(30)]
    for key in keys:
        shop.add_order(int(key), current_state=2)
        piece = warehouse.create_order(key, LINES)
        warehouse.transform((1, piece), 3, header={"DO_Coord01": f"6A{key}"})
    sync.run()
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            with Session(store_db.engine) as session:
                push_pending(UnitOfWork(session), client_for(shop), worker=name)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert set(statuses(sync)) == {"pushed"}
    for key in keys:
        assert histories(shop, int(key)).count(4) == 1
    posts = [r for r in shop.requests if r["method"] == "POST" and r["resource"] == "order_histories"]
    assert len(posts) == len(keys)


def test_sqlite_pushes_take_turns(sync, warehouse, clock, shop, backend):
    if backend != "sqlite":
        pytest.skip("the lease is SQLite's")
    from sync.store.locks import acquire_lock, release_lock

    shop.add_order(4711, current_state=2)
    ship(sync, warehouse, clock, "4711")
    assert acquire_lock(sync.session, "push", "other worker", timedelta(minutes=1))
    report = push(sync, client_for(shop))
    assert report.pushed == 0 and "another push is running" in report.details
    release_lock(sync.session, "push", "other worker")
    assert push(sync, client_for(shop)).pushed == 2


def test_several_workers_in_one_process_keep_each_order_in_order(sync, warehouse, clock, shop):
    keys = [str(7000 + n) for n in range(12)]
    for key in keys:
        shop.add_order(int(key), current_state=2)
        piece = warehouse.create_order(key, LINES)
        warehouse.transform((1, piece), 3, take={"MUG": 1}, header={"DO_Coord01": f"6A{key}1"})
    sync.settings(stage_states__partially_shipped=3)
    sync.run()
    for key in keys:
        warehouse.transform((1, warehouse.documents(key)[0][1]), 3, header={"DO_Coord01": f"6A{key}2"})
    sync.run()
    shop.latency = 0.01
    report = push(sync, client_for(shop), workers=4)
    assert report.pushed == len(sync.updates()) and report.failed == 0
    for key in keys:
        assert histories(shop, int(key))[-1] == 4  # the latest state wins; 3 was superseded, never posted after 4
        assert 3 not in histories(shop, int(key))


def test_in_transit_mail_goes_when_the_state_is_not_posted(sync, warehouse, clock, shop):
    shop.add_order(4711, current_state=4)  # the shop already says Shipped: no state mail will carry the tracking
    ship(sync, warehouse, clock, "4711")
    push(sync, client_for(shop))
    assert [m["kind"] for m in shop.mails if int(m["id_order"]) == 4711] == ["in_transit"]


def test_a_shop_that_does_not_answer_stops_the_pass_at_once(sync, warehouse, clock, shop):
    shop.add_order(4711, current_state=2)
    ship(sync, warehouse, clock, "4711")
    url = shop.url
    shop.stop()
    report = push_pending(UnitOfWork(sync.session), PrestaShopClient(url, KEY, sleep=lambda s: None))
    assert report.error and "connection refused" in report.error and report.failed == 0
