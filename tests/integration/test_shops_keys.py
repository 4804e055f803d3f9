"""Keys bound to a shop (issue 16, third step): a read or write key sees its shop's updates, acknowledges them and
views or writes back its shop's orders only (403 `shop_forbidden` for another shop's); an admin key sees every shop
and may name one with `shop`; `flask apikey create --shop` and `list` (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from api.schemas import FeedPageSchema, dump_feed_page
from models import ApiKey, ShopOrder, Update, UpdateAck, db
from models.shops import Shop
from sync.core.stages import ShopUpdate
from sync.store.feed import acknowledge, add_update, update_rows_after, updates_after
from sync.store.keys import ApiKeyError, create_key
from tests.conftest import bearer, shop_key
from tests.integration.test_api import SECRET, send_webhook

FEED = "/api/v1/updates"
ACK = "/api/v1/updates/ack"


@pytest.fixture
def b2b(app) -> int:
    """A second shop, `b2b`, whose orders are those of souche 1."""
    with app.app_context():
        db.session.get(Shop, 1).rule = {"kind": "souche", "values": [0]}  # a valid set: the default shop claims souche 0
        shop = Shop(code="b2b", name="Boutique pro", rule={"kind": "souche", "values": [1]})
        db.session.add(shop)
        db.session.commit()
        return shop.id


@pytest.fixture
def updates(app, b2b) -> dict[str, list[int]]:
    """Updates of both shops, interleaved: default, b2b, default, b2b, b2b, default."""
    shops = [1, b2b, 1, b2b, b2b, 1]
    with app.app_context():
        rows = []
        for n, shop_id in enumerate(shops):
            key = str(4700 + n) if shop_id == 1 else f"b2b:{4700 + n}"
            row = add_update(
                db.session, key, 4700 + n, ShopUpdate("shipped", 4, [], None, None, None, ["state"]), run_id=None, created_at=datetime(2026, 1, 1)
            )
            row.shop_id = shop_id
            rows.append(row)
        db.session.commit()
        return {"default": [r.id for r, s in zip(rows, shops) if s == 1], "b2b": [r.id for r, s in zip(rows, shops) if s == b2b]}


@pytest.fixture
def orders(app, b2b) -> None:
    """A followed shop order of each shop, both id_order 4711 in their shop: 4711 (default) and 5811 (b2b; keys of
    the shops told apart by their link values here: how a run names them is the next step's)."""
    now = datetime(2026, 1, 1)
    with app.app_context():
        for key, id_order, shop_id in (("4711", 4711, 1), ("5811", 4711, b2b)):
            db.session.add(ShopOrder(order_key=key, id_order=id_order, shop_id=shop_id, first_seen_at=now, checked_at=now, updated_at=now))
        db.session.commit()


@pytest.fixture
def module_b2b(app, b2b) -> dict:
    """The b2b shop's module: a write key bound to b2b."""
    return shop_key(app, "module-b2b", "write", "b2b")


def _feed(client, headers, query: str = "limit=500"):
    answer = client.get(f"{FEED}?{query}", headers=headers)
    assert answer.status_code == 200, answer.json
    return [u["id"] for u in answer.json["updates"]], answer.json["head"]


def test_keys_are_bound_to_a_shop_admin_keys_to_none(app, b2b):
    with app.app_context():
        bound, _ = create_key(db.session, "reader-b2b", "read", "b2b")
        default, _ = create_key(db.session, "module", "write")
        admin, _ = create_key(db.session, "boss", "admin")
        assert (bound.shop_id, default.shop_id, admin.shop_id) == (b2b, 1, None)
        with pytest.raises(ApiKeyError, match="admin keys see every shop"):
            create_key(db.session, "boss-b2b", "admin", "b2b")
        with pytest.raises(ApiKeyError, match="no shop has the code 'b2c'"):
            create_key(db.session, "module-b2c", "write", "b2c")
        db.session.commit()
        assert db.session.scalar(select(ApiKey.id).where(ApiKey.name.in_(["boss-b2b", "module-b2c"]))) is None


def test_a_bound_key_sees_its_shops_updates_and_head_only(client, keys, updates, module_b2b):
    assert _feed(client, module_b2b) == (updates["b2b"], updates["b2b"][-1])
    assert _feed(client, module_b2b, "limit=1") == (updates["b2b"][:1], updates["b2b"][-1])
    assert _feed(client, module_b2b, f"after={updates['b2b'][0]}&limit=1") == (updates["b2b"][1:2], updates["b2b"][-1])
    assert _feed(client, module_b2b, "shop=b2b") == (updates["b2b"], updates["b2b"][-1])  # its own shop, named: fine
    # The default shop's keys: as before shops, their shop's updates (every update of a single-shop store).
    for key in (keys["write"], keys["read"]):
        assert _feed(client, bearer(key)) == (updates["default"], updates["default"][-1])
    # The head is the shop's: a cursor beyond it is refused, even below another shop's updates.
    beyond = client.get(f"{FEED}?after={updates['b2b'][-1] + 1}", headers=module_b2b)
    assert beyond.status_code == 409 and beyond.json["code"] == "cursor_beyond_head" and beyond.json["head"] == updates["b2b"][-1]
    assert updates["b2b"][-1] + 1 in updates["default"]


@pytest.mark.parametrize("include_acked", [False, True])
@pytest.mark.parametrize("limit", [1, 2, 500])
def test_a_shops_fast_page_is_its_orm_page(app, updates, b2b, include_acked, limit):
    """The feed's fast path of one shop gives what the ORM page of that shop gives through the schema."""
    with app.app_context():
        consumer, _ = create_key(db.session, "module-b2b", "write", "b2b")
        consumer.served_up_to = max(updates["b2b"])
        acknowledge(db.session, ids=updates["b2b"][1:2], consumer=consumer.id, shop_id=b2b)
        db.session.commit()
        for shop_id, who in ((b2b, consumer.id), (b2b, None), (1, None)):
            after, seen = 0, []
            while True:
                orm = updates_after(db.session, after, limit, include_acked, consumer=who, shop_id=shop_id)
                fast = update_rows_after(db.session, after, limit, include_acked, who, shop_id)
                assert [row[0] for row in fast.rows] == [u.id for u in orm.updates] and (fast.next, fast.has_more) == (orm.next, orm.has_more)
                assert fast.head == orm.head == max(updates["b2b" if shop_id == b2b else "default"])
                expected = FeedPageSchema().dump({"updates": orm.updates, "next": orm.next, "has_more": orm.has_more, "head": orm.head})
                got = dump_feed_page(fast.rows, fast.next, fast.has_more, fast.head)
                if who is None:  # a consumer's acked_at is its own (the schema page reads the update's)
                    assert got == expected
                else:
                    assert [{k: v for k, v in u.items() if k != "acked_at"} for u in got["updates"]] == [
                        {k: v for k, v in u.items() if k != "acked_at"} for u in expected["updates"]
                    ]
                seen += [row[0] for row in fast.rows]
                after = fast.next
                if not fast.has_more:
                    break
            mine = updates["b2b" if shop_id == b2b else "default"]
            hidden = updates["b2b"][1:2] if (who is not None or shop_id == b2b) and not include_acked else []
            assert seen == [i for i in mine if i not in hidden]


def test_a_bound_key_naming_another_shop_is_refused(client, keys, updates, module_b2b):
    refused = client.get(f"{FEED}?shop=default", headers=module_b2b)
    assert refused.status_code == 403 and refused.json["code"] == "shop_forbidden"
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert client.get(f"{FEED}?shop=b2b", headers=bearer(keys["read"])).json["code"] == "shop_forbidden"
    unknown = client.get(f"{FEED}?shop=b2c", headers=module_b2b)
    assert unknown.status_code == 422 and unknown.json["field"] == "query.shop"


def test_an_admin_key_sees_every_shop_or_the_one_it_names(client, keys, updates):
    admin = bearer(keys["admin"])
    everything = sorted(updates["default"] + updates["b2b"])
    assert _feed(client, admin) == (everything, everything[-1])
    assert _feed(client, admin, "shop=b2b") == (updates["b2b"], updates["b2b"][-1])
    assert _feed(client, admin, "shop=default&limit=2") == (updates["default"][:2], updates["default"][-1])
    unknown = client.get(f"{FEED}?shop=b2c", headers=admin)
    assert unknown.status_code == 422 and unknown.json["code"] == "validation_error" and unknown.json["field"] == "query.shop"
    for odd in ("x" * 21, "%00b2b", "B2B", ""):  # not a code at all: refused before the store is asked (PostgreSQL takes no NUL)
        refused = client.get(f"{FEED}?shop={odd}", headers=admin)
        assert refused.status_code == 422 and refused.json["field"] == "query.shop", odd
    # An admin key consumes the feed of the shop it names: its acknowledgements are its own, of any shop.
    assert client.post(ACK, json={"up_to": everything[-1]}, headers=admin).json["acknowledged"] == len(everything)


def test_a_bound_key_acknowledges_its_shops_updates_only(app, client, keys, updates, module_b2b):
    mine, others = updates["b2b"], updates["default"]
    _feed(client, module_b2b)  # served up to its shop's last update
    refused = client.post(ACK, json={"ids": [mine[0], others[0]]}, headers=module_b2b)
    assert refused.status_code == 403 and refused.json["code"] == "shop_forbidden" and refused.json["field"] == "ids"
    assert str(others[0]) in refused.json["detail"]
    with app.app_context():
        assert db.session.scalar(select(UpdateAck.update_id).limit(1)) is None  # nothing acknowledged, not even its own
    assert client.post(ACK, json={"ids": [mine[0]]}, headers=module_b2b).json == {"acknowledged": 1, "already_acknowledged": 0, "unknown": []}
    # up_to: its own shop's updates up to that id, never another shop's below it.
    assert client.post(ACK, json={"up_to": mine[-1]}, headers=module_b2b).json == {"acknowledged": 2, "already_acknowledged": 0, "unknown": []}
    with app.app_context():
        assert sorted(db.session.scalars(select(UpdateAck.update_id))) == mine
        assert db.session.scalars(select(Update.id).where(Update.acked_at.is_not(None)).order_by(Update.id)).all() == mine
    assert _feed(client, module_b2b)[0] == []
    assert _feed(client, bearer(keys["write"]))[0] == others  # the default shop's module is not concerned
    assert _feed(client, bearer(keys["read"]))[0] == others
    # up_to below its shop's first update: nothing of its shop there.
    assert client.post(ACK, json={"up_to": mine[0] - 1}, headers=module_b2b).json == {
        "acknowledged": 0,
        "already_acknowledged": 0,
        "unknown": [mine[0] - 1],
    }


def test_another_shops_order_is_refused_before_gescom_is_asked(client, keys, orders, module_b2b):
    viewed = client.get("/api/v1/orders/4711", headers=module_b2b)
    assert viewed.status_code == 403 and viewed.json["code"] == "shop_forbidden"
    written = client.put("/api/v1/orders/4711/tracking", json={"tracking_number": "6A12345678901"}, headers=module_b2b)
    assert written.status_code == 403 and written.json["code"] == "shop_forbidden"
    again = client.put("/api/v1/orders/4711/tracking", json={"tracking_number": "6A1"}, headers={**module_b2b, "Idempotency-Key": "k-1"})
    assert again.status_code == 403 and again.json["code"] == "shop_forbidden"
    assert client.get("/api/v1/orders/5811", headers=bearer(keys["write"])).json["code"] == "shop_forbidden"
    # Its own shop's order, and every order for an admin key.
    assert client.get("/api/v1/orders/5811", headers=module_b2b).status_code == 200
    for order_key in ("4711", "5811"):
        assert client.get(f"/api/v1/orders/{order_key}", headers=bearer(keys["admin"])).json["order_key"] == order_key
    assert client.get("/api/v1/orders/4712", headers=module_b2b).json["code"] == "order_not_found"


def test_webhook_events_name_the_keys_shops_orders_only(app, client, keys, orders, b2b):
    app.config["WEBHOOK_SECRET"] = SECRET
    with app.app_context():
        key = create_key(db.session, "module-b2b", "write", "b2b")[1]
        db.session.commit()
    # A key naming no shop is the module's own shop's: its 4711 is b2b:4711, not followed (ignored); the default
    # shop's 4711 is never reached.
    by_key = {"type": "order.status_changed", "data": {"order_key": "4711", "state_id": 4}}
    refused = send_webhook(client, key, by_key, message_id="msg_1")
    assert refused.status_code == 200 and refused.json["status"] == "ignored", refused.json
    tracking = {"type": "order.tracking_updated", "data": {"order_key": "4711", "tracking_number": "6A12345678901"}}
    assert send_webhook(client, key, tracking, message_id="msg_2").status_code == 404
    # id_order: each shop numbers its own orders; the b2b module's 4711 is its order 5811.
    by_id = {"type": "order.status_changed", "data": {"id_order": 4711, "state_id": 5}}
    recorded = send_webhook(client, key, by_id, message_id="msg_3")
    assert recorded.status_code == 200 and recorded.json == {"status": "recorded", "order_key": "5811", "state_id": 5}
    again = send_webhook(client, key, by_key, message_id="msg_1")  # the same message again: answered as before
    assert again.status_code == 200
    with app.app_context():
        states = dict(db.session.execute(select(ShopOrder.order_key, ShopOrder.shop_state_id)).all())
    assert states == {"4711": None, "5811": 5}


def test_apikey_cli_binds_a_key_to_a_shop(app, runner, b2b, keys):
    created = runner.invoke(args=["apikey", "create", "module-b2b", "--scope", "write", "--shop", "b2b"])
    assert created.exit_code == 0, created.output
    assert "for shop b2b" in created.stderr
    unknown = runner.invoke(args=["apikey", "create", "module-b2c", "--scope", "write", "--shop", "b2c"])
    assert unknown.exit_code == 2 and "no shop has the code 'b2c'" in unknown.output
    admin = runner.invoke(args=["apikey", "create", "boss-b2b", "--scope", "admin", "--shop", "b2b"])
    assert admin.exit_code == 2 and "admin keys see every shop" in admin.output
    listed = {line.split("\t")[0]: line.split("\t") for line in runner.invoke(args=["apikey", "list"]).output.splitlines()}
    assert set(listed) == {"test-read", "test-write", "test-admin", "module-b2b"}
    assert [listed[name][3] for name in ("test-read", "test-write", "test-admin", "module-b2b")] == ["default", "default", "all", "b2b"]
