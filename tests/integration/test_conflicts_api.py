"""Conflicts through the API (issue 17): updates the shop's state holds, listed for an admin key, applied anyway or
dismissed; in push mode against the PrestaShop simulator over real HTTP, in pull mode through the feed, where
`conflict` tells a module what to apply. Each ending is in the order's timeline, by the key's name, via the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from api.schemas import FeedPageSchema
from app import configure_shop, shop_of
from models import Update, db, utcnow
from sync.gescom.demo.schema import create_gescom
from sync.gescom.demo.warehouse import Warehouse
from sync.services.conflicts import hold, record_opened
from sync.services.push import push_pending
from sync.services.run_config import RunConfig
from sync.services.runs import run_sync
from sync.services.unit_of_work import UnitOfWork
from sync.store.feed import updates_after
from tests.conftest import bearer

KEY = "C" * 32
LINES = [("TSHIRT-M", "T-shirt M", 2), ("MUG", "Mug", 1)]
TRACKING = {"4711": "6A11111111111", "4712": "6A22222222222"}


def _shipped(app, clock) -> None:
    """Two shop orders shipped in Sage with a tracking number, a run done."""
    engine = app.extensions["gescom"].engine
    create_gescom(engine)
    warehouse = Warehouse(engine, clock)
    for key in TRACKING:
        warehouse.create_order(key, LINES)
    clock.tick()
    for key, number in TRACKING.items():
        warehouse.transform((1, warehouse.documents(key)[0][1]), 3, header={"DO_Coord01": number})
    with app.app_context():
        run_sync(UnitOfWork(db.session), app.extensions["gescom"], config=RunConfig(recheck_age=timedelta(0)))
        db.session.remove()


def push(app):
    with app.app_context():
        report = push_pending(UnitOfWork(db.session), shop_of(app))
        db.session.remove()
    return report


def shipments(app) -> dict[str, Update]:
    """The shipment update (the one carrying a state) of each order, detached."""
    with app.app_context():
        rows = list(db.session.scalars(select(Update).where(Update.state_id.is_not(None)).order_by(Update.id)))
        db.session.expunge_all()
        db.session.remove()
    return {row.order_key: row for row in rows}


def timeline_events(client, keys, order_key: str, kind: str) -> list[dict]:
    answer = client.get(f"/api/v1/orders/{order_key}", headers=bearer(keys["admin"]))
    assert answer.status_code == 200, answer.json
    return [entry["data"] for entry in answer.json["timeline"] if entry["kind"] == kind]


@pytest.fixture
def sim():
    from tests.simulator import ShopSimulator

    shop = ShopSimulator(version="8.1.5", key=KEY).start()
    yield shop
    shop.stop()


@pytest.fixture
def held(app, sim, clock) -> dict[str, int]:
    """Push mode: both orders cancelled in the shop; the push reads the shop first and holds their shipment updates.
    Their ids, by order."""
    app.config.update(PRESTASHOP_URL=sim.url, PRESTASHOP_API_KEY=KEY)
    configure_shop(app)
    for key in TRACKING:
        sim.add_order(int(key), current_state=6)
    _shipped(app, clock)
    sim.reset_log()
    push(app)
    found = shipments(app)
    assert {key: row.push_status for key, row in found.items()} == {"4711": "conflict", "4712": "conflict"}
    assert [r for r in sim.requests if r["method"] != "GET"] == []  # nothing written to a cancelled order
    return {key: row.id for key, row in found.items()}


@pytest.fixture
def pulled(app, clock) -> dict[str, int]:
    """Pull mode (no shop connected): the module said order 4711 is cancelled; its shipment update is held."""
    _shipped(app, clock)
    with app.app_context():
        item = db.session.scalar(select(Update).where(Update.order_key == "4711", Update.state_id.is_not(None)))
        hold(item, 6, "PS_OS_CANCELED", utcnow(), "webhook")
        db.session.flush()
        record_opened(db.session, "4711", [item], 6, "PS_OS_CANCELED", "webhook")
        db.session.commit()
        db.session.remove()
    return {key: row.id for key, row in shipments(app).items()}


# --- the list -----------------------------------------------------------------------------------------------------


def test_only_an_admin_key_lists_conflicts_and_pages_follow(client, keys, held):
    for scope in ("read", "write"):
        refused = client.get("/api/v1/conflicts", headers=bearer(keys[scope]))
        assert refused.status_code == 403 and refused.json["code"] == "insufficient_scope"
    assert client.get("/api/v1/conflicts").status_code == 401
    admin = bearer(keys["admin"])
    listed = client.get("/api/v1/conflicts", headers=admin)
    assert listed.status_code == 200 and listed.json["next"] is None
    assert [row["update_id"] for row in listed.json["conflicts"]] == [held["4711"], held["4712"]]
    first = listed.json["conflicts"][0]
    assert first["order_key"] == "4711" and first["shop"] == "default" and first["id_order"] == 4711
    assert (first["shop_state_id"], first["shop_state_name"], first["reason"], first["seen_by"]) == (6, "Annulé", "PS_OS_CANCELED", "push")
    assert first["sage"]["state_id"] == 4 and first["sage"]["tracking_numbers"] == [TRACKING["4711"]] and "tracking" in first["sage"]["changes"]
    assert first["since"].endswith("Z") and first["created_at"].endswith("Z")
    page = client.get("/api/v1/conflicts?limit=1", headers=admin).json
    assert [row["update_id"] for row in page["conflicts"]] == [held["4711"]] and page["next"] == held["4711"]
    page = client.get(f"/api/v1/conflicts?limit=1&after={page['next']}", headers=admin).json
    assert [row["update_id"] for row in page["conflicts"]] == [held["4712"]] and page["next"] is None


def test_the_list_narrows_to_a_shop_or_an_order(client, keys, held):
    admin = bearer(keys["admin"])
    one = client.get("/api/v1/conflicts?order_key=4712", headers=admin).json["conflicts"]
    assert [row["update_id"] for row in one] == [held["4712"]]
    assert client.get("/api/v1/conflicts?order_key=9999", headers=admin).json == {"conflicts": [], "next": None}
    assert len(client.get("/api/v1/conflicts?shop=default", headers=admin).json["conflicts"]) == 2
    unknown = client.get("/api/v1/conflicts?shop=b2c", headers=admin)
    assert unknown.status_code == 422 and unknown.json["field"] == "query.shop"
    for query in ("limit=0", "limit=501", "after=-1", "colour=red", "shop=B2C"):
        assert client.get(f"/api/v1/conflicts?{query}", headers=admin).status_code == 422, query


# --- push mode ----------------------------------------------------------------------------------------------------


def test_applied_anyway_it_is_pushed_once_and_the_timeline_says_who(app, client, keys, sim, held):
    answer = client.post(f"/api/v1/conflicts/{held['4711']}/apply-anyway", headers=bearer(keys["admin"]))
    assert answer.status_code == 200, answer.json
    record = answer.json["conflict"]
    assert record["status"] == "applied_anyway" and record["apply"] is True
    assert (record["resolved_by"], record["via"], record["shop_state_id"]) == ("test-admin", "api", 6)
    assert answer.json["update"]["id"] == held["4711"] and answer.json["update"]["conflict"] == record
    assert "reissued_as" not in record  # pushed: the update itself goes
    assert shipments(app)["4711"].push_status == "pending"
    events = timeline_events(client, keys, "4711", "conflict_applied_anyway")
    assert events == [{"update_id": held["4711"], "by": "test-admin", "via": "api", "shop_state_id": 6, "reason": "PS_OS_CANCELED"}]
    assert [row["update_id"] for row in client.get("/api/v1/conflicts", headers=bearer(keys["admin"])).json["conflicts"]] == [held["4712"]]
    sim.reset_log()
    push(app)
    assert [int(row["id_order_state"]) for row in sim.histories if int(row["id_order"]) == 4711].count(4) == 1
    assert {key: row.push_status for key, row in shipments(app).items()} == {"4711": "pushed", "4712": "conflict"}


def test_dismissed_nothing_is_ever_sent_for_it(app, client, keys, sim, held):
    answer = client.post(f"/api/v1/conflicts/{held['4712']}/dismiss", headers=bearer(keys["admin"]))
    assert answer.status_code == 200, answer.json
    assert answer.json["conflict"]["status"] == "dismissed" and answer.json["conflict"]["apply"] is False
    assert shipments(app)["4712"].push_status == "dismissed"
    events = timeline_events(client, keys, "4712", "conflict_dismissed")
    assert events == [{"update_id": held["4712"], "by": "test-admin", "via": "api", "shop_state_id": 6, "reason": "PS_OS_CANCELED"}]
    sim.reset_log()
    push(app)
    assert not [row for row in sim.histories if int(row["id_order"]) == 4712 and int(row["id_order_state"]) == 4]
    assert shipments(app)["4712"].push_status == "dismissed"


def test_an_ended_or_unknown_conflict_is_refused(client, keys, held):
    admin = bearer(keys["admin"])
    assert client.post(f"/api/v1/conflicts/{held['4711']}/dismiss", headers=admin).status_code == 200
    for action in ("apply-anyway", "dismiss"):
        again = client.post(f"/api/v1/conflicts/{held['4711']}/{action}", headers=admin)
        assert again.status_code == 409 and again.json["code"] == "not_in_conflict", again.json
        assert "dismissed" in again.json["detail"]
        for missing in (999_999, 2**31, 10**30):
            gone = client.post(f"/api/v1/conflicts/{missing}/{action}", headers=admin)
            assert gone.status_code == 404 and gone.json["code"] == "update_not_found", (missing, gone.json)
        refused = client.post(f"/api/v1/conflicts/{held['4712']}/{action}", headers=bearer(keys["write"]))
        assert refused.status_code == 403 and refused.json["code"] == "insufficient_scope"
    assert len(timeline_events(client, keys, "4711", "conflict_dismissed")) == 1  # the refused ones left no trace


def test_an_update_never_in_conflict_is_not_in_conflict(app, client, keys, clock):
    _shipped(app, clock)  # pull mode, nothing held
    update_id = shipments(app)["4711"].id
    answer = client.post(f"/api/v1/conflicts/{update_id}/apply-anyway", headers=bearer(keys["admin"]))
    assert answer.status_code == 409 and answer.json["code"] == "not_in_conflict"
    assert "never was in conflict" in answer.json["detail"]


# --- pull mode and the feed ---------------------------------------------------------------------------------------


def feed(client, keys) -> list[dict]:
    answer = client.get("/api/v1/updates?include_acked=true&limit=500", headers=bearer(keys["read"]))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.json["updates"]


def test_the_feed_shows_each_updates_conflict(app, client, keys, pulled):
    updates = {row["id"]: row for row in feed(client, keys)}
    held = updates[pulled["4711"]]["conflict"]
    assert held["status"] == "open" and held["apply"] is False and held["shop_state_id"] == 6 and held["seen_by"] == "webhook"
    assert all(row["conflict"] is None for update_id, row in updates.items() if update_id != pulled["4711"])
    # the fast path writes what the schema gives, byte for byte, a conflict record included
    with app.app_context():
        page = updates_after(db.session, 0, 500, True)
        expected = app.json.response(
            FeedPageSchema().dump({"updates": page.updates, "next": page.next, "has_more": page.has_more, "head": page.head})
        )
    answer = client.get("/api/v1/updates?include_acked=true&limit=500", headers=bearer(keys["read"]))
    assert answer.get_data() == expected.get_data()


def test_applied_anyway_in_pull_mode_it_is_issued_again_at_the_head(client, keys, pulled):
    head = max(row["id"] for row in feed(client, keys))
    answer = client.post(f"/api/v1/conflicts/{pulled['4711']}/apply-anyway", headers=bearer(keys["admin"]))
    assert answer.status_code == 200, answer.json
    again = answer.json["conflict"]["reissued_as"]
    assert again > head and answer.json["conflict"]["apply"] is False and answer.json["conflict"]["status"] == "applied_anyway"
    updates = {row["id"]: row for row in feed(client, keys)}
    assert max(updates) == again
    held, issued = updates[pulled["4711"]], updates[again]
    assert held["conflict"]["reissued_as"] == again and held["conflict"]["apply"] is False
    assert issued["conflict"]["reissue_of"] == pulled["4711"] and issued["conflict"]["apply"] is True
    assert issued["conflict"]["status"] == "applied_anyway" and issued["conflict"]["resolved_by"] == "test-admin"
    same = ("order_key", "id_order", "stage", "state_id", "tracking_numbers", "piece", "changes")
    assert {name: issued[name] for name in same} == {name: held[name] for name in same}
    events = timeline_events(client, keys, "4711", "conflict_applied_anyway")
    assert events == [
        {"update_id": pulled["4711"], "by": "test-admin", "via": "api", "shop_state_id": 6, "reason": "PS_OS_CANCELED", "reissued_as": again}
    ]
    assert client.get("/api/v1/conflicts", headers=bearer(keys["admin"])).json == {"conflicts": [], "next": None}


def test_dismissed_in_pull_mode_nothing_is_issued_again(app, client, keys, pulled):
    before = {row["id"] for row in feed(client, keys)}
    answer = client.post(f"/api/v1/conflicts/{pulled['4711']}/dismiss", headers=bearer(keys["admin"]))
    assert answer.status_code == 200, answer.json
    updates = {row["id"]: row for row in feed(client, keys)}
    assert set(updates) == before
    assert updates[pulled["4711"]]["conflict"]["status"] == "dismissed" and updates[pulled["4711"]]["conflict"]["apply"] is False
    assert shipments(app)["4711"].push_status == "dismissed"


@pytest.mark.parametrize("path", ["/api/v1/conflicts", "/api/v1/push/failed"])
def test_an_order_key_with_a_nul_is_refused_with_its_field_named(client, keys, path):
    # PostgreSQL refuses NUL in text: found by the API fuzzer as a 500.
    answer = client.get(f"{path}?order_key=47%0011", headers=bearer(keys["admin"]))
    assert answer.status_code == 422 and answer.json["field"] == "query.order_key", answer.json
