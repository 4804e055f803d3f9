"""The REST API through the Flask test client, on the selected backend (SQLite or PostgreSQL)."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest

from models import db
from sync.gescom.demo.schema import create_gescom
from sync.gescom.demo.warehouse import Warehouse
from sync.services.run_config import RunConfig
from sync.services.runs import run_sync
from sync.services.unit_of_work import UnitOfWork
from sync.store.locks import acquire_lock, release_lock
from sync.store.webhooks import sign
from tests.conftest import bearer

LINES = [("TSHIRT-M", "T-shirt M", 3), ("MUG", "Mug", 1)]
SECRET = "whsec_" + "c2VjcmV0LWZvci10ZXN0cy1vbmx5LTEyMzQ1Njc4OTA="


@pytest.fixture
def shop(app, clock):
    """A demo-shaped GesCom with two web orders, followed by one run."""
    engine = app.extensions["gescom"].engine
    create_gescom(engine)
    warehouse = Warehouse(engine, clock)
    clock.tick(-10)
    first = warehouse.create_order("4711", LINES, reference="KHWTQZXNB")
    warehouse.create_order("4712", [("MUG", "Mug", 2)], reference="OTHERREFX")
    clock.tick(10)
    warehouse.transform((1, first), 3, take={"MUG": 1})
    with app.app_context():
        run_sync(UnitOfWork(db.session), app.extensions["gescom"], config=RunConfig(recheck_age=timedelta(0)))
        db.session.remove()
    return warehouse


def wait_for_run(client, key, run_id, timeout=20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(f"/api/v1/sync/runs/{run_id}", headers=bearer(key)).json
        if run["status"] != "running":
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} still running after {timeout} s")


# --- authentication, generated from the route table ---------------------------------------------------------

PUBLIC = {"/api/v1/health", "/openapi.json", "/api/docs", "/api/docs/assets/<path:filename>", "/api/v1/openapi.json"}


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("admin."):
            continue  # the admin pages have their own session guard: tests/integration/test_admin.py
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            path = (
                rule.rule.replace("<int(max=2147483647):run_id>", "1")
                .replace("<int:update_id>", "1")
                .replace("<string:order_key>", "4711")
                .replace("<path:filename>", "index.css")
            )
            yield rule.rule, method, path


def test_every_route_but_the_public_ones_needs_a_key(app, client, keys, shop):
    checked = 0
    for n, (rule, method, path) in enumerate(_routes(app)):
        # Each route from an address of its own: two failed key checks a route, under API_AUTH_FAILURE_LIMIT however
        # many routes there are (the throttle itself: tests/integration/test_api_edges.py).
        address = {"REMOTE_ADDR": f"10.0.{n // 250}.{n % 250 + 1}"}
        anonymous = client.open(path, method=method, json={}, environ_base=address)
        wrong = client.open(path, method=method, json={}, headers=bearer("sgps_not-a-real-key"), environ_base=address)
        if rule in PUBLIC:
            assert anonymous.status_code not in (401, 403), (method, path)
            continue
        assert anonymous.status_code == 401, (method, path, anonymous.status_code)
        assert anonymous.json["code"] == "unauthorized" and "Bearer" in anonymous.headers["WWW-Authenticate"]
        assert wrong.status_code == 401 and wrong.json["code"] == "invalid_api_key", (method, path)
        checked += 1
    assert checked >= 10  # every private route was seen


def test_scopes(client, keys, shop):
    read, write, admin = (bearer(keys[scope]) for scope in ("read", "write", "admin"))
    assert client.get("/api/v1/updates", headers=read).status_code == 200
    assert client.post("/api/v1/updates/ack", json={"up_to": 1}, headers=read).status_code == 403
    assert client.get("/api/v1/updates", headers=write).status_code == 200  # served: now it may acknowledge
    assert client.post("/api/v1/updates/ack", json={"up_to": 1}, headers=write).status_code == 200
    forbidden = client.patch("/api/v1/settings", json={"notify_customer": False}, headers={**write, "If-Match": "*"})
    assert forbidden.status_code == 403 and forbidden.json["code"] == "insufficient_scope"
    assert client.patch("/api/v1/settings", json={"notify_customer": False}, headers={**admin, "If-Match": "*"}).status_code == 200
    assert client.get("/api/v1/updates", headers={"X-Api-Key": keys["read"]}).status_code == 200


def test_revoked_key_stops_working(app, client, keys, runner):
    assert client.get("/api/v1/updates", headers=bearer(keys["read"])).status_code == 200
    result = runner.invoke(args=["apikey", "revoke", "test-read"])
    assert result.exit_code == 0
    assert client.get("/api/v1/updates", headers=bearer(keys["read"])).status_code == 401


def test_apikey_cli_prints_the_key_alone_last_and_stores_only_a_hash(app, runner, client):
    from sqlalchemy import select

    from models import ApiKey

    result = runner.invoke(args=["apikey", "create", "module", "--scope", "write"])
    assert result.exit_code == 0
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("sgps_") and len(key) > 40
    with app.app_context():
        stored = db.session.scalar(select(ApiKey).where(ApiKey.name == "module"))
        assert stored.key_hash != key and key not in json.dumps([stored.key_hash, stored.prefix])
    refused = client.post("/api/v1/updates/ack", json={"up_to": 1}, headers=bearer(key))  # nothing served to it yet
    assert refused.status_code == 422 and refused.json["code"] == "ack_beyond_served" and refused.json["served_up_to"] == 0
    listed = runner.invoke(args=["apikey", "list"])
    assert "module" in listed.output and key not in listed.output
    again = runner.invoke(args=["apikey", "create", "module"])
    assert again.exit_code != 0 and "exists already" in again.output


def test_public_endpoints(client, shop):
    assert client.get("/api/v1/health").status_code == 200
    spec = client.get("/openapi.json")
    assert spec.status_code == 200 and "/api/v1/updates" in spec.json["paths"]
    assert spec.json["paths"]["/api/v1/health"]["get"]["security"] == []
    assert client.get("/api/v1/openapi.json").status_code == 308
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and b"swagger-ui" in docs.data
    assert client.get("/api/docs/assets/swagger-ui-bundle.js").status_code == 200


# --- settings -----------------------------------------------------------------------------------------------


def test_settings_etag_and_if_match(client, keys, shop):
    admin = bearer(keys["admin"])
    first = client.get("/api/v1/settings", headers=admin)
    etag = first.headers["ETag"]
    assert first.json["tracking"]["header_field"] == "DO_Coord01"
    missing = client.patch("/api/v1/settings", json={"notify_customer": False}, headers=admin)
    assert missing.status_code == 428 and missing.json["code"] == "if_match_required"
    saved = client.patch("/api/v1/settings", json={"tracking": {"header_field": "Ref Chronopost"}}, headers={**admin, "If-Match": etag})
    assert saved.status_code == 200 and saved.json["tracking"]["header_field"] == "Ref Chronopost"
    assert saved.json["tracking"]["send"] is True  # merged, not replaced
    assert saved.headers["ETag"] != etag
    stale = client.patch("/api/v1/settings", json={"notify_customer": False}, headers={**admin, "If-Match": etag})
    assert stale.status_code == 412 and stale.json["code"] == "settings_changed"


@pytest.mark.parametrize(
    "patch, field, code",
    [
        ({"tracking": {"header_field": "DO_Cord01"}}, "tracking.header_field", "invalid_settings"),
        ({"link_field": "x]; DROP TABLE F_DOCLIGNE; --"}, "link_field", "invalid_settings"),
        ({"stage_states": {"shipped": 99}}, "stage_states.shipped", "invalid_settings"),
        ({"stage_states": {"shipped": "4"}}, "stage_states.shipped", "validation_error"),
        ({"tracking": {"send": "yes"}}, "tracking.send", "validation_error"),
        ({"shipped_document_type": 6}, "shipped_document_type", "validation_error"),
        ({"colour": "blue"}, "colour", "validation_error"),
    ],
)
def test_settings_errors_name_the_field(client, keys, shop, patch, field, code):
    response = client.patch("/api/v1/settings", json=patch, headers={**bearer(keys["admin"]), "If-Match": "*"})
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert response.json["code"] == code and response.json["field"] == field, response.json


def test_gescom_fields_and_order_states(client, keys, shop):
    fields = client.get("/api/v1/gescom/fields", headers=bearer(keys["read"])).json
    header = {field["name"]: field for field in fields["header"]}
    assert [header[f"DO_Coord0{n}"]["label"] for n in range(1, 5)] == ["Entête 1", "Entête 2", "Entête 3", "Entête 4"]
    assert header["Ref Chronopost"] == {"name": "Ref Chronopost", "label": "Ref Chronopost", "width": 21, "kind": "free"}
    line = {field["name"]: field for field in fields["line"]}
    assert line["DL_NoColis"]["label"] == "N° colis" and line["DL_NoColis"]["width"] == 19 and "N° de série" in line
    states = client.get("/api/v1/order-states", headers=bearer(keys["read"])).json
    assert states["source"] == "native" and [s["id"] for s in states["states"]] == list(range(1, 14))
    assert states["states"][3]["name"] == {"en": "Shipped", "fr": "Expédié"} and states["states"][3]["shipped"] is True


def test_gescom_down_is_a_503_problem(app, client, keys, tmp_path):
    from sqlalchemy import create_engine

    from sync.gescom.adapter import GesCom

    app.extensions["gescom"] = GesCom(create_engine(f"sqlite:///{tmp_path}/no/such/dir.db"))
    response = client.get("/api/v1/gescom/fields", headers=bearer(keys["read"]))
    assert response.status_code == 503 and response.json["code"] == "gescom_unavailable"
    assert client.get("/api/v1/health").status_code == 503


# --- runs ----------------------------------------------------------------------------------------------------


def test_runs_start_in_background_one_at_a_time(app, client, keys, shop, clock):
    write = bearer(keys["write"])
    shop.transform((1, shop.documents("4712")[0][1]), 3)
    started = client.post("/api/v1/sync/runs", json={}, headers=write)
    assert started.status_code == 202 and started.headers["Location"].endswith(f"/{started.json['id']}")
    run = wait_for_run(client, keys["read"], started.json["id"])
    assert run["status"] == "succeeded" and run["updates_created"] >= 1 and run["updates"] is None
    with app.app_context():
        assert acquire_lock(db.session, "sync", "someone", timedelta(minutes=1))
    busy = client.post("/api/v1/sync/runs", json={"dry_run": True}, headers=write)
    assert busy.status_code == 409 and busy.json["code"] == "run_in_progress"
    with app.app_context():
        release_lock(db.session, "sync", "someone")
    runs = client.get("/api/v1/sync/runs?limit=1", headers=write).json
    assert len(runs["runs"]) == 1 and runs["next"] is not None
    older = client.get(f"/api/v1/sync/runs?limit=1&before={runs['next']}", headers=write).json
    assert older["runs"][0]["id"] < runs["runs"][0]["id"]
    assert client.get("/api/v1/sync/runs/999999", headers=write).json["code"] == "run_not_found"


def test_dry_run_returns_updates_and_stores_none(client, keys, shop):
    write = bearer(keys["write"])
    before = client.get("/api/v1/updates?include_acked=true&limit=500", headers=write).json["updates"]
    shop.transform((1, shop.documents("4712")[0][1]), 3)
    started = client.post("/api/v1/sync/runs", json={"dry_run": True}, headers=write)
    run = wait_for_run(client, keys["read"], started.json["id"])
    assert run["dry_run"] and [u["order_key"] for u in run["updates"]] == ["4712"] and run["updates"][0]["id"] is None
    after = client.get("/api/v1/updates?include_acked=true&limit=500", headers=write).json["updates"]
    assert after == before


@pytest.mark.parametrize("body", [{"dry_run": "yes"}, {"dry_run": True, "extra": 1}, [1, 2]])
def test_run_request_validation(client, keys, body):
    response = client.post("/api/v1/sync/runs", json=body, headers=bearer(keys["write"]))
    assert response.status_code == 422 and response.json["code"] == "validation_error"


# --- the feed ------------------------------------------------------------------------------------------------


def test_feed_pages_and_acknowledgements(client, keys, shop):
    read, write = bearer(keys["read"]), bearer(keys["write"])
    page = client.get("/api/v1/updates?limit=1", headers=write).json
    assert len(page["updates"]) == 1 and page["has_more"] is True
    first_id = page["updates"][0]["id"]
    rest = client.get(f"/api/v1/updates?after={page['next']}&limit=500", headers=write).json
    assert all(u["id"] > first_id for u in rest["updates"]) and rest["has_more"] is False
    all_ids = [first_id] + [u["id"] for u in rest["updates"]]
    assert page["head"] == rest["head"] == all_ids[-1]
    ack = client.post("/api/v1/updates/ack", json={"ids": [first_id]}, headers=write).json
    assert ack == {"acknowledged": 1, "already_acknowledged": 0, "unknown": []}
    again = client.post("/api/v1/updates/ack", json={"ids": [first_id]}, headers=write).json
    assert again == {"acknowledged": 0, "already_acknowledged": 1, "unknown": []}
    assert first_id not in [u["id"] for u in client.get("/api/v1/updates?limit=500", headers=read).json["updates"]]
    shown = client.get("/api/v1/updates?limit=500&include_acked=true", headers=read).json["updates"]
    assert [u["id"] for u in shown] == all_ids and shown[0]["acked_at"] is not None
    up_to = client.post("/api/v1/updates/ack", json={"up_to": all_ids[-1]}, headers=write).json
    assert up_to["acknowledged"] == len(all_ids) - 1
    assert client.get("/api/v1/updates", headers=read).json == {"updates": [], "next": 0, "has_more": False, "head": all_ids[-1]}
    assert client.get("/api/v1/updates", headers=write).json == {"updates": [], "next": 0, "has_more": False, "head": all_ids[-1]}


@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=0", "query.limit"),
        ("limit=501", "query.limit"),
        ("limit=abc", "query.limit"),
        ("after=-1", "query.after"),
        ("colour=red", "query.colour"),
    ],
)
def test_feed_bad_queries(client, keys, query, field):
    response = client.get(f"/api/v1/updates?{query}", headers=bearer(keys["read"]))
    assert response.status_code == 422 and response.json["field"] == field


@pytest.mark.parametrize(
    "body, status",
    [({"ids": [], "up_to": 3}, 422), ({}, 422), ({"ids": ["1"]}, 422), ({"up_to": 0}, 422), ({"ids": list(range(1, 1002))}, 422)],
)
def test_ack_bad_bodies(client, keys, body, status):
    response = client.post("/api/v1/updates/ack", json=body, headers=bearer(keys["write"]))
    assert response.status_code == status and response.json["code"] == "validation_error"


def test_bad_json_and_huge_bodies(client, keys):
    headers = {**bearer(keys["write"]), "Content-Type": "application/json"}
    broken = client.post("/api/v1/updates/ack", data="{not json", headers=headers)
    assert broken.status_code == 400 and broken.json["code"] == "invalid_json"
    huge = client.post("/api/v1/updates/ack", data=b'{"ids": [' + b"1," * 600_000 + b"1]}", headers=headers)
    assert huge.status_code == 413 and huge.json["code"] == "payload_too_large"


def test_feed_cursor_never_skips_nor_repeats_under_concurrent_inserts(app, client, keys, shop, clock):
    """A run keeps inserting updates while a reader follows the cursor: every update is read exactly once."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def produce():
        try:
            with app.app_context():
                for n in range(12):
                    piece = shop.create_order(str(9000 + n), LINES)
                    shop.transform((1, piece), 3, take={"MUG": 1})
                    run_sync(UnitOfWork(db.session), app.extensions["gescom"], config=RunConfig(recheck_age=timedelta(0)))
                db.session.remove()
        except BaseException as error:  # surfaced in the main thread
            failures.append(error)
        finally:
            stop.set()

    producer = threading.Thread(target=produce)
    producer.start()
    seen: list[int] = []
    cursor = 0
    while True:
        done = stop.is_set()
        page = client.get(f"/api/v1/updates?after={cursor}&limit=3&include_acked=true", headers=bearer(keys["read"])).json
        seen += [u["id"] for u in page["updates"]]
        cursor = page["next"]
        if done and not page["has_more"] and not page["updates"]:
            break
    producer.join()
    assert not failures, failures
    everything = [u["id"] for u in client.get("/api/v1/updates?include_acked=true&limit=500", headers=bearer(keys["read"])).json["updates"]]
    assert seen == everything and len(seen) == len(set(seen)) and len(seen) >= 14


# --- orders ---------------------------------------------------------------------------------------------------


def test_order_view(client, keys, shop):
    view = client.get("/api/v1/orders/4711", headers=bearer(keys["read"])).json
    assert view["stage"] == "partially_shipped" and view["id_order"] == 4711
    documents = {d["type_name"]: d for d in view["documents"]}
    assert set(documents) == {"BC", "BL"} and documents["BL"]["lines"][0]["sku"] == "MUG"
    assert [entry["kind"] for entry in view["timeline"]] == ["update"]
    assert view["timeline"][0]["to_shop"]["status"] == "pending"
    assert client.get("/api/v1/orders/0000", headers=bearer(keys["read"])).json["code"] == "order_not_found"


# --- tracking back to GesCom ------------------------------------------------------------------------------------


def _header_value(app, doc_type, piece, field="DO_Coord01"):
    from sqlalchemy import MetaData, Table, select

    engine = app.extensions["gescom"].engine
    table = Table("F_DOCENTETE", MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        return conn.execute(select(table.c[field]).where(table.c.DO_Type == doc_type, table.c.DO_Piece == piece)).scalar()


def test_tracking_back_to_gescom(app, client, keys, shop):
    write, admin = bearer(keys["write"]), bearer(keys["admin"])
    off = client.put("/api/v1/orders/4711/tracking", json={"tracking_number": "6A99999999999"}, headers=write)
    assert off.status_code == 409 and off.json["code"] == "tracking_import_disabled"
    client.patch("/api/v1/settings", json={"tracking": {"import_from_shop": True}}, headers={**admin, "If-Match": "*"})
    done = client.put("/api/v1/orders/4711/tracking", json={"tracking_number": "6A99999999999"}, headers=write)
    assert done.status_code == 200 and done.json["document"]["type"] == 3 and done.json["changed"] is True
    assert _header_value(app, 3, done.json["document"]["piece"]) == "6A99999999999"
    too_long = client.put("/api/v1/orders/4712/tracking", json={"tracking_number": "X" * 26}, headers=write)
    assert too_long.status_code == 422 and too_long.json["code"] == "invalid_tracking_number" and too_long.json["field"] == "tracking_number"
    assert client.put("/api/v1/orders/nope/tracking", json={"tracking_number": "6A1"}, headers=write).status_code == 404
    # No echo: the next run does not send the shop's own number back as a change.
    started = client.post("/api/v1/sync/runs", json={"full": True}, headers=write)
    wait_for_run(client, keys["read"], started.json["id"])
    latest = client.get("/api/v1/updates?limit=500", headers=write).json["updates"]
    assert not [u for u in latest if u["order_key"] == "4711" and "tracking" in u["changes"]]
    timeline = client.get("/api/v1/orders/4711", headers=write).json["timeline"]
    assert any(entry["kind"] == "tracking_from_shop" for entry in timeline)


def test_idempotency_key(app, client, keys, shop):
    write = bearer(keys["write"])
    client.patch("/api/v1/settings", json={"tracking": {"import_from_shop": True}}, headers={**bearer(keys["admin"]), "If-Match": "*"})
    headers = {**write, "Idempotency-Key": "order-4711-parcel-1"}
    first = client.put("/api/v1/orders/4711/tracking", json={"tracking_number": "6A12345678901"}, headers=headers)
    second = client.put("/api/v1/orders/4711/tracking", json={"tracking_number": "6A12345678901"}, headers=headers)
    assert first.status_code == second.status_code == 200 and first.json == second.json and first.json["changed"] is True
    other = client.put("/api/v1/orders/4711/tracking", json={"tracking_number": "6A00000000000"}, headers=headers)
    assert other.status_code == 422 and other.json["code"] == "idempotency_key_reused"
    events = [e for e in client.get("/api/v1/orders/4711", headers=write).json["timeline"] if e["kind"] == "tracking_from_shop"]
    assert len(events) == 1  # the replay did not write again
    bad = {**write, "Idempotency-Key": "k-2"}
    assert client.put("/api/v1/orders/4711/tracking", json={"tracking_number": "a;b"}, headers=bad).status_code == 422
    assert client.put("/api/v1/orders/4711/tracking", json={"tracking_number": "a;b"}, headers=bad).json["code"] == "invalid_tracking_number"


# --- webhooks ------------------------------------------------------------------------------------------------------


def send_webhook(client, key, event: dict, *, message_id="msg_1", offset=0, secret=SECRET, body: bytes | None = None, headers=None):
    raw = body if body is not None else json.dumps(event).encode()
    timestamp = int(time.time()) + offset
    signed = {"webhook-id": message_id, "webhook-timestamp": str(timestamp), "webhook-signature": sign(secret, message_id, timestamp, raw)}
    return client.post(
        "/api/v1/webhooks/prestashop", data=raw, headers={**bearer(key), "Content-Type": "application/json", **signed, **(headers or {})}
    )


@pytest.fixture
def webhooks(app):
    app.config["WEBHOOK_SECRET"] = SECRET


def test_webhook_tracking_updated_and_replay(app, client, keys, shop, webhooks):
    client.patch("/api/v1/settings", json={"tracking": {"import_from_shop": True}}, headers={**bearer(keys["admin"]), "If-Match": "*"})
    event = {"type": "order.tracking_updated", "data": {"id_order": 4711, "tracking_number": "6A55555555555"}}
    first = send_webhook(client, keys["write"], event)
    assert first.status_code == 200 and first.json["changed"] is True
    again = send_webhook(client, keys["write"], event)
    assert again.status_code == 200 and again.json["status"] == "duplicate"
    events = [e for e in client.get("/api/v1/orders/4711", headers=bearer(keys["read"])).json["timeline"] if e["kind"] == "tracking_from_shop"]
    assert len(events) == 1


@pytest.mark.parametrize(
    "tamper, code",
    [
        ({"secret": "whsec_" + "b3RoZXItc2VjcmV0"}, "webhook_signature_invalid"),
        ({"offset": -330}, "webhook_timestamp_stale"),
        ({"offset": 330}, "webhook_timestamp_stale"),
        ({"headers": {"webhook-signature": ""}}, "webhook_signature_missing"),
        ({"headers": {"webhook-timestamp": "yesterday"}}, "webhook_timestamp_invalid"),
        ({"headers": {"webhook-signature": "v1,AAAA v2,BBBB"}}, "webhook_signature_invalid"),
    ],
)
def test_webhook_signature_is_checked(client, keys, shop, webhooks, tamper, code):
    event = {"type": "order.status_changed", "data": {"id_order": 4711, "state_id": 4}}
    response = send_webhook(client, keys["write"], event, **tamper)
    assert response.status_code == 401 and response.json["code"] == code


def test_webhook_body_changed_after_signing_is_rejected(client, keys, shop, webhooks):
    raw = json.dumps({"type": "order.status_changed", "data": {"id_order": 4711, "state_id": 4}}).encode()
    timestamp = int(time.time())
    headers = {"webhook-id": "m9", "webhook-timestamp": str(timestamp), "webhook-signature": sign(SECRET, "m9", timestamp, raw)}
    tampered = raw.replace(b'"state_id": 4', b'"state_id": 6')
    response = client.post(
        "/api/v1/webhooks/prestashop", data=tampered, headers={**bearer(keys["write"]), **headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 401 and response.json["code"] == "webhook_signature_invalid"


def test_webhook_status_changed_is_recorded_and_blocks_older_states(app, client, keys, shop, webhooks, clock):
    admin = bearer(keys["admin"])
    client.patch("/api/v1/settings", json={"stage_states": {"partially_shipped": 3, "shipped": 4}}, headers={**admin, "If-Match": "*"})
    # The merchant marks order 4712 "Shipped" by hand in the shop, before the warehouse did anything.
    answer = send_webhook(
        client, keys["write"], {"type": "order.status_changed", "data": {"order_key": "4712", "state_id": 4, "previous_state_id": 2}}, message_id="m2"
    )
    assert answer.status_code == 200 and answer.json["status"] == "recorded"
    shop.transform((1, shop.documents("4712")[0][1]), 3, take={"MUG": 1})  # then a partial delivery in Sage
    started = client.post("/api/v1/sync/runs", json={}, headers=bearer(keys["write"]))
    wait_for_run(client, keys["read"], started.json["id"])
    updates = [u for u in client.get("/api/v1/updates?limit=500", headers=admin).json["updates"] if u["order_key"] == "4712"]
    assert updates[-1]["stage"] == "partially_shipped" and updates[-1]["state_id"] is None  # 3 would move the shop back
    timeline = client.get("/api/v1/orders/4712", headers=admin).json["timeline"]
    assert any(e["kind"] == "shop_state_changed" and e["data"]["state_id"] == 4 for e in timeline)
    unknown = send_webhook(client, keys["write"], {"type": "order.status_changed", "data": {"id_order": 123456, "state_id": 4}}, message_id="m3")
    assert unknown.status_code == 200 and unknown.json["status"] == "ignored"


@pytest.mark.parametrize(
    "event, field",
    [
        ({"type": "order.status_changed", "data": {"id_order": 4711}}, "data.state_id"),
        ({"type": "order.status_changed", "data": {"state_id": 4}}, "data.order_key"),
        ({"type": "order.tracking_updated", "data": {"id_order": 4711, "tracking_number": 5}}, "data.tracking_number"),
        ({"type": "order.status_changed", "data": {"id_order": "4711", "state_id": 4}}, "data.id_order"),
        ({"type": 5, "data": {}}, "type"),
        ({"type": "order.status_changed", "data": {"id_order": 2**70, "state_id": 4}}, "data.id_order"),
        ({"type": "order.status_changed", "data": {"id_order": 4711, "state_id": 2**40}}, "data.state_id"),
    ],
)
def test_webhook_bad_events_name_the_field(client, keys, shop, webhooks, event, field):
    response = send_webhook(client, keys["write"], event, message_id=f"bad-{field}")
    assert response.status_code == 422 and response.json["field"] == field


def test_webhook_unknown_type_is_accepted_and_ignored(client, keys, shop, webhooks):
    response = send_webhook(client, keys["write"], {"type": "order.paid", "data": {}}, message_id="m-x")
    assert response.status_code == 200 and response.json["status"] == "ignored"


def test_webhooks_need_a_secret(client, keys, shop):
    response = send_webhook(client, keys["write"], {"type": "order.status_changed", "data": {"id_order": 1, "state_id": 4}})
    assert response.status_code == 503 and response.json["code"] == "webhooks_not_configured"


def test_keys_never_reach_the_logs(app, client, keys, shop, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # every statement and its parameters
    client.get("/api/v1/updates", headers=bearer(keys["read"]))
    client.get("/api/v1/updates", headers=bearer(keys["read"] + "x"))
    client.patch("/api/v1/settings", json={}, headers={**bearer(keys["read"]), "If-Match": "*"})
    client.get("/api/v1/orders/4711", headers={"X-Api-Key": keys["admin"]})
    assert "api_keys" in caplog.text  # the key lookups were logged, with their parameters
    for key in keys.values():
        assert key not in caplog.text and key[5:] not in caplog.text


def test_a_body_that_is_not_json_is_refused(client, keys):
    response = client.post(
        "/api/v1/sync/runs", data='{"dry_run": true}', headers={**bearer(keys["write"]), "Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 415 and response.json["code"] == "unsupported_media_type"


def test_answers_that_depend_on_the_moment_are_not_replayed(app, client, keys, shop):
    headers = {**bearer(keys["write"]), "Idempotency-Key": "k-later"}
    first = client.put("/api/v1/orders/4711/tracking", json={"tracking_number": "6A1"}, headers=headers)
    assert first.status_code == 409 and first.json["code"] == "tracking_import_disabled"
    client.patch("/api/v1/settings", json={"tracking": {"import_from_shop": True}}, headers={**bearer(keys["admin"]), "If-Match": "*"})
    second = client.put("/api/v1/orders/4711/tracking", json={"tracking_number": "6A1"}, headers=headers)
    assert second.status_code == 200 and second.json["status"] == "written"


def test_malformed_webhook_secret_stops_the_start(store_db, gescom_db):
    from app import create_app

    with pytest.raises(RuntimeError, match="WEBHOOK_SECRET"):
        create_app({"SQLALCHEMY_DATABASE_URI": store_db.url, "GESCOM_DATABASE_URL": gescom_db.url, "WEBHOOK_SECRET": "whsec_***not base64***"})
