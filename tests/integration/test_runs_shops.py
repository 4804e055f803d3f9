"""Runs with several shops on one Sage company (issue 16): each document claimed by one shop's rule, its order key
saying which (`b2b:4711`), each shop's state mapping applied to its own orders, documents no shop claims ignored and
counted. On the Sage-shaped GesCom (SQLite and PostgreSQL, case-insensitive like SQL Server)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from models import ShopOrder, SyncRun, Update
from sync.services.orders import find_order_keys, order_view, shop_order_key
from sync.services.run_config import RunConfig
from sync.services.shop_events import find_order
from sync.store.settings import save_settings
from sync.store.shops import create_shop, update_shop

LINES = [("TSHIRT-M", "T-shirt M", 2), ("MUG", "Mug", 1)]


def _shops(session, kind: str, default_values: list, b2b_values: list, field: str | None = None) -> None:
    rule = {"kind": kind, "values": default_values} | ({"field": field} if field else {})
    update_shop(session, "default", {"rule": rule})
    create_shop(session, {"code": "b2b", "name": "Boutique pro", "rule": {**rule, "values": b2b_values}})
    session.commit()


def _settings(session, gescom, shop_id: int, **stage_states) -> None:
    save_settings(session, {"stage_states": stage_states}, gescom.schema(), shop_id=shop_id)
    session.commit()


def _stored(session) -> dict[str, tuple[int, int | None]]:
    session.expire_all()
    return {order.order_key: (order.shop_id, order.id_order) for order in session.scalars(select(ShopOrder))}


def _last_run(session) -> SyncRun:
    session.expire_all()
    return session.scalars(select(SyncRun).order_by(SyncRun.id.desc())).first()


def test_two_shops_with_the_same_id_order_are_followed_apart_each_with_its_mapping(sync, session, gescom, warehouse, clock):
    _shops(session, "souche", [0], [1])
    _settings(session, gescom, 1, ordered=2, shipped=4)
    _settings(session, gescom, 2, ordered=10, shipped=5)
    b2c = warehouse.create_order("4711", LINES, header={"DO_Souche": 0})
    b2b = warehouse.create_order("4711", LINES, header={"DO_Souche": 1, "DO_Tiers": "CB2B"})
    warehouse.create_order("4711", LINES, header={"DO_Souche": 2})  # a numbering series no shop claims

    updates = {update["order_key"]: update for update in sync.new_updates()}
    assert {key: (update["id_order"], update["state_id"]) for key, update in updates.items()} == {"4711": (4711, 2), "b2b:4711": (4711, 10)}
    assert _stored(session) == {"4711": (1, 4711), "b2b:4711": (2, 4711)}
    assert dict(session.execute(select(Update.order_key, Update.shop_id)).all()) == {"4711": 1, "b2b:4711": 2}
    assert _last_run(session).documents_unclaimed == 1

    clock.tick()
    warehouse.transform((1, b2b), 3, header={"DO_Coord01": "6A44444444444"})
    [shipped] = sync.new_updates()
    assert (shipped["order_key"], shipped["stage"], shipped["state_id"]) == ("b2b:4711", "shipped", 5)
    assert shipped["tracking_numbers"] == ["6A44444444444"]
    clock.tick()
    warehouse.transform((1, b2c), 3)
    [shipped] = sync.new_updates()
    assert (shipped["order_key"], shipped["state_id"]) == ("4711", 4)
    assert sync.new_updates(full=True) == []  # a full run reads every order again: nothing new, nothing mixed


def test_prefix_rule_strips_the_prefix_from_the_id_order_and_finds_each_shop_s_documents(sync, session, gescom, warehouse, clock):
    _shops(session, "prefix", ["WEB-"], ["B2B-"])
    warehouse.create_order("WEB-4711", LINES)
    warehouse.create_order("b2b-4711 ", LINES)  # as SQL Server compares: case and trailing spaces ignored
    warehouse.create_order("XYZ-1", LINES)
    updates = {update["order_key"]: update["id_order"] for update in sync.new_updates()}
    assert updates == {"4711": 4711, "b2b:4711": 4711}
    assert _last_run(session).documents_unclaimed == 1

    # A shop order typed by a person or a client: its shop's code kept, its link value made as runs make keys.
    assert shop_order_key(session, gescom, "b2b:4711") == "b2b:4711"
    assert shop_order_key(session, gescom, "4711") == "4711"
    view = order_view(session, gescom, "b2b:4711", push_mode=False)
    assert [document["type"] for document in view["documents"]] == [1] and view["order_key"] == "b2b:4711"
    assert find_order(session, order_key="b2b:4711").shop_id == 2
    assert find_order_keys(session, gescom, "b2b:4711") == (["b2b:4711"], [])


def test_customer_account_rule_compares_as_sql_server_and_reads_a_never_seen_order_by_its_link(sync, session, gescom, warehouse, clock):
    _shops(session, "tiers", ["CWEB"], ["cb2b "])
    warehouse.create_order("1001", LINES, header={"DO_Tiers": "CWEB"})
    b2b = warehouse.create_order("1001", LINES, header={"DO_Tiers": "CB2B"})
    assert {update["order_key"] for update in sync.new_updates()} == {"1001", "b2b:1001"}

    clock.tick()
    bl = warehouse.transform((1, b2b), 3)
    session.execute(ShopOrder.__table__.delete().where(ShopOrder.order_key == "b2b:1001"))  # forgotten: read by its link value
    session.commit()
    view_keys = [update["order_key"] for update in sync.new_updates(full=True)]
    assert view_keys == ["b2b:1001"]
    view = order_view(session, gescom, "b2b:1001", push_mode=False)
    assert sorted((document["type"], document["piece"]) for document in view["documents"]) == [(3, bl)]


def test_a_free_field_rule_with_spaces_and_accents_in_its_name(sync, session, gescom, warehouse, clock):
    _shops(session, "field", ["WEB"], ["PRO"], field="N° Dossier")
    warehouse.create_order("77", LINES, header={"N° Dossier": "web"})
    pro = warehouse.create_order("77", LINES, header={"N° Dossier": "PRO"})
    assert {update["order_key"] for update in sync.new_updates()} == {"77", "b2b:77"}

    clock.tick()
    warehouse.transform((1, pro), 3)  # the BL does not carry the free field: its lines lead to the BC, which is b2b's
    [shipped] = sync.new_updates()
    assert (shipped["order_key"], shipped["stage"]) == ("b2b:77", "shipped")
    assert _last_run(session).documents_unclaimed == 0


def test_one_shop_keeps_today_s_keys(sync, session, warehouse):
    warehouse.create_order("b2b:9", LINES)  # no shop b2b: a plain link value, kept as it is (upper case: the collation ignores case)
    assert [update["order_key"] for update in sync.new_updates()] == ["B2B:9"]
    assert _last_run(session).documents_unclaimed == 0


def test_orders_a_new_rule_gives_to_another_shop_move_there_and_are_never_taken_for_vanished(sync, session, gescom, warehouse, clock):
    """A store that followed both souches as one shop, then told them apart: the order of souche 1 is followed as
    b2b's from the next run on, and the default shop's order of that number is neither cancelled nor updated."""
    sync.settings(stage_states__cancelled=6)
    warehouse.create_order("4711", LINES, header={"DO_Souche": 0})
    warehouse.create_order("4712", LINES, header={"DO_Souche": 1})
    assert {update["order_key"] for update in sync.new_updates()} == {"4711", "4712"}
    _shops(session, "souche", [0], [1])

    for _ in range(3):  # more runs than it takes to call an order cancelled
        clock.tick()
        updates = sync.new_updates(config=RunConfig(recheck_age=timedelta(0)))
        assert all(update["order_key"] != "4712" for update in updates), updates
    assert [(update["order_key"], update["id_order"]) for update in sync.updates("b2b:4712")] == [("b2b:4712", 4712)]
    assert [update["stage"] for update in sync.updates("4712")] == ["ordered"]  # nothing after: no cancellation
    assert not sync.order("4712").is_open and sync.order("b2b:4712").shop_id == 2
    assert any("shop order b2b:4712's now" in warning for run in session.scalars(select(SyncRun)) for warning in run.warnings or [])
