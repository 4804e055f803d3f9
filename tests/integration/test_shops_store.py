"""Shops in the store (issue 16, first step): migration 0011 makes a populated single-shop store shop `default`
without losing anything and back; new rows belong to the default shop; GET /api/v1/shops and `flask shop list`
show what each key may see (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import inspect, select, text

from app import configure_shop
from models import ShopOrder, db
from models.shops import Shop
from sync.core.stages import ShopUpdate
from sync.store.feed import add_update
from sync.store.keys import create_key
from sync.store.settings import current_settings
from sync.store.shops import default_shop
from tests.conftest import bearer
from tests.simulator import ShopSimulator

SHOPS = "/api/v1/shops"
NOW = "2026-01-01 10:00:00"


def _populate_0010(conn) -> dict[str, int]:
    """A store of release 0010: keys of each scope, settings, shop orders with pieces, updates, acknowledgements, a cursor."""
    for name, scope, revoked in (("module", "write", None), ("reader", "read", None), ("boss", "admin", None), ("old", "write", NOW)):
        conn.execute(
            text("INSERT INTO api_keys (name, key_hash, prefix, scope, created_at, revoked_at) VALUES (:n, :h, 'sgps_x', :s, :t, :r)"),
            {"n": name, "h": name * 8, "s": scope, "t": NOW, "r": revoked},
        )
    conn.execute(
        text("INSERT INTO settings (id, document, version, updated_at) VALUES (1, :d, 3, :t)"),
        {"d": json.dumps({"notify_customer": False}), "t": NOW},
    )
    for key in ("4711", "4712"):
        conn.execute(
            text(
                "INSERT INTO shop_orders (order_key, state_rank, states_sent, snapshot, documents, is_open, vanished_runs, "
                "first_seen_at, checked_at, updated_at) VALUES (:k, 2, '[4]', '{}', '{}', true, 0, :t, :t, :t)"
            ),
            {"k": key, "t": NOW},
        )
    conn.execute(text("INSERT INTO order_pieces (shop_order_id, piece) SELECT id, 'BC' || order_key FROM shop_orders"))
    for _ in range(3):
        conn.execute(text("INSERT INTO updates (order_key, changes, created_at) VALUES ('4711', '[\"state\"]', :t)"), {"t": NOW})
    keys = dict(conn.execute(text("SELECT name, id FROM api_keys")).all())
    conn.execute(text("INSERT INTO update_acks (key_id, update_id, acked_at) VALUES (:k, 1, :t)"), {"k": keys["module"], "t": NOW})
    conn.execute(text("INSERT INTO shop_cursors (name, value, updated_at) VALUES ('tracking', '2026-01-01 09:00:00', :t)"), {"t": NOW})
    return keys


def _counts(conn) -> dict[str, int]:
    tables = ("api_keys", "settings", "shop_orders", "order_pieces", "updates", "update_acks", "shop_cursors")
    return {table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() for table in tables}


KEPT = {"api_keys": 4, "settings": 1, "shop_orders": 2, "order_pieces": 2, "updates": 3, "update_acks": 1, "shop_cursors": 1}


def test_migration_0011_puts_a_populated_store_in_the_default_shop_and_back(app, store_db):
    from flask_migrate import downgrade, upgrade

    with app.app_context():
        db.metadata.drop_all(db.engine)
        upgrade(revision="0010")
        with db.engine.begin() as conn:
            keys = _populate_0010(conn)
        upgrade()
        with db.engine.connect() as conn:
            assert _counts(conn) == KEPT  # nothing lost, nor deleted by a cascade
            shops = conn.execute(text("SELECT id, code, name, is_default, id_shop, prestashop_url FROM shops")).all()
            assert [tuple(row) for row in shops] == [(1, "default", "Boutique principale", True, None, None)]
            assert set(conn.execute(text("SELECT shop_id FROM shop_orders UNION SELECT shop_id FROM updates")).scalars()) == {1}
            bound = dict(conn.execute(text("SELECT name, shop_id FROM api_keys")).all())
            assert bound == {"module": 1, "reader": 1, "old": 1, "boss": None}
        assert "ix_updates_shop" in {index["name"] for index in inspect(db.engine).get_indexes("updates")}
        shop = default_shop(db.session)
        assert (shop.code, shop.rule, shop.is_default) == ("default", {"kind": "all"}, True)
        document, version = current_settings(db.session)
        assert document["notify_customer"] is False and version == 3  # the settings row is the default shop's
        _new_rows_belong_to_the_default_shop()
        db.session.add(Shop(code="outlet", name="Outlet", rule={"kind": "prefix", "prefix": "OUT"}))
        db.session.commit()  # id 1 was given by the migration: the sequence went past it
        assert db.session.scalar(select(Shop.id).where(Shop.code == "outlet")) == 2
        db.session.execute(text("DELETE FROM shop_orders WHERE order_key = 'NEW'"))
        db.session.execute(text("DELETE FROM updates WHERE id = (SELECT max(id) FROM updates)"))
        db.session.execute(text("DELETE FROM shops WHERE code = 'outlet'"))
        db.session.commit()
        downgrade(revision="0010")
        _check_downgraded(keys)
        upgrade()


def _new_rows_belong_to_the_default_shop() -> None:
    order = ShopOrder(order_key="NEW")
    update = add_update(
        db.session, "NEW", None, ShopUpdate("ordered", 2, [], None, None, None, ["state"]), run_id=None, created_at=datetime(2026, 1, 2)
    )
    reader, _ = create_key(db.session, "new-reader", "read")
    admin, _ = create_key(db.session, "new-admin", "admin")
    db.session.add(order)
    db.session.commit()
    assert (order.shop_id, update.shop_id, reader.shop_id, admin.shop_id) == (1, 1, 1, None)
    db.session.execute(text("DELETE FROM api_keys WHERE name IN ('new-reader', 'new-admin')"))
    db.session.commit()


def _check_downgraded(keys: dict[str, int]) -> None:
    assert "shops" not in inspect(db.engine).get_table_names()
    for table in ("shop_orders", "updates", "api_keys"):
        assert "shop_id" not in {column["name"] for column in inspect(db.engine).get_columns(table)}
    assert "ix_updates_shop" not in {index["name"] for index in inspect(db.engine).get_indexes("updates")}
    with db.engine.begin() as conn:
        assert _counts(conn) == KEPT
        assert dict(conn.execute(text("SELECT name, id FROM api_keys")).all()) == keys
        new_id = conn.execute(
            text("INSERT INTO updates (order_key, changes, created_at) VALUES ('4711', '[]', :t) RETURNING id"), {"t": NOW}
        ).scalar()
        assert new_id == 5  # the update deleted before the downgrade (4) keeps its id: ids are never given again
        conn.execute(text("DELETE FROM updates WHERE id = 5"))


def test_a_store_made_from_the_models_has_the_default_shop(app):
    with app.app_context():
        assert [(shop.id, shop.code, shop.rule) for shop in db.session.scalars(select(Shop))] == [(1, "default", {"kind": "all"})]
        db.session.add(Shop(code="outlet", rule={"kind": "all"}))
        db.session.commit()
        assert db.session.scalar(select(Shop.id).where(Shop.code == "outlet")) == 2


@pytest.fixture
def outlet(app, keys, monkeypatch) -> None:
    """A second shop, pushing (its address, and its key in the environment), with a shop order of its own; the default
    shop has two."""
    monkeypatch.setenv("PRESTASHOP_API_KEY_OUTLET", "O" * 32)
    with app.app_context():
        db.session.get(Shop, 1).rule = {"kind": "prefix", "values": ["WEB-"]}
        outlet = Shop(code="outlet", name="Outlet", rule={"kind": "prefix", "values": ["OUT"]}, prestashop_url="https://outlet.example/api")
        db.session.add(outlet)
        db.session.flush()
        db.session.add_all([ShopOrder(order_key="4711"), ShopOrder(order_key="4712"), ShopOrder(order_key="OUT1", shop_id=outlet.id)])
        db.session.commit()


def _codes(client, key: str) -> list[str]:
    answer = client.get(SHOPS, headers=bearer(key))
    assert answer.status_code == 200, answer.json
    return [shop["code"] for shop in answer.json["shops"]]


def test_each_key_sees_its_shop_and_admin_keys_see_all(client, keys, outlet):
    assert _codes(client, keys["read"]) == _codes(client, keys["write"]) == ["default"]
    assert _codes(client, keys["admin"]) == ["default", "outlet"]
    shops = client.get(SHOPS, headers=bearer(keys["admin"])).json["shops"]
    assert shops == [
        {
            "code": "default",
            "name": "Boutique principale",
            "is_default": True,
            "rule": {"kind": "prefix", "values": ["WEB-"]},
            "id_shop": None,
            "prestashop_url": None,
            "push": False,
            "orders": 2,
        },
        {
            "code": "outlet",
            "name": "Outlet",
            "is_default": False,
            "rule": {"kind": "prefix", "values": ["OUT"]},
            "id_shop": None,
            "prestashop_url": "https://outlet.example/api",
            "push": True,
            "orders": 1,
        },
    ]


def test_one_shop_forbidden_to_a_key_of_another_and_unknown_codes(client, keys, outlet):
    answer = client.get(f"{SHOPS}/default", headers=bearer(keys["write"]))
    assert answer.status_code == 200 and answer.json["orders"] == 2 and answer.json["is_default"] is True
    forbidden = client.get(f"{SHOPS}/outlet", headers=bearer(keys["write"]))
    assert forbidden.status_code == 403 and forbidden.json["code"] == "shop_forbidden"
    assert forbidden.headers["Content-Type"] == "application/problem+json"
    assert client.get(f"{SHOPS}/outlet", headers=bearer(keys["admin"])).json["orders"] == 1
    for code in ("nope", "x" * 300):
        missing = client.get(f"{SHOPS}/{code}", headers=bearer(keys["admin"]))
        assert missing.status_code == 404 and missing.json["code"] == "shop_not_found"
    assert client.get(SHOPS).status_code == 401


def test_the_default_shop_pushes_when_a_shop_is_connected(app, client, keys):
    shop = ShopSimulator(version="8.1.5", key="S" * 32).start()
    try:
        app.config.update(PRESTASHOP_URL=shop.url, PRESTASHOP_API_KEY="S" * 32)
        configure_shop(app)
        assert client.get(f"{SHOPS}/default", headers=bearer(keys["read"])).json["push"] is True
    finally:
        shop.stop()


def test_flask_shop_list(app, runner, outlet):
    result = runner.invoke(args=["shop", "list"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        'default (default)\tBoutique principale\t{"kind": "prefix", "values": ["WEB-"]}\tpush off\t2 shop orders',
        'outlet\tOutlet\t{"kind": "prefix", "values": ["OUT"]}\tpush on\t1 shop orders',
    ]
