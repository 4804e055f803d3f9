"""Renvoyer: failed pushes sent again, through the API and the admin page, against the PrestaShop simulator over real
HTTP, on the selected backend. A push fails for good (the order is not in the shop yet), the cause is fixed, the
update is sent again and reaches the shop exactly once; the order's timeline says who asked."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import configure_shop, shop_of
from models import OrderEvent, Update, db
from sync.gescom.demo.schema import create_gescom
from sync.gescom.demo.warehouse import Warehouse
from sync.services.push import push_pending
from sync.services.push_retry import Actor, retry_failed
from sync.services.run_config import RunConfig
from sync.services.runs import run_sync
from sync.services.unit_of_work import UnitOfWork
from tests.conftest import bearer
from tests.simulator import ShopSimulator

KEY = "R" * 32
LINES = [("TSHIRT-M", "T-shirt M", 2), ("MUG", "Mug", 1)]
TRACKING = {"4711": "6A11111111111", "4712": "6A22222222222"}


@pytest.fixture
def sim():
    shop = ShopSimulator(version="8.1.5", key=KEY).start()
    yield shop
    shop.stop()


@pytest.fixture
def failed(app, sim, clock):
    """A shop connected, two shop orders shipped with a tracking number, pushed while neither is in the shop: failed."""
    app.config.update(PRESTASHOP_URL=sim.url, PRESTASHOP_API_KEY=KEY)
    configure_shop(app)
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
    report = push(app)
    assert report.failed == 2 and statuses(app) == {"4711": "failed", "4712": "failed"}
    return warehouse


def push(app):
    with app.app_context():
        report = push_pending(UnitOfWork(db.session), shop_of(app))
        db.session.remove()
    return report


def statuses(app) -> dict[str, str]:
    """The push status of each order's shipment update (the one carrying a state)."""
    with app.app_context():
        rows = db.session.scalars(select(Update).where(Update.state_id.is_not(None)).order_by(Update.id))
        found = {row.order_key: row.push_status for row in rows}
        db.session.remove()
    return found


def events(app, order_key: str) -> list[dict]:
    with app.app_context():
        rows = db.session.scalars(
            select(OrderEvent).where(OrderEvent.order_key == order_key, OrderEvent.kind == "push_retried").order_by(OrderEvent.id)
        )
        found = [row.data for row in rows]
        db.session.remove()
    return found


def histories(sim, id_order: int) -> list[int]:
    return [int(row["id_order_state"]) for row in sim.histories if int(row["id_order"]) == id_order]


def writes(sim) -> list[str]:
    """The writes the shop received since its log was reset, as 'METHOD resource'."""
    return [f"{r['method']} {r['resource']}" for r in sim.requests if r["method"] != "GET"]


def tracking_of(sim, id_order: int) -> str:
    return next(row for row in sim.order_carriers.values() if int(row["id_order"]) == id_order)["tracking_number"]


# --- the API ------------------------------------------------------------------------------------------------------


def test_one_order_sent_again_reaches_the_shop_exactly_once(app, client, keys, sim, failed):
    listed = client.get("/api/v1/push/failed", headers=bearer(keys["read"]))
    assert listed.status_code == 200 and listed.json["next"] is None
    assert [(row["order_key"], row["status"]) for row in listed.json["failed"]] == [("4711", 404), ("4712", 404)]
    assert all(row["failed_at"].endswith("Z") and "does not exist in the shop" in row["error"] for row in listed.json["failed"])
    sim.add_order(4711, current_state=2)  # the cause fixed: the order is in the shop now
    assert push(app).pushed == 0  # failed is final: nothing goes until someone asks
    answer = client.post("/api/v1/push/retry/4711", headers=bearer(keys["admin"]))
    assert answer.status_code == 200, answer.json
    assert answer.json["retried"] == 1 and [order["order_key"] for order in answer.json["orders"]] == ["4711"]
    assert statuses(app) == {"4711": "pending", "4712": "failed"}  # the other order stays failed
    sim.reset_log()
    report = push(app)
    assert report.pushed == 1 and report.failed == 0
    assert histories(sim, 4711).count(4) == 1 and tracking_of(sim, 4711) == TRACKING["4711"]
    assert writes(sim) == ["PATCH order_carriers", "POST order_histories"]
    assert statuses(app) == {"4711": "pushed", "4712": "failed"}
    sim.reset_log()
    assert push(app).pushed == 0 and writes(sim) == []  # nothing sent twice
    again = client.post("/api/v1/push/retry", json={"order_key": "4711"}, headers=bearer(keys["admin"]))
    assert again.status_code == 200 and again.json == {"retried": 0, "orders": []}  # pushed stays pushed
    view = client.get("/api/v1/orders/4711", headers=bearer(keys["read"])).json
    retried = [entry for entry in view["timeline"] if entry["kind"] == "push_retried"]
    assert len(retried) == 1 and retried[0]["at"].endswith("Z")
    assert {key: retried[0]["data"][key] for key in ("by", "via", "updates")} == {"by": "test-admin", "via": "api", "updates": 1}
    assert "does not exist in the shop" in retried[0]["data"]["errors"][0]
    remaining = client.get("/api/v1/push/failed?order_key=4711", headers=bearer(keys["read"])).json
    assert remaining == {"failed": [], "next": None}


def test_all_sent_again_and_what_the_shop_already_has_is_not_written(app, client, keys, sim, failed):
    sim.add_order(4711, current_state=4, tracking_number=TRACKING["4711"])  # set by hand meanwhile: nothing to write
    sim.add_order(4712, current_state=2)
    answer = client.post("/api/v1/push/retry", json={}, headers=bearer(keys["admin"]))
    assert answer.status_code == 200 and answer.json["retried"] == 2
    assert sorted(order["order_key"] for order in answer.json["orders"]) == ["4711", "4712"]
    sim.reset_log()
    assert push(app).pushed == 2
    assert histories(sim, 4711) == [4] and histories(sim, 4712).count(4) == 1  # 4711: its initial row only
    assert writes(sim) == ["PATCH order_carriers", "POST order_histories"]  # 4712's two writes, none for 4711
    assert client.post("/api/v1/push/retry", headers=bearer(keys["admin"])).json == {"retried": 0, "orders": []}
    assert [len(events(app, key)) for key in TRACKING] == [1, 1]


def test_retry_needs_an_admin_key_and_a_followed_order(app, client, keys, sim, failed):
    for scope in ("read", "write"):
        refused = client.post("/api/v1/push/retry", json={}, headers=bearer(keys[scope]))
        assert refused.status_code == 403 and refused.json["code"] == "insufficient_scope"
    assert client.post("/api/v1/push/retry").status_code == 401
    unknown = client.post("/api/v1/push/retry/9999", headers=bearer(keys["admin"]))
    assert unknown.status_code == 404 and unknown.json["code"] == "order_not_found"
    assert unknown.headers["Content-Type"] == "application/problem+json"
    in_body = client.post("/api/v1/push/retry", json={"order_key": "9999"}, headers=bearer(keys["admin"]))
    assert in_body.status_code == 404 and in_body.json["code"] == "order_not_found"
    bad = client.post("/api/v1/push/retry", json={"order": "4711"}, headers=bearer(keys["admin"]))
    assert bad.status_code == 422 and bad.json["field"] == "order"
    empty = client.post("/api/v1/push/retry", json={"order_key": ""}, headers=bearer(keys["admin"]))
    assert empty.status_code == 422 and empty.json["field"] == "order_key"
    assert statuses(app) == {"4711": "failed", "4712": "failed"} and events(app, "4711") == []


def test_two_retries_at_once_retry_each_update_once(app, sim, failed):
    with app.app_context():
        engine = db.engine
    results = {}
    first = UnitOfWork(Session(engine), owns_session=True)
    with first:
        results["first"] = retry_failed(first, actor=Actor("first", "api")).retried  # holds its locks until committed

        def second() -> None:
            with UnitOfWork(Session(engine), owns_session=True) as uow:
                results["second"] = retry_failed(uow, actor=Actor("second", "api")).retried  # waits for the first
                uow.commit()

        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive()  # blocked behind the first one's locks
        first.commit()
    thread.join(10)
    assert results == {"first": 2, "second": 0}
    assert [[event["by"] for event in events(app, key)] for key in TRACKING] == [["first"], ["first"]]
    assert statuses(app) == {"4711": "pending", "4712": "pending"}


def test_failed_list_pages(app, client, keys, sim, failed):
    first = client.get("/api/v1/push/failed?limit=1", headers=bearer(keys["read"])).json
    assert [row["order_key"] for row in first["failed"]] == ["4711"] and first["next"] == first["failed"][0]["update_id"]
    second = client.get(f"/api/v1/push/failed?limit=1&after={first['next']}", headers=bearer(keys["read"])).json
    assert [row["order_key"] for row in second["failed"]] == ["4712"] and second["next"] is None
    for query in ("limit=0", "limit=501", "after=-1", "after=x", "other=1"):
        answer = client.get(f"/api/v1/push/failed?{query}", headers=bearer(keys["read"]))
        assert answer.status_code == 422 and answer.json["code"] == "validation_error", query


def test_without_a_shop_retry_is_a_conflict(client, keys):
    answer = client.post("/api/v1/push/retry", json={}, headers=bearer(keys["admin"]))
    assert answer.status_code == 409 and answer.json["code"] == "push_not_configured"
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert client.post("/api/v1/push/retry/4711", headers=bearer(keys["admin"])).json["code"] == "push_not_configured"
    listed = client.get("/api/v1/push/failed", headers=bearer(keys["read"]))
    assert listed.status_code == 200 and listed.json == {"failed": [], "next": None}


def test_the_openapi_document_declares_the_answers(client):
    paths = client.get("/openapi.json").json["paths"]
    retry = paths["/api/v1/push/retry"]["post"]["responses"]
    assert {"200", "403", "404", "409", "422"} <= set(retry)
    assert retry["200"]["content"]["application/json"]["example"]["retried"] == 2
    assert {"200", "403", "404", "409"} <= set(paths["/api/v1/push/retry/{order_key}"]["post"]["responses"])
    assert "example" in paths["/api/v1/push/failed"]["get"]["responses"]["200"]["content"]["application/json"]


# --- the admin page -------------------------------------------------------------------------------------------------


def csrf_of(client, path: str = "/admin/login") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


def login(client, key: str):
    return client.post("/admin/login", data={"key": key, "csrf_token": csrf_of(client)})


def test_admin_buttons_send_again_one_order_then_all(app, client, keys, sim, failed):
    login(client, keys["admin"])
    dashboard = unescape(client.get("/admin/").text)
    assert "Tout renvoyer" in dashboard
    page = unescape(client.get("/admin/orders?q=4711").text)
    assert "Renvoyer" in page and 'name="order_key" value="4711"' in page and "1 mise(s) à jour en échec" in page
    refused = client.post("/admin/push/retry", data={"order_key": "4711"})
    assert refused.status_code == 400 and statuses(app)["4711"] == "failed"  # no CSRF token: nothing done
    sim.add_order(4711, current_state=2)
    answer = client.post("/admin/push/retry", data={"order_key": "4711", "csrf_token": csrf_of(client, "/admin/")})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/admin/orders?q=4711#order")
    page = unescape(client.get("/admin/orders?q=4711").text)
    assert "1 mise(s) à jour en échec renvoyée(s)" in page and "Renvoi demandé des envois en échec" in page
    assert statuses(app) == {"4711": "pending", "4712": "failed"}
    assert events(app, "4711")[0]["by"] == "test-admin" and events(app, "4711")[0]["via"] == "admin"
    assert push(app).pushed == 1 and histories(sim, 4711).count(4) == 1
    assert 'name="order_key" value="4711"' not in unescape(client.get("/admin/orders?q=4711").text)  # nothing failed: no button
    everything = client.post("/admin/push/retry", data={"csrf_token": csrf_of(client, "/admin/")})
    assert everything.status_code == 303 and everything.headers["Location"].endswith("/admin/")
    assert "1 mise(s) à jour en échec renvoyée(s)" in unescape(client.get("/admin/").text)
    assert statuses(app) == {"4711": "pushed", "4712": "pending"}
    client.post("/admin/push/retry", data={"csrf_token": csrf_of(client, "/admin/")})
    assert "Aucune mise à jour en échec" in unescape(client.get("/admin/?lang=fr").text)
    assert "Tout renvoyer" not in unescape(client.get("/admin/").text)


def test_admin_without_a_shop_says_so(app, client, keys):
    login(client, keys["admin"])
    answer = client.post("/admin/push/retry", data={"csrf_token": csrf_of(client, "/admin/")})
    assert answer.status_code == 303
    assert "Aucune boutique configurée (PRESTASHOP_URL) : rien ne peut être renvoyé." in unescape(client.get("/admin/").text)
