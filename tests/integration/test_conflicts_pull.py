"""Conflicts in pull mode: the module says the shop's state (webhook order.status_changed); the feed marks what a
conflict holds, and issues again what the shop's state change (or the merchant) released."""

from __future__ import annotations

from datetime import timedelta

import pytest

from models import db
from sync.gescom.demo.schema import create_gescom
from sync.gescom.demo.warehouse import Warehouse
from sync.services.run_config import RunConfig
from sync.services.runs import run_sync
from sync.services.unit_of_work import UnitOfWork
from tests.conftest import bearer
from tests.integration.test_api import SECRET, send_webhook

LINES = [("TSHIRT-M", "T-shirt M", 2), ("MUG", "Mug", 1)]


@pytest.fixture
def warehouse(app, clock):
    app.config["WEBHOOK_SECRET"] = SECRET
    engine = app.extensions["gescom"].engine
    create_gescom(engine)
    return Warehouse(engine, clock)


def run(app) -> None:
    with app.app_context():
        run_sync(UnitOfWork(db.session), app.extensions["gescom"], config=RunConfig(recheck_age=timedelta(0)))
        db.session.remove()


def feed(client, key) -> list[dict]:
    return [u for u in client.get("/api/v1/updates?limit=500&include_acked=true", headers=bearer(key)).json["updates"] if u["order_key"] == "4711"]


def said(client, key, state_id: int, message_id: str) -> dict:
    event = {"type": "order.status_changed", "data": {"order_key": "4711", "state_id": state_id}}
    answer = send_webhook(client, key, event, message_id=message_id)
    assert answer.status_code == 200, answer.json
    return answer.json


def timeline(client, key, kind: str) -> list[dict]:
    return [entry["data"] for entry in client.get("/api/v1/orders/4711", headers=bearer(key)).json["timeline"] if entry["kind"] == kind]


def test_the_module_says_cancelled_then_takes_it_back(app, client, keys, warehouse, clock):
    write = keys["write"]
    piece = warehouse.create_order("4711", LINES)
    run(app)
    clock.tick()
    warehouse.transform((1, piece), 3, header={"DO_Coord01": "6A11111111111"})
    run(app)
    ordered, shipped = feed(client, write)
    assert shipped["state_id"] == 4 and shipped["conflict"] is None
    # The merchant cancels the order in the shop; the module says so: the shipment, not applied yet, is held.
    answer = said(client, write, 6, "m1")
    assert answer["held"] == [shipped["id"]] and "released" not in answer
    ordered, shipped = feed(client, write)
    assert ordered["conflict"] is None  # nothing of it would reach the shop
    assert shipped["conflict"]["status"] == "open" and shipped["conflict"]["apply"] is False
    assert shipped["conflict"]["shop_state_id"] == 6 and shipped["conflict"]["reason"] == "PS_OS_CANCELED"
    assert shipped["conflict"]["seen_by"] == "webhook"
    assert client.post("/api/v1/updates/ack", json={"up_to": shipped["id"]}, headers=bearer(write)).status_code == 200  # skipped, acknowledged
    # The invoice comes while the order is cancelled in the shop: its update is held from the start.
    clock.tick()
    warehouse.transform((3, warehouse.documents("4711")[-1][1]), 6)
    client.patch("/api/v1/settings", json={"stage_states": {"invoiced": 5}}, headers={**bearer(keys["admin"]), "If-Match": "*"})
    run(app)
    invoiced = feed(client, write)[-1]
    assert invoiced["stage"] == "invoiced" and invoiced["conflict"]["status"] == "open" and invoiced["conflict"]["seen_by"] == "run"
    assert [event["update_ids"] for event in timeline(client, write, "conflict_opened")] == [[shipped["id"]], [invoiced["id"]]]
    # The merchant takes the order back in the shop: both are released and issued again, in order, at the feed's head.
    answer = said(client, write, 2, "m2")
    assert answer["released"] == [shipped["id"], invoiced["id"]]
    *_, old_shipped, old_invoiced, again_shipped, again_invoiced = feed(client, write)
    assert (old_shipped["id"], old_invoiced["id"]) == (shipped["id"], invoiced["id"])
    assert old_shipped["conflict"]["status"] == "released" and old_shipped["conflict"]["apply"] is False
    assert old_shipped["conflict"]["reissued_as"] == again_shipped["id"] and old_invoiced["conflict"]["reissued_as"] == again_invoiced["id"]
    assert again_shipped["conflict"]["reissue_of"] == shipped["id"] and again_shipped["conflict"]["apply"] is True
    for field in ("state_id", "tracking_numbers", "stage", "changes"):
        assert again_shipped[field] == shipped[field] and again_invoiced[field] == invoiced[field]
    released = timeline(client, write, "conflict_released")
    assert released == [
        {
            "update_ids": [shipped["id"], invoiced["id"]],
            "shop_state_id": 2,
            "seen_by": "webhook",
            "reissued_as": [again_shipped["id"], again_invoiced["id"]],
        }
    ]
    # Said again: nothing more is issued.
    assert "released" not in said(client, write, 3, "m3") and len(feed(client, write)) == 5


def test_an_update_already_applied_is_not_held(app, client, keys, warehouse, clock):
    write = keys["write"]
    piece = warehouse.create_order("4711", LINES)
    clock.tick()
    warehouse.transform((1, piece), 3, header={"DO_Coord01": "6A11111111111"})
    run(app)
    (shipped,) = feed(client, write)
    assert client.post("/api/v1/updates/ack", json={"up_to": shipped["id"]}, headers=bearer(write)).status_code == 200
    assert said(client, write, 6, "m1") == {"status": "recorded", "order_key": "4711", "state_id": 6}
    assert feed(client, write)[0]["conflict"] is None


def test_cancelled_taken_back_cancelled_again_issues_each_update_once(app, client, keys, warehouse, clock):
    """The module does not acknowledge in between: the held update, issued again, is never held nor issued twice."""
    write = keys["write"]
    piece = warehouse.create_order("4711", LINES)
    clock.tick()
    warehouse.transform((1, piece), 3, header={"DO_Coord01": "6A11111111111"})
    run(app)
    (shipped,) = feed(client, write)
    assert said(client, write, 6, "m1")["held"] == [shipped["id"]]
    assert said(client, write, 2, "m2")["released"] == [shipped["id"]]
    again_id = feed(client, write)[-1]["id"]
    assert said(client, write, 6, "m3")["held"] == [again_id]  # the copy is held; the original, done with, is not
    assert said(client, write, 2, "m4")["released"] == [again_id]
    original, again, third = feed(client, write)
    assert original["conflict"]["reissued_as"] == again["id"] and again["conflict"]["reissued_as"] == third["id"]
    assert [u["conflict"]["apply"] for u in (original, again, third)] == [False, False, True]  # applied once
