"""The configured shop through the app: shop check, the shop's states, the tracking poll, sync run pushing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app import configure_shop
from models import db
from sync.gescom.demo.schema import create_gescom
from sync.gescom.demo.warehouse import Warehouse
from sync.services.run_config import RunConfig
from sync.services.runs import run_sync
from sync.services.unit_of_work import UnitOfWork
from tests.conftest import bearer
from tests.simulator import ShopSimulator

KEY = "S" * 32
LINES = [("TSHIRT-M", "T-shirt M", 2), ("MUG", "Mug", 1)]


@pytest.fixture
def sim():
    shop = ShopSimulator(version="8.1.5", key=KEY).start()
    yield shop
    shop.stop()


@pytest.fixture
def connected(app, sim, clock):
    """The app with a shop configured, a demo-shaped GesCom and two followed orders (one shipped)."""
    app.config.update(PRESTASHOP_URL=sim.url, PRESTASHOP_API_KEY=KEY)
    configure_shop(app)
    engine = app.extensions["gescom"].engine
    create_gescom(engine)
    warehouse = Warehouse(engine, clock)
    for key in ("4711", "4712"):
        sim.add_order(int(key), current_state=2)
        warehouse.create_order(key, LINES)
    clock.tick()
    warehouse.transform((1, warehouse.documents("4711")[0][1]), 3, header={"DO_Coord01": "6A11111111111"})
    with app.app_context():
        run_sync(UnitOfWork(db.session), app.extensions["gescom"], config=RunConfig(recheck_age=timedelta(0)))
        db.session.remove()
    return warehouse


def test_shop_check_lists_version_permissions_and_states(app, runner, sim, connected):
    result = runner.invoke(args=["shop", "check"])
    assert result.exit_code == 0, result.output
    assert "PrestaShop 8.1.5" in result.output and "PATCH" in result.output
    assert "everything needed is granted" in result.output
    assert "Expédié" in result.output and "PS_OS_SHIPPING" in result.output


def test_shop_check_names_the_missing_permissions(app, runner, sim, connected):
    sim.permissions["order_carriers"] = {"GET", "PUT"}  # an 8.x key upgraded from 1.7 without PATCH
    sim.permissions.pop("configurations", None)
    result = runner.invoke(args=["shop", "check"])
    assert result.exit_code != 0
    assert "order_carriers: PATCH" in result.output and "configurations: GET" in result.output


def test_shop_check_explains_a_wrong_key(app, runner, sim, connected):
    app.config.update(PRESTASHOP_API_KEY="X" * 32)
    configure_shop(app)
    result = runner.invoke(args=["shop", "check"])
    assert result.exit_code != 0 and "401" in result.output


def test_order_states_come_from_the_shop_and_validate_settings(app, client, keys, sim, connected):
    sim.add_state({1: "Handed to carrier", 2: "Remis au transporteur"}, id=20)  # a custom state of this shop
    states = client.get("/api/v1/order-states", headers=bearer(keys["read"])).json
    assert states["source"] == "shop"
    by_id = {state["id"]: state for state in states["states"]}
    assert by_id[4]["config_keys"] == ["PS_OS_SHIPPING"] and by_id[4]["shipped"] is True
    assert by_id[20]["name"] == {"en": "Handed to carrier", "fr": "Remis au transporteur"}
    ok = client.patch("/api/v1/settings", json={"stage_states": {"invoiced": 20}}, headers={**bearer(keys["admin"]), "If-Match": "*"})
    assert ok.status_code == 200
    bad = client.patch("/api/v1/settings", json={"stage_states": {"invoiced": 99}}, headers={**bearer(keys["admin"]), "If-Match": "*"})
    assert bad.status_code == 422 and bad.json["field"] == "stage_states.invoiced"


def test_sync_run_pushes_and_no_push_does_not(app, runner, sim, connected):
    held = runner.invoke(args=["sync", "run", "--no-push"])
    assert held.exit_code == 0 and "Push to the shop" not in held.output
    old_name = runner.invoke(args=["sync", "run", "--no-deliver"])  # hidden alias for one release, with a notice
    assert old_name.exit_code == 0 and "Push to the shop" not in old_name.output and "--no-push" in old_name.stderr
    listed = runner.invoke(args=["sync", "run", "--help"]).output
    assert "--no-push" in listed and "deliver" not in listed
    assert int(sim.orders[4711]["current_state"]) == 2
    result = runner.invoke(args=["sync", "run"])
    assert result.exit_code == 0, result.output
    assert "Push to the shop:" in result.output
    assert int(sim.orders[4711]["current_state"]) == 4
    carrier = next(row for row in sim.order_carriers.values() if int(row["id_order"]) == 4711)
    assert carrier["tracking_number"] == "6A11111111111"
    timeline = client_get_order(app, "4711")["timeline"]
    pushed = [entry["to_shop"]["push"] for entry in timeline if entry["kind"] == "update" and entry["update"]["state_id"] == 4]
    assert pushed[0]["status"] == "pushed" and pushed[0]["answer"]["state"]["action"] == "posted" and pushed[0]["attempts"] == 1
    again = runner.invoke(args=["sync", "push"])
    assert "0 pushed" in again.output and [r["state_id"] for r in sim.mails if r["kind"] == "state"].count(4) == 1
    old_name = runner.invoke(args=["sync", "deliver"])  # hidden alias for one release: same output, a notice on stderr
    assert old_name.exit_code == 0 and old_name.stdout == again.stdout and "flask sync push" in old_name.stderr


def test_tracking_typed_in_the_shop_reaches_gescom_once_and_is_not_echoed(app, runner, client, keys, sim, connected):
    client.patch("/api/v1/settings", json={"tracking": {"import_from_shop": True}}, headers={**bearer(keys["admin"]), "If-Match": "*"})
    runner.invoke(args=["sync", "run"])  # push what GesCom has: 4711's number goes to the shop
    # The merchant types a parcel number for 4712 in the back office.
    sim.set_tracking_by_hand(4712, "XY123456789FR")
    polled = runner.invoke(args=["shop", "poll"])
    assert polled.exit_code == 0 and "1 tracking numbers written to GesCom" in polled.output, polled.output
    view = client.get("/api/v1/orders/4712", headers=bearer(keys["read"])).json
    assert any(d["tracking"] == "XY123456789FR" for d in view["documents"])
    # Our own number for 4711 came back in the poll: it is not written to GesCom again.
    assert [e for e in client.get("/api/v1/orders/4711", headers=bearer(keys["read"])).json["timeline"] if e["kind"] == "tracking_from_shop"] == []
    # No echo: the next run does not send 4712's number back to the shop as a change.
    sim.reset_log()
    runner.invoke(args=["sync", "run", "--full"])
    assert not [r for r in sim.requests if r["method"] in ("PUT", "PATCH") and r["resource"] == "order_carriers"]
    again = runner.invoke(args=["shop", "poll"])
    assert "0 tracking numbers written" in again.output


def client_get_order(app, order_key: str) -> dict:
    from sync.services.orders import order_view

    with app.app_context():
        return order_view(db.session, app.extensions["gescom"], order_key, push_mode=True)
