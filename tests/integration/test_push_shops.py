"""Push per shop (issue 16): each shop's updates go through its own connection with its own settings; a multistore
installation gets each write in its shop's context (id_shop); one shop down never stops the others. Real HTTP to
loopback simulators, the real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from models import ShopOrder, Update, utcnow
from sync.core.stages import ShopUpdate
from sync.prestashop.client import PrestaShopClient, ShopSetupError
from sync.prestashop.connections import Connection, ShopConnections
from sync.prestashop.states import ShopStates, shop_client
from sync.services.push import push_pending
from sync.services.push_retry import Actor, NotPushed, retry_failed
from sync.services.run_config import RunConfig
from sync.services.scheduler import tick
from sync.services.shop_poll import poll_shop_tracking
from sync.services.unit_of_work import UnitOfWork
from sync.store.feed import add_update
from sync.store.settings import save_settings
from sync.store.shops import create_shop, get_shop, list_shops, update_shop
from tests.simulator import ShopSimulator

KEY_A = "A" * 32
KEY_B = "B" * 32


@pytest.fixture
def sim_a():
    sim = ShopSimulator(version="8.1.5", key=KEY_A, shop_name="Boutique").start()
    yield sim
    sim.stop()


@pytest.fixture
def sim_b():
    sim = ShopSimulator(version="8.1.5", key=KEY_B, shop_name="B2B").start()
    yield sim
    sim.stop()


def connections(url: str | None, key: str | None, environ: dict | None = None) -> ShopConnections:
    """What app.configure_shop builds: the default shop through PRESTASHOP_URL, the others through their own address."""
    config = {"PRESTASHOP_URL": url, "PRESTASHOP_API_KEY": key, "PRESTASHOP_TIMEOUT": 2}
    client = shop_client(config)
    if client is not None:
        client.sleep = lambda seconds: None
    default = Connection(client=client, states=ShopStates(client)) if client is not None else None
    return ShopConnections(config, environ or {}, default)


def two_shops(session, b2b: dict) -> int:
    """The default shop on series 0, shop b2b on series 1 (rules that never overlap); b2b's id."""
    update_shop(session, "default", {"rule": {"kind": "souche", "values": [0]}})
    row = create_shop(session, {"code": "b2b", "name": "B2B", "rule": {"kind": "souche", "values": [1]}, **b2b})
    session.commit()
    return row.id


def follow(session, order_key: str, id_order: int, shop_id: int, state_id: int | None, tracking: str | None = None) -> None:
    """A shop order followed for `shop_id`, shipped, with its update waiting to be pushed (as a run stores them)."""
    session.add(ShopOrder(order_key=order_key, id_order=id_order, shop_id=shop_id, stage="shipped", current_stage="shipped"))
    changes = ["stage", "state"] + (["tracking"] if tracking else [])
    shop_update = ShopUpdate("shipped", state_id, [tracking] if tracking else None, None, None, None, changes)
    add_update(session, order_key, id_order, shop_update, run_id=None, created_at=utcnow(), shop_id=shop_id)
    session.commit()


def push(session, shop, **options):
    report = push_pending(UnitOfWork(session), shop, **options)
    session.expire_all()
    return report


def statuses(session) -> dict[str, str]:
    return {u.order_key: u.push_status for u in session.scalars(select(Update).order_by(Update.id))}


def histories(sim, id_order: int) -> list[int]:
    return [int(row["id_order_state"]) for row in sim.histories if int(row["id_order"]) == id_order]


def tracking_of(sim, id_order: int) -> str:
    return next(row["tracking_number"] for row in sim.order_carriers.values() if int(row["id_order"]) == id_order)


def writes(sim) -> list[tuple[str, str | None]]:
    return [(f"{r['effective_method']} {r['resource']}", r["id_shop"]) for r in sim.requests if r["effective_method"] != "GET"]


# --- two installations ------------------------------------------------------------------------------------------


def test_each_shop_gets_its_own_orders_states_and_settings(session, gescom, sim_a, sim_b):
    b2b = two_shops(session, {"prestashop_url": sim_b.url})
    # Each shop its own mapping and mails: the default maps shipped to 4 and mails, b2b maps it to 5 and does not.
    save_settings(session, {"stage_states": {"shipped": 4}, "notify_customer": True}, gescom.schema())
    save_settings(session, {"stage_states": {"shipped": 5}, "notify_customer": False}, gescom.schema(), shop_id=b2b)
    session.commit()
    sim_a.add_order(4711, current_state=2)
    sim_b.add_order(4711, current_state=2)
    follow(session, "4711", 4711, 1, 4, "6A11111111111")
    follow(session, "b2b:4711", 4711, b2b, 5, "6B22222222222")

    report = push(session, connections(sim_a.url, KEY_A, {"PRESTASHOP_API_KEY_B2B": KEY_B}))

    assert (report.pushed, report.failed, report.error) == (2, 0, None)
    assert set(report.shops) == {"default", "b2b"} and report.shops["b2b"].pushed == 1
    assert histories(sim_a, 4711)[-1] == 4 and 5 not in histories(sim_a, 4711)
    assert histories(sim_b, 4711)[-1] == 5 and 4 not in histories(sim_b, 4711)
    assert tracking_of(sim_a, 4711) == "6A11111111111" and tracking_of(sim_b, 4711) == "6B22222222222"
    assert [m["kind"] for m in sim_a.mails] == ["state"]  # the default shop mails its customers
    assert sim_b.mails == []  # b2b's notify_customer is off
    assert all(r["id_shop"] is None for r in sim_a.requests + sim_b.requests)  # no multistore: no shop context sent
    assert statuses(session) == {"4711": "pushed", "b2b:4711": "pushed"}
    assert push(session, connections(sim_a.url, KEY_A, {"PRESTASHOP_API_KEY_B2B": KEY_B})).pushed == 0  # nothing twice


def test_a_shop_without_a_connection_is_left_to_the_pull_feed(session, sim_a):
    b2b = two_shops(session, {"prestashop_url": "http://127.0.0.1:9/"})  # an address, but no PRESTASHOP_API_KEY_B2B
    sim_a.add_order(4711, current_state=2)
    follow(session, "4711", 4711, 1, 4)
    follow(session, "b2b:4711", 4711, b2b, 5)
    report = push(session, connections(sim_a.url, KEY_A))
    assert (report.pushed, set(report.shops)) == (1, {"default"})
    assert statuses(session) == {"4711": "pushed", "b2b:4711": "pending"}
    # A client stands for the default shop alone, as before shops: b2b's update is never sent to the default shop.
    follow(session, "4712", 4712, 1, 4)
    sim_a.add_order(4712, current_state=2)
    report = push(session, PrestaShopClient(sim_a.url, KEY_A, sleep=lambda seconds: None))
    assert report.pushed == 1 and statuses(session)["b2b:4711"] == "pending"
    assert 5 not in histories(sim_a, 4711)


def test_one_shop_down_does_not_stop_the_other(session, sim_a, sim_b):
    b2b = two_shops(session, {"prestashop_url": sim_b.url})
    sim_b.add_order(4711, current_state=2)
    follow(session, "4711", 4711, 1, 4, "6A11111111111")
    follow(session, "b2b:4711", 4711, b2b, 4, "6B22222222222")
    sim_a.stop()  # the default shop's address answers no more

    report = push(session, connections(sim_a.url, KEY_A, {"PRESTASHOP_API_KEY_B2B": KEY_B}))

    assert report.shops["b2b"].pushed == 1 and histories(sim_b, 4711)[-1] == 4
    assert report.error is not None and report.error.startswith("shop default: ") and "does not answer" in report.error
    assert statuses(session) == {"4711": "pending", "b2b:4711": "pushed"}  # the default shop's update waits, not failed


def test_tracking_poll_per_shop(session, sim_a, sim_b, gescom):
    b2b = two_shops(session, {"prestashop_url": sim_b.url})
    save_settings(session, {"tracking": {"import_from_shop": True}}, gescom.schema(), shop_id=b2b)  # b2b only
    session.commit()
    sim_a.add_order(4711, current_state=4, tracking_number="TYPEDINA")
    sim_b.add_order(4711, current_state=4, tracking_number="TYPEDINB")
    follow(session, "4711", 4711, 1, None)
    follow(session, "b2b:4711", 4711, b2b, None)
    sim_a.reset_log()
    sim_b.reset_log()
    report = poll_shop_tracking(UnitOfWork(session), gescom, connections(sim_a.url, KEY_A, {"PRESTASHOP_API_KEY_B2B": KEY_B}))
    assert sim_a.requests == []  # the default shop does not import tracking numbers: never read
    assert [r["resource"] for r in sim_b.requests] == ["order_carriers"] and report.orders_seen == 1
    assert "TYPEDINB" in " ".join(report.warnings)  # GesCom has no documents for it here: said, not lost


def test_retry_only_for_a_shop_that_pushes(session, sim_a):
    b2b = two_shops(session, {"prestashop_url": "http://127.0.0.1:9/"})  # no key: b2b does not push
    follow(session, "4711", 4711, 1, 4)
    follow(session, "b2b:4711", 4711, b2b, 4)
    for item in session.scalars(select(Update)):
        item.push_status = "failed"
    session.commit()
    actor = Actor("admin", "api")
    with pytest.raises(NotPushed):
        retry_failed(UnitOfWork(session), "b2b:4711", actor=actor, connections=connections(sim_a.url, KEY_A))
    session.rollback()
    with pytest.raises(NotPushed):
        retry_failed(UnitOfWork(session), None, actor=actor, connections=connections(None, None))
    session.rollback()
    result = retry_failed(UnitOfWork(session), None, actor=actor, connections=connections(sim_a.url, KEY_A))
    session.commit()
    assert result.retried == 1 and statuses(session) == {"4711": "pending", "b2b:4711": "failed"}


# --- one multistore installation --------------------------------------------------------------------------------


def multistore(session, url: str) -> int:
    """The default shop is id_shop 1 of the installation PRESTASHOP_URL names, b2b its id_shop 2; b2b's id."""
    update_shop(session, "default", {"rule": {"kind": "souche", "values": [0]}, "id_shop": 1})
    b2b = {"code": "b2b", "name": "B2B", "rule": {"kind": "souche", "values": [1]}, "id_shop": 2, "prestashop_url": url}
    row = create_shop(session, b2b)
    session.commit()
    return row.id


def test_multistore_each_write_carries_its_shop(session, sim_a):
    b2b = multistore(session, sim_a.url)
    sim_a.key_shops = {1, 2}
    sim_a.add_order(4711, current_state=2, id_shop=1)
    sim_a.add_order(4712, current_state=2, id_shop=2)
    follow(session, "4711", 4711, 1, 4, "6A11111111111")
    follow(session, "b2b:4712", 4712, b2b, 4, "6B22222222222")
    shops = connections(sim_a.url, KEY_A)  # b2b has no PRESTASHOP_API_KEY_B2B: the installation's key serves

    report = push(session, shops)

    assert (report.pushed, report.failed, report.error) == (2, 0, None)
    by_shop = {}
    for request in sim_a.requests:
        by_shop.setdefault(request["id_shop"], []).append(request)
    assert set(by_shop) == {"1", "2"}  # every request carried its shop's context, reads and writes
    assert writes(sim_a) == [
        ("PATCH order_carriers", "1"),
        ("POST order_histories", "1"),
        ("PATCH order_carriers", "2"),
        ("POST order_histories", "2"),
    ]
    assert all("4712" not in r["body"] for r in by_shop["1"]) and all("4711" not in r["body"] for r in by_shop["2"])
    assert histories(sim_a, 4711)[-1] == 4 and histories(sim_a, 4712)[-1] == 4
    rows = list_shops(session)
    a, b = shops.client_for(rows[0], rows), shops.client_for(rows[1], rows)
    assert a is not b and a.installation is b.installation and (a.id_shop, b.id_shop) == (1, 2)
    assert a.version is not None and a.version.raw == "8.1.5"  # learnt once for the installation


def test_multistore_a_shop_the_key_is_not_enabled_on_is_a_set_up_error(session, sim_a):
    b2b = multistore(session, sim_a.url)
    sim_a.add_order(4711, current_state=2, id_shop=1)
    sim_a.add_order(4712, current_state=2, id_shop=2)
    sim_a.key_shops = {1}  # the key is enabled on shop 1 only
    follow(session, "4711", 4711, 1, 4)
    follow(session, "b2b:4712", 4712, b2b, 4)

    report = push(session, connections(sim_a.url, KEY_A))

    assert report.shops["default"].pushed == 1 and "shop b2b: " in report.error and "code 132" in report.error
    assert statuses(session) == {"4711": "pushed", "b2b:4712": "pending"}  # kept for when the key is enabled there


def test_a_shop_id_the_installation_does_not_have_is_a_set_up_error(sim_a):
    sim_a.add_order(4711, current_state=2, id_shop=1)
    # A number: the core lets it through, then finds no key-shop association for it (shopHasRight): 403 code 132.
    with pytest.raises(ShopSetupError) as error:
        PrestaShopClient(sim_a.url, KEY_A, id_shop=9, sleep=lambda seconds: None).order(4711)
    assert (error.value.status, error.value.code) == (403, 132)
    # Not a number: 404 code 999 (reference §2.4), a set-up error too, never a refusal of one update.
    with pytest.raises(ShopSetupError) as error:
        PrestaShopClient(sim_a.url, KEY_A, id_shop="x", sleep=lambda seconds: None).order(4711)  # type: ignore[arg-type]
    assert (error.value.status, error.value.code) == (404, 999)
    assert PrestaShopClient(sim_a.url, KEY_A, id_shop=1).order(4711)["id"] in (4711, "4711")


def test_a_shop_key_may_come_from_another_shop_of_its_installation(session, sim_a):
    update_shop(session, "default", {"rule": {"kind": "souche", "values": [0]}, "id_shop": 1, "prestashop_url": sim_a.url + "api/"})
    create_shop(session, {"code": "b2b", "name": "B2B", "rule": {"kind": "souche", "values": [1]}, "id_shop": 2, "prestashop_url": sim_a.url})
    create_shop(session, {"code": "pro", "name": "Pro", "rule": {"kind": "souche", "values": [2]}, "prestashop_url": "http://127.0.0.1:9/"})
    session.commit()
    shops = connections(None, None, {"PRESTASHOP_API_KEY_DEFAULT": KEY_A})
    default, b2b, pro = (get_shop(session, code) for code in ("default", "b2b", "pro"))
    assert shops.address_of(b2b) == (sim_a.url, KEY_A)  # default's key, same installation (its /api/ aside)
    assert shops.get(pro) is None  # another installation: no key of its own, none borrowed
    assert shops.client_for(b2b).installation is shops.client_for(default).installation


def test_a_scheduler_tick_pushes_to_every_shop(session, gescom, sim_a, sim_b):
    b2b = two_shops(session, {"prestashop_url": sim_b.url})
    sim_b.add_order(4711, current_state=2)
    follow(session, "4711", 4711, 1, 4)
    follow(session, "b2b:4711", 4711, b2b, 4)
    sim_a.stop()
    tick(session, gescom, connections(sim_a.url, KEY_A, {"PRESTASHOP_API_KEY_B2B": KEY_B}), RunConfig(), threading.Event())
    session.expire_all()
    assert statuses(session) == {"4711": "pending", "b2b:4711": "pushed"} and histories(sim_b, 4711)[-1] == 4
