"""Conflicts in push mode against the PrestaShop simulator (8.x and 1.7) over real HTTP: an order the shop cancelled,
refunded or refused the payment of gets nothing written and no mail, until the merchant decides or the shop's state
changes."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from models import OrderEvent, Update
from sync.prestashop.client import PrestaShopClient
from sync.prestashop.connections import Connection, ShopConnections
from sync.prestashop.states import ShopStates
from sync.services import conflicts
from sync.services.push import push_pending
from sync.services.push_retry import Actor
from sync.services.unit_of_work import UnitOfWork
from tests.simulator import ShopSimulator

KEY = "K" * 32
LINES = [("TSHIRT-M", "T-shirt M", 2), ("MUG", "Mug", 1)]
MERCHANT = Actor("Marie", "api")


@pytest.fixture(params=["8.1.5", "1.7.8.11"])
def shop(request):
    sim = ShopSimulator(version=request.param, key=KEY).start()
    yield sim
    sim.stop()


def connections_of(sim) -> ShopConnections:
    """The shop connected as the app connects it (PRESTASHOP_URL, PRESTASHOP_API_KEY): its updates are pushed."""
    client = PrestaShopClient(sim.url, KEY, timeout=(2.0, 2.0), sleep=lambda seconds: None)
    return ShopConnections({"PRESTASHOP_URL": sim.url, "PRESTASHOP_API_KEY": KEY}, {}, Connection(client, ShopStates(client)))


def push(sync, sim):
    report = push_pending(UnitOfWork(sync.session), connections_of(sim))
    sync.session.expire_all()
    return report


def writes(sim) -> list[str]:
    return [f"{r['method']} {r['resource']}" for r in sim.requests if r["method"] not in ("GET", "HEAD")]


def make_due(sync) -> None:
    """The time a held order waits before the shop is read again has gone by."""
    sync.session.execute(update(Update).values(next_attempt_at=None))
    sync.session.commit()


def shipment(sync) -> Update:
    sync.session.expire_all()
    return sync.session.scalars(select(Update).where(Update.state_id == 4)).one()


def events(sync, kind: str) -> list[dict]:
    return [event.data for event in sync.session.scalars(select(OrderEvent).where(OrderEvent.kind == kind).order_by(OrderEvent.id))]


def ship(sync, warehouse, clock, key: str = "4711", tracking: str = "6A11111111111") -> None:
    piece = warehouse.create_order(key, LINES)
    sync.run()
    clock.tick()
    warehouse.transform((1, piece), 3, header={"DO_Coord01": tracking})
    sync.run()


def set_state(sim, id_order: int, state_id: int) -> None:
    """The merchant changes the order's state in the back office."""
    sim.orders[id_order]["current_state"] = str(state_id)


def held_cancelled_order(sync, warehouse, clock, shop) -> Update:
    sync.settings(options__send_piece_number=True)  # a message would go too
    shop.add_order(4711, current_state=6)  # cancelled in the shop...
    ship(sync, warehouse, clock)  # ...shipped in Sage, with a tracking number
    shop.reset_log()
    report = push(sync, shop)
    assert report.held == 1 and report.failed == 0
    return shipment(sync)


def test_a_cancelled_order_shipped_in_sage_gets_nothing_written_nor_mailed(sync, warehouse, clock, shop):
    item = held_cancelled_order(sync, warehouse, clock, shop)
    assert writes(shop) == [] and shop.mails == []
    carrier = next(row for row in shop.order_carriers.values() if int(row["id_order"]) == 4711)
    assert carrier["tracking_number"] == "" and int(shop.orders[4711]["current_state"]) == 6
    assert item.push_status == "conflict"
    assert item.conflict | {"since": None} == {
        "status": "open",
        "shop_state_id": 6,
        "reason": "PS_OS_CANCELED",
        "since": None,
        "seen_by": "push",
        "apply": False,
    }
    assert events(sync, "conflict_opened") == [{"update_ids": [item.id], "shop_state_id": 6, "reason": "PS_OS_CANCELED", "seen_by": "push"}]
    assert [view["update_id"] for view in conflicts.open_conflicts(sync.session).conflicts] == [item.id]
    # Not due again before the recheck: no request at all. Then judged again: read only, still held, said once.
    shop.reset_log()
    assert push(sync, shop).held == 0 and shop.requests == []
    make_due(sync)
    assert push(sync, shop).held == 1
    assert writes(shop) == [] and shop.mails == [] and len(events(sync, "conflict_opened")) == 1
    assert shipment(sync).conflict["since"] == item.conflict["since"]


@pytest.mark.parametrize("state_id, reason", [(7, "PS_OS_REFUND"), (8, "PS_OS_ERROR"), (10, "conflict_states")])
def test_refunded_payment_error_and_the_setting_hold_too(sync, warehouse, clock, shop, state_id, reason):
    sync.settings(conflict_states=[10])  # « En attente de virement bancaire » held too, on this shop
    shop.add_order(4711, current_state=state_id)
    ship(sync, warehouse, clock)
    shop.reset_log()
    assert push(sync, shop).held == 1
    assert writes(shop) == [] and shop.mails == []
    assert shipment(sync).conflict["reason"] == reason and shipment(sync).conflict["shop_state_id"] == state_id


def test_an_order_in_another_state_is_pushed_as_before(sync, warehouse, clock, shop):
    shop.add_order(4711, current_state=2)
    ship(sync, warehouse, clock)
    report = push(sync, shop)
    assert report.held == 0 and report.pushed == 2
    assert shipment(sync).push_status == "pushed" and shipment(sync).conflict is None
    assert int(shop.orders[4711]["current_state"]) == 4


def test_apply_anyway_pushes_it_once(sync, warehouse, clock, shop):
    item = held_cancelled_order(sync, warehouse, clock, shop)
    conflicts.apply_anyway(sync.session, item.id, MERCHANT, connections_of(shop))
    sync.session.commit()
    report = push(sync, shop)
    assert report.pushed == 1 and report.held == 0
    carrier = next(row for row in shop.order_carriers.values() if int(row["id_order"]) == 4711)
    assert carrier["tracking_number"] == "6A11111111111" and int(shop.orders[4711]["current_state"]) == 4
    assert len([mail for mail in shop.mails if mail["kind"] == "state"]) == 1
    after = shipment(sync)
    assert after.push_status == "pushed" and after.conflict["status"] == "applied_anyway" and after.conflict["resolved_by"] == "Marie"
    assert events(sync, "conflict_applied_anyway") == [
        {"update_id": item.id, "by": "Marie", "via": "api", "shop_state_id": 6, "reason": "PS_OS_CANCELED"}
    ]
    shop.reset_log()
    make_due(sync)
    assert push(sync, shop).pushed == 0 and writes(shop) == []  # once
    with pytest.raises(conflicts.NotInConflict):
        conflicts.apply_anyway(sync.session, item.id, MERCHANT, connections_of(shop))


def test_apply_anyway_over_a_state_the_merchant_set_by_hand_posts_it(sync, warehouse, clock, shop):
    sync.settings(stage_states__cancelled=6)  # even when the shop's state ranks above ours by the mapping
    shop.add_order(4711, current_state=2)
    shop.histories.append({"id": shop.next_history_id(), "id_order": 4711, "id_order_state": 6, "id_employee": 1, "date_add": shop.now()})
    set_state(shop, 4711, 6)  # cancelled by hand in the back office (an employee's history row)
    ship(sync, warehouse, clock)
    assert push(sync, shop).held == 1
    conflicts.apply_anyway(sync.session, shipment(sync).id, MERCHANT, connections_of(shop))
    sync.session.commit()
    shop.reset_log()
    assert push(sync, shop).pushed == 1
    assert int(shop.orders[4711]["current_state"]) == 4 and shipment(sync).push_answer["state"]["action"] == "posted"
    # One mail: the state's, which carries the tracking link; none "in transit" besides.
    assert [mail["kind"] for mail in shop.mails] == ["state"]


@pytest.mark.parametrize("fault", ["500", "429", "reset"])  # 503 code 22: the webservice is off, the pass stops as for any request
def test_a_shop_that_cannot_say_its_configuration_now_holds_everything_back(sync, warehouse, clock, shop, fault):
    shop.configuration["PS_OS_CANCELED"] = str(shop.add_state("Annulée (client)", id=15)["id"])  # not the native 6
    shop.add_order(4711, current_state=15)
    ship(sync, warehouse, clock)
    shop.reset_log()
    shop.fail_next("GET", "configurations", fault, times=10, retry_after=0)
    report = push(sync, shop)  # never the native states instead: 15 would pass for a normal state
    assert report.retry_later == 1 and report.held == 0 and report.error is None
    assert writes(shop) == [] and shop.mails == [] and shipment(sync).push_status == "pending"
    shop.clear_faults()
    make_due(sync)
    assert push(sync, shop).held == 1 and writes(shop) == []


def test_dismiss_sends_nothing_and_later_updates_are_judged_again(sync, warehouse, clock, shop):
    item = held_cancelled_order(sync, warehouse, clock, shop)
    conflicts.dismiss(sync.session, item.id, MERCHANT)
    sync.session.commit()
    make_due(sync)
    shop.reset_log()
    assert push(sync, shop).pushed == 0 and shop.requests == [] and shipment(sync).push_status == "dismissed"
    assert events(sync, "conflict_dismissed")[0]["update_id"] == item.id
    # The invoice comes: a new update, judged again against the shop's state, held again.
    clock.tick()
    warehouse.transform((3, warehouse.documents("4711")[-1][1]), 6)
    sync.settings(stage_states__invoiced=5)
    new = sync.new_updates()
    assert new and push(sync, shop).held == 1
    assert writes(shop) == [] and shop.mails == []
    assert conflicts.count_open(sync.session) == 1 and shipment(sync).push_status == "dismissed"


def test_a_state_changed_in_the_shop_releases_the_held_updates_in_order(sync, warehouse, clock, shop):
    item = held_cancelled_order(sync, warehouse, clock, shop)
    set_state(shop, 4711, 3)  # the merchant takes the order back: « En cours de préparation »
    make_due(sync)
    shop.reset_log()
    report = push(sync, shop)
    assert report.pushed == 1 and report.held == 0
    done = writes(shop)  # the tracking number, the state, then the message: each once
    assert done[0] in ("PUT order_carriers", "PATCH order_carriers") and done[1] == "POST order_histories"
    assert done.count("POST order_histories") == 1 and done[-1] in ("POST customer_messages", "POST messages")
    assert int(shop.orders[4711]["current_state"]) == 4
    after = shipment(sync)
    assert after.push_status == "pushed" and after.conflict["status"] == "released" and after.conflict["shop_state_id_after"] == 3
    assert events(sync, "conflict_released") == [{"update_ids": [item.id], "shop_state_id": 3, "seen_by": "push"}]


def test_the_shops_own_configuration_says_which_states_conflict(sync, warehouse, clock, shop):
    custom = shop.add_state("Annulée (client)", id=15)
    shop.configuration["PS_OS_CANCELED"] = str(custom["id"])
    shop.add_order(4711, current_state=15)
    ship(sync, warehouse, clock)
    assert push(sync, shop).held == 1 and shipment(sync).conflict["reason"] == "PS_OS_CANCELED"


def test_a_key_that_may_not_read_the_configuration_holds_on_the_native_states(sync, warehouse, clock, shop):
    del shop.permissions["configurations"]
    shop.add_order(4711, current_state=6)
    ship(sync, warehouse, clock)
    shop.reset_log()
    report = push(sync, shop)
    assert report.held == 1 and report.error is None and writes(shop) == []


def test_two_people_ending_one_conflict_at_once_end_it_once(sync, warehouse, clock, shop):
    import threading

    from sqlalchemy.orm import Session

    item = held_cancelled_order(sync, warehouse, clock, shop)
    sync.session.rollback()
    engine, barrier, outcomes = sync.session.get_bind(), threading.Barrier(2), []

    def decide(end) -> None:
        with Session(engine) as session:
            barrier.wait()
            try:
                end(session)
                session.commit()
                outcomes.append("ended")
            except conflicts.NotInConflict as error:
                session.rollback()
                outcomes.append(error.status)

    people = [
        threading.Thread(target=decide, args=(lambda session: conflicts.apply_anyway(session, item.id, MERCHANT, connections_of(shop)),)),
        threading.Thread(target=decide, args=(lambda session: conflicts.dismiss(session, item.id, Actor("Paul", "admin")),)),
    ]
    for person in people:
        person.start()
    for person in people:
        person.join(30)
    assert sorted(outcomes, key=str) in (["applied_anyway", "ended"], ["dismissed", "ended"])  # the second is told how it ended
    ended = shipment(sync)
    assert ended.push_status in ("pending", "dismissed") and ended.conflict["status"] in ("applied_anyway", "dismissed")
    kinds = [kind for kind in ("conflict_applied_anyway", "conflict_dismissed") if events(sync, kind)]
    assert len(kinds) == 1 and len(events(sync, kinds[0])) == 1
