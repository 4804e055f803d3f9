"""The committed Postman collection: what the generator makes of the current OpenAPI document, and green when newman
runs it against a live server (a real HTTP server on a loopback port, a demo GesCom, a run done)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from werkzeug.serving import make_server

from api.postman import COLLECTION_PATH, REGENERATE, collection_json, served_document
from app import configure_shop
from models import Update, db, utcnow
from sync.gescom.demo.generator import generate_demo
from sync.gescom.demo.shops import demo_shop_changes
from sync.gescom.demo.warehouse import Warehouse
from sync.services.conflicts import hold, record_opened
from sync.services.run_config import RunConfig
from sync.services.runs import run_sync
from sync.services.unit_of_work import UnitOfWork
from sync.store.settings import save_settings
from sync.store.shops import core_shop, create_shop, list_shops, update_shop
from tests.simulator import ShopSimulator

ROOT = Path(__file__).resolve().parents[2]
NEWMAN = ROOT / "node_modules" / ".bin" / "newman"
SHOP_KEY = "P" * 32
WEBHOOK_SECRET = "whsec_c2VjcmV0LWZvci10ZXN0cy1vbmx5LTEyMzQ1Njc4OTA="


def test_the_committed_collection_is_the_one_the_document_gives(app):
    expected = collection_json(served_document(app))
    committed = COLLECTION_PATH.read_text(encoding="utf-8") if COLLECTION_PATH.exists() else ""
    assert committed == expected, f"{COLLECTION_PATH.relative_to(ROOT)} is not what the API's document gives: run `{REGENERATE}` and commit it"


def test_the_collection_has_one_request_per_operation_each_asserting_its_status(app):
    document = served_document(app)
    collection = json.loads(COLLECTION_PATH.read_text(encoding="utf-8"))
    operations = {f"{method.upper()} {path}" for path, entry in document["paths"].items() for method in entry if method != "parameters"}
    items = [item for folder in collection["item"] for item in folder["item"]]
    assert sorted(item["name"] for item in items) == sorted(operations)
    for item in items:
        tests = next(event["script"]["exec"] for event in item["event"] if event["listen"] == "test")
        assert any(line.startswith('pm.test("status is ') for line in tests), item["name"]
    assert {variable["key"] for variable in collection["variable"]} >= {"baseUrl", "apiKey", "webhookSecret"}


def test_requests_are_chained_and_optional_parameters_switched_off():
    """The generic rules on a small document: If-Match from the GET's ETag, an id from a Location header (the request
    using it moved after the one setting it), optional query parameters off, examples used, no key where none is needed."""
    item_path = {"parameters": [{"in": "path", "name": "thing_id", "required": True, "schema": {"type": "integer"}}], "get": {"tags": ["things"]}}
    document = {
        "info": {"title": "T"},
        "tags": [{"name": "things", "description": "Things."}],
        "paths": {
            "/things": {
                "get": {
                    "tags": ["things"],
                    "security": [],
                    "parameters": [{"in": "query", "name": "limit", "schema": {"type": "integer", "default": 20}}],
                    "responses": {"200": {"description": "OK", "headers": {"ETag": {"schema": {"type": "string"}}}}},
                },
                "patch": {"tags": ["things"], "parameters": [{"in": "header", "name": "If-Match", "required": True}], "responses": {"200": {}}},
                "post": {
                    "tags": ["things"],
                    "requestBody": {"required": True, "content": {"application/json": {"example": {"name": "mug"}}}},
                    "responses": {"202": {"description": "Accepted", "headers": {"Location": {"schema": {"type": "string"}}}}},
                },
            },
            "/things/{thing_id}": item_path,
        },
    }
    collection = json.loads(collection_json(document))
    assert collection_json(document) == collection_json(json.loads(json.dumps(document, sort_keys=True)))  # key order does not matter
    items = {item["name"]: item for item in collection["item"][0]["item"]}
    assert list(items) == ["GET /things", "POST /things", "GET /things/{thing_id}", "PATCH /things"]
    assert items["GET /things"]["request"]["auth"] == {"type": "noauth"}
    assert items["GET /things"]["request"]["url"]["query"] == [{"key": "limit", "value": "20", "disabled": True}]
    assert items["PATCH /things"]["request"]["header"] == [{"key": "If-Match", "value": "{{thingsEtag}}", "type": "text"}]
    assert items["GET /things/{thing_id}"]["request"]["url"]["raw"] == "{{baseUrl}}/things/{{thing_id}}"
    assert json.loads(items["POST /things"]["request"]["body"]["raw"]) == {"name": "mug"}
    assert "pm.response.to.have.status(202);" in items["POST /things"]["event"][0]["script"]["exec"][1]
    assert any('"thing_id"' in line and "Location" in line for line in items["POST /things"]["event"][0]["script"]["exec"])


def _newman_or_skip() -> None:
    if NEWMAN.exists():
        return
    message = "newman is not installed: run `npm ci` in the project directory"
    if os.environ.get("CI") == "true" or os.environ.get("REQUIRE_NEWMAN") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def shop():
    simulator = ShopSimulator(version="8.1.5", key=SHOP_KEY).start()
    yield simulator
    simulator.stop()


def _order_keys_named(collection: dict) -> set[str]:
    """The shop orders the collection's example values name: in paths (/orders/1043), queries and bodies."""
    named = {variable["value"] for variable in collection["variable"] if variable["key"] == "order_key" and variable["value"]}
    for item in (item for folder in collection["item"] for item in folder["item"]):
        request = item["request"]
        path = request["url"]["path"]
        named |= {segment for before, segment in zip(path, path[1:]) if before in ("orders", "retry") and segment.isdigit()}
        named |= {query["value"] for query in request["url"].get("query", []) if query["key"] == "order_key"}
        named |= set(re.findall(r'"order_key":\s*"(\w+)"', request.get("body", {}).get("raw", "")))
    return named


def _update_ids_named(collection: dict) -> set[int]:
    """The updates the collection's conflict requests name (/conflicts/14/apply-anyway)."""
    named = set()
    for item in (item for folder in collection["item"] for item in folder["item"]):
        path = item["request"]["url"]["path"]
        named |= {int(segment) for before, segment in zip(path, path[1:]) if before == "conflicts" and segment.isdigit()}
    return named


def _hold(session, update_ids: set[int]) -> None:
    """The shop cancelled the orders of these updates, as a push would have found it: each update held."""
    for update_id in sorted(update_ids):
        item = session.get(Update, update_id)
        assert item is not None, f"the collection names update {update_id}, which the seed's run did not make"
        hold(item, 6, "PS_OS_CANCELED", utcnow(), "push")
        session.flush()
        record_opened(session, item.order_key, [item], 6, "PS_OS_CANCELED", "push")


def _demo_shops(session) -> None:
    """The store's shops made the demo's two (no change when they already are)."""
    for change in demo_shop_changes(core_shop(row).to_document() for row in list_shops(session)):
        if change.create:
            create_shop(session, change.document)
        else:
            update_shop(session, change.code, change.document)


def _seed(app, shop, clock) -> None:
    """A demo GesCom (the one the documentation's examples come from) plus the orders the examples name that it lacks,
    each in the connected shop; tracking numbers accepted from the shop, webhooks signed with WEBHOOK_SECRET, a run done,
    and the updates the collection's conflict requests name held (their orders cancelled in the shop)."""
    app.config.update(PRESTASHOP_URL=shop.url, PRESTASHOP_API_KEY=SHOP_KEY, WEBHOOK_SECRET=WEBHOOK_SECRET)
    configure_shop(app)
    collection = json.loads(COLLECTION_PATH.read_text(encoding="utf-8"))
    gescom = app.extensions["gescom"]
    generate_demo(gescom.engine, orders=40, seed=7)
    with gescom.engine.connect() as connection:
        keys = set(connection.execute(text('SELECT DISTINCT "DO_NoWeb" FROM "F_DOCENTETE"')).scalars())
    warehouse = Warehouse(gescom.engine, clock)
    for key in sorted(_order_keys_named(collection) - keys):
        warehouse.create_order(key, [("MUG", "Mug", 1)])  # a new web order, as `flask demo advance` takes them
        keys.add(key)
    gescom.refresh()
    for key in sorted(key for key in keys if key and key.isdigit()):
        shop.add_order(int(key), current_state=2)
    with app.app_context():
        _demo_shops(db.session)  # the default shop claims souche 0, b2b souche 1: POST /shops adds one more beside them
        save_settings(db.session, {"tracking": {"import_from_shop": True}}, gescom.schema())
        db.session.commit()  # the test is the entry point here
        result = run_sync(UnitOfWork(db.session), gescom, config=RunConfig(recheck_age=timedelta(0)))
        assert result.run.status == "succeeded", result.run.error
        _hold(db.session, _update_ids_named(collection))  # the conflicts the collection applies anyway and dismisses
        db.session.commit()
        db.session.remove()


@pytest.fixture
def live_server(app, shop, clock):
    """The app served over real HTTP on a loopback port, in a thread, with the simulated shop connected; its base URL."""
    _newman_or_skip()
    _seed(app, shop, clock)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


def _newman(base_url: str, api_key: str, report: Path) -> subprocess.CompletedProcess:
    variables = {"baseUrl": base_url, "apiKey": api_key, "webhookSecret": WEBHOOK_SECRET}
    command = [str(NEWMAN), "run", str(COLLECTION_PATH), "--reporters", "cli,json", "--reporter-json-export", str(report), "--color", "off"]
    for name, value in variables.items():
        command += ["--env-var", f"{name}={value}"]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_newman_runs_the_committed_collection_green_against_a_live_server(live_server, keys, tmp_path):
    report_path = tmp_path / "newman.json"
    finished = _newman(live_server, keys["admin"], report_path)
    output = finished.stdout[-6000:] + finished.stderr[-2000:]
    assert report_path.exists(), f"newman wrote no report (exit {finished.returncode}):\n{output}"
    run = json.loads(report_path.read_text(encoding="utf-8"))["run"]
    failed = [
        f"{execution['item']['name']} answered {execution.get('response', {}).get('code')}: {assertion['assertion']}: {assertion['error']['message']}"
        for execution in run["executions"]
        for assertion in execution.get("assertions", [])
        if assertion.get("error")
    ]
    assert not failed, "assertions failed:\n" + "\n".join(failed)
    collection = json.loads(COLLECTION_PATH.read_text(encoding="utf-8"))
    names = [item["name"] for folder in collection["item"] for item in folder["item"]]
    assert [execution["item"]["name"] for execution in run["executions"]] == names, "every request runs once, in the collection's order"
    assert all(execution.get("assertions") for execution in run["executions"]), "every request asserts something"
    assert finished.returncode == 0 and run["failures"] == [], output
