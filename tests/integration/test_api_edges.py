"""The API's edges as a browser or a careless client meets them: CORS, 406, failed-key throttling, replayed answers.

Rate limit counters live in the limiter shared by every app of the process (api/ratelimit): each test counts from
an address of its own (REMOTE_ADDR), so that no test sees another's failures.
"""

from __future__ import annotations

import time
from datetime import timedelta
from functools import partial

import pytest

from models import db
from sync.gescom.demo.schema import create_gescom
from sync.gescom.demo.warehouse import Warehouse
from sync.services.run_config import RunConfig
from sync.services.runs import run_sync
from sync.services.unit_of_work import UnitOfWork
from sync.store.keys import create_key
from tests.conftest import bearer, make_test_app

SHOP = "https://shop.example.com"
PREFLIGHT = {"Origin": SHOP, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization, x-request-id"}


@pytest.fixture
def make_app(store_db, gescom_db):
    """An app like conftest's `app`, with these settings besides."""
    return partial(make_test_app, store_db, gescom_db)


def read_key(app) -> str:
    with app.app_context():
        key = create_key(db.session, f"edges-{time.monotonic_ns()}", "read")[1]
        db.session.commit()
        return key


def client_at(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def cors_headers(response) -> dict:
    return {name: value for name, value in response.headers.items() if name.lower().startswith("access-control-")}


# --- CORS ----------------------------------------------------------------------------------------------------------


def test_cors_is_off_unless_origins_are_configured(app, keys):
    client = client_at(app, "192.0.2.1")
    preflight = client.options("/api/v1/updates", headers=PREFLIGHT)
    assert preflight.status_code == 401 and cors_headers(preflight) == {}
    answer = client.get("/api/v1/updates", headers={**bearer(keys["read"]), "Origin": SHOP})
    assert answer.status_code == 200 and cors_headers(answer) == {}


def test_preflight_from_an_allowed_origin_needs_no_key(make_app):
    app = make_app(CORS_ALLOWED_ORIGINS=f" {SHOP}/ , https://erp.example.com")
    client = client_at(app, "192.0.2.2")
    preflight = client.options("/api/v1/updates", headers=PREFLIGHT)
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["Access-Control-Allow-Origin"] == SHOP
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
    allowed = {name.strip().lower() for name in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "x-request-id"} <= allowed
    assert "Origin" in preflight.headers.get("Vary", "")

    key = read_key(app)
    answer = client.get("/api/v1/updates", headers={**bearer(key), "Origin": SHOP})
    assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == SHOP
    exposed = {name.strip().lower() for name in answer.headers["Access-Control-Expose-Headers"].split(",")}
    assert exposed == {"etag", "retry-after", "x-request-id", "idempotent-replayed"}
    refused = client.get("/api/v1/updates", headers={"Origin": SHOP})  # the browser may read why
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == SHOP


def test_preflight_from_another_origin_is_an_ordinary_request(make_app):
    app = make_app(CORS_ALLOWED_ORIGINS=SHOP)
    client = client_at(app, "192.0.2.3")
    key = read_key(app)
    for headers in ({**PREFLIGHT, "Origin": "https://evil.example.com"}, {**PREFLIGHT, "Origin": "https://shop.example.com.evil.example"}):
        without_key = client.options("/api/v1/updates", headers=headers)
        assert without_key.status_code == 401 and cors_headers(without_key) == {}
        with_key = client.options("/api/v1/updates", headers={**headers, **bearer(key)})
        assert cors_headers(with_key) == {}
    not_a_preflight = client.options("/api/v1/updates", headers={"Origin": SHOP})  # no Access-Control-Request-Method
    assert not_a_preflight.status_code == 401


def test_the_admin_page_never_gets_cors(make_app):
    app = make_app(CORS_ALLOWED_ORIGINS=SHOP)
    client = client_at(app, "192.0.2.4")
    for path in ("/admin/login", "/metrics", "/openapi.json"):
        preflight = client.options(path, headers=PREFLIGHT)
        assert cors_headers(preflight) == {}, path
        assert cors_headers(client.get(path, headers={"Origin": SHOP})) == {}, path


def test_a_wrong_origin_setting_stops_the_start(make_app):
    with pytest.raises(RuntimeError, match="CORS_ALLOWED_ORIGINS"):
        make_app(CORS_ALLOWED_ORIGINS="https://.*example.com")
    with pytest.raises(RuntimeError, match="CORS_ALLOWED_ORIGINS"):
        make_app(CORS_ALLOWED_ORIGINS="shop.example.com")


# --- 406 -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "accept",
    [None, "", "*/*", "application/*", "application/json", "application/problem+json", "text/html, application/xhtml+xml, */*;q=0.8"],
)
def test_json_is_served_to_whoever_takes_it(app, keys, accept):
    headers = {**bearer(keys["read"]), **({"Accept": accept} if accept is not None else {})}
    answer = client_at(app, "192.0.2.5").get("/api/v1/settings", headers=headers)
    assert answer.status_code == 200 and answer.mimetype == "application/json"


@pytest.mark.parametrize("accept", ["application/xml", "text/html", "text/*", "application/json;q=0, application/problem+json;q=0", "garbage"])
def test_an_accept_without_json_gets_406(app, keys, accept):
    client = client_at(app, "192.0.2.6")
    answer = client.get("/api/v1/settings", headers={**bearer(keys["read"]), "Accept": accept})
    assert answer.status_code == 406 and answer.mimetype == "application/problem+json"
    assert answer.json["code"] == "not_acceptable"
    assert client.get("/api/v1/health", headers={"Accept": accept}).status_code == 406  # public endpoints too
    metrics = client.get("/metrics", headers={**bearer(keys["read"]), "Accept": "text/plain"})
    assert metrics.status_code == 200  # not the API's: Prometheus' text


# --- throttling failed key checks ----------------------------------------------------------------------------------


def test_failed_key_checks_are_throttled_per_address(make_app):
    app = make_app(API_AUTH_FAILURE_LIMIT="3 per minute")
    key = read_key(app)
    client = client_at(app, "192.0.2.7")
    wrong = [client.get("/api/v1/updates", headers=bearer(f"sgps_wrong-{n}")) for n in range(2)]
    missing = client.get("/api/v1/updates")
    assert [answer.status_code for answer in [*wrong, missing]] == [401, 401, 401]
    for headers in (bearer("sgps_wrong-again"), bearer(key), {}):
        refused = client.get("/api/v1/updates", headers=headers)  # even the right key waits: it is not even checked
        assert refused.status_code == 429 and refused.json["code"] == "too_many_failures"
        assert refused.mimetype == "application/problem+json" and 1 <= int(refused.headers["Retry-After"]) <= 60
    assert client.get("/api/v1/health").status_code in (200, 503)  # public endpoints need no key (503: no GesCom here)
    assert client_at(app, "192.0.2.8").get("/api/v1/updates", headers=bearer(key)).status_code == 200  # another address


def test_good_keys_and_wrong_scopes_are_not_counted(make_app):
    app = make_app(API_AUTH_FAILURE_LIMIT="2 per minute")
    key = read_key(app)
    client = client_at(app, "192.0.2.9")
    for _ in range(5):
        assert client.get("/api/v1/updates", headers=bearer(key)).status_code == 200
        assert client.post("/api/v1/updates/ack", json={"up_to": 1}, headers=bearer(key)).status_code == 403
    assert client.get("/api/v1/updates", headers=bearer("sgps_wrong")).status_code == 401


def test_the_wait_ends_with_the_window(make_app):
    app = make_app(API_AUTH_FAILURE_LIMIT="1 per second")
    key = read_key(app)
    client = client_at(app, "192.0.2.10")
    assert client.get("/api/v1/updates", headers=bearer("sgps_wrong")).status_code == 401
    refused = client.get("/api/v1/updates", headers=bearer(key))
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    time.sleep(1.1)
    assert client.get("/api/v1/updates", headers=bearer(key)).status_code == 200


def test_throttling_is_off_with_rate_limits(make_app):
    app = make_app(API_AUTH_FAILURE_LIMIT="1 per minute", RATELIMIT_ENABLED=False)
    client = client_at(app, "192.0.2.11")
    assert [client.get("/api/v1/updates").status_code for _ in range(3)] == [401, 401, 401]


def test_a_wrong_limit_setting_stops_the_start(make_app):
    with pytest.raises(RuntimeError, match="API_AUTH_FAILURE_LIMIT"):
        make_app(API_AUTH_FAILURE_LIMIT="thirty a minute")


# --- replayed answers ----------------------------------------------------------------------------------------------


def run_once(app) -> None:
    """One run of the detection, as the scheduler makes it (every open order read again)."""
    with app.app_context():
        run_sync(UnitOfWork(db.session), app.extensions["gescom"], config=RunConfig(recheck_age=timedelta(0)))
        db.session.remove()


def followed_after_a_run(app, clock, reference: str = "") -> None:
    """Shop order 4711 (one mug) in a Sage-shaped GesCom, followed after one run."""
    engine = app.extensions["gescom"].engine
    create_gescom(engine)
    Warehouse(engine, clock).create_order("4711", [("MUG", "Mug", 1)], reference=reference)
    run_once(app)


def test_a_replayed_answer_says_so(app, client, keys, clock):
    followed_after_a_run(app, clock, reference="KHWTQZXNB")
    admin = {**bearer(keys["admin"]), "If-Match": "*"}
    assert client.patch("/api/v1/settings", json={"tracking": {"import_from_shop": True}}, headers=admin).status_code == 200
    headers = {**bearer(keys["write"]), "Idempotency-Key": "parcel-1"}
    first = client.put("/api/v1/orders/4711/tracking", json={"tracking_number": "6A12345678901"}, headers=headers)
    second = client.put("/api/v1/orders/4711/tracking", json={"tracking_number": "6A12345678901"}, headers=headers)
    assert first.status_code == second.status_code == 200 and first.json == second.json
    assert "Idempotent-Replayed" not in first.headers and second.headers["Idempotent-Replayed"] == "true"
    without_key = client.put("/api/v1/orders/4711/tracking", json={"tracking_number": "6A12345678901"}, headers=bearer(keys["write"]))
    assert "Idempotent-Replayed" not in without_key.headers


def test_good_keys_touch_no_rate_limit_storage(make_app, monkeypatch):
    import api.ratelimit

    app = make_app(API_AUTH_FAILURE_LIMIT="3 per minute")
    key = read_key(app)
    looked_up = []

    class Recording:
        @property
        def limiter(self):
            looked_up.append(True)
            return api.ratelimit.Limiter.limiter.fget(limiter)

    limiter = api.ratelimit.limiter
    monkeypatch.setattr(api.ratelimit, "limiter", Recording())
    client = client_at(app, "192.0.2.12")
    assert [client.get("/api/v1/updates", headers=bearer(key)).status_code for _ in range(3)] == [200] * 3
    assert looked_up == []
    assert client.get("/api/v1/updates", headers=bearer("sgps_wrong")).status_code == 401  # counted: now it is looked up
    assert client.get("/api/v1/updates", headers=bearer(key)).status_code == 200
    assert len(looked_up) == 2


# --- settings: conditional requests ------------------------------------------------------------------------------


def test_settings_answer_304_to_their_current_etag(app, client, keys):
    headers = bearer(keys["read"])
    first = client.get("/api/v1/settings", headers=headers)
    etag = first.headers["ETag"]
    for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = client.get("/api/v1/settings", headers={**headers, "If-None-Match": sent})
        assert again.status_code == 304, sent
        assert again.headers["ETag"] == etag and again.data == b""
    changed = client.get("/api/v1/settings", headers={**headers, "If-None-Match": '"settings-v99"'})
    assert changed.status_code == 200 and changed.json == first.json


def test_an_unquoted_if_match_is_malformed_not_stale(app, client, keys):
    create_gescom(app.extensions["gescom"].engine)  # field names are checked against it
    headers = bearer(keys["admin"])
    etag = client.get("/api/v1/settings", headers=headers).headers["ETag"]
    for sent in (etag.strip('"'), "settings-v0, settings-v1", '"settings-v0'):
        answer = client.patch("/api/v1/settings", json={"notify_customer": False}, headers={**headers, "If-Match": sent})
        assert answer.status_code == 400, sent
        assert answer.mimetype == "application/problem+json"
        assert answer.json["code"] == "if_match_malformed" and answer.json["field"] == "If-Match"
    stale = client.patch("/api/v1/settings", json={"notify_customer": False}, headers={**headers, "If-Match": '"settings-v7"'})
    assert stale.status_code == 412 and stale.json["code"] == "settings_changed"
    saved = client.patch("/api/v1/settings", json={"notify_customer": False}, headers={**headers, "If-Match": etag})
    assert saved.status_code == 200 and saved.headers["ETag"] != etag


def test_a_patch_that_changes_nothing_keeps_the_version(app, client, keys):
    create_gescom(app.extensions["gescom"].engine)
    headers = bearer(keys["admin"])
    saved = client.patch("/api/v1/settings", json={"options": {"send_piece_number": True}}, headers={**headers, "If-Match": "*"})
    etag = saved.headers["ETag"]
    for patch in ({}, {"options": {"send_piece_number": True}}):
        same = client.patch("/api/v1/settings", json=patch, headers={**headers, "If-Match": etag})
        assert same.status_code == 200, same.text
        assert same.headers["ETag"] == etag and same.json == saved.json
    assert client.get("/api/v1/settings", headers=headers).headers["ETag"] == etag
    changed = client.patch("/api/v1/settings", json={"options": {"send_piece_number": False}}, headers={**headers, "If-Match": etag})
    assert etag == '"settings-v1"' and changed.headers["ETag"] == '"settings-v2"'


# --- webhooks: a previous state that is not a state ----------------------------------------------------------------


@pytest.mark.parametrize("previous", ["garbage", 0, -3, True, 2.5, 2**31])
def test_status_changed_with_a_previous_state_that_is_not_one_is_refused(app, client, keys, clock, previous):
    from tests.integration.test_api import SECRET, send_webhook

    app.config["WEBHOOK_SECRET"] = SECRET
    followed_after_a_run(app, clock)
    event = {"type": "order.status_changed", "data": {"order_key": "4711", "state_id": 4, "previous_state_id": previous}}
    refused = send_webhook(client, keys["write"], event, message_id="msg_prev")
    assert refused.status_code == 422, refused.text
    assert refused.json["code"] == "validation_error" and refused.json["field"] == "data.previous_state_id"
    event["data"]["previous_state_id"] = 3  # the same message, fixed: handled (the refusal kept nothing of it)
    recorded = send_webhook(client, keys["write"], event, message_id="msg_prev")
    assert recorded.status_code == 200 and recorded.json == {"order_key": "4711", "state_id": 4, "status": "recorded"}


def test_the_tracking_answer_says_written_or_unchanged(app, client, keys, clock):
    followed_after_a_run(app, clock)
    headers = bearer(keys["admin"])
    client.patch("/api/v1/settings", json={"tracking": {"import_from_shop": True}}, headers={**headers, "If-Match": "*"})
    answers = [client.put("/api/v1/orders/4711/tracking", json={"tracking_number": "6A47110000001"}, headers=headers) for _ in range(2)]
    assert [(answer.json["status"], answer.json["changed"]) for answer in answers] == [("written", True), ("unchanged", False)]
    schema = client.get("/openapi.json").json["components"]["schemas"]["TrackingResult"]["properties"]["status"]
    assert schema["enum"] == ["written", "unchanged"] and "unchanged" in schema["description"]


def _shipped_in_part(app, clock, admin) -> None:
    """Order 4711: 2 mugs and half a metre of ribbon ordered; one mug and 0.25 m shipped on a BL."""
    engine = app.extensions["gescom"].engine
    create_gescom(engine)
    warehouse = Warehouse(engine, clock)
    piece = warehouse.create_order("4711", [("MUG", "Mug", 2), ("RIBBON", "Ruban", 0.5)])
    warehouse.transform((1, piece), 3, take={"MUG": 1, "RIBBON": 0.25})
    client = app.test_client()
    options = {"options": {"send_delivery_details": True}}
    assert client.patch("/api/v1/settings", json=options, headers={**admin, "If-Match": "*"}).status_code == 200
    run_once(app)


def test_quantities_are_written_alike_in_the_feed_and_the_order_view(app, client, keys, clock):
    """1 for one mug (not 1.0), 0.25 for a quarter metre: the feed, its fast path and the order view agree."""
    admin = bearer(keys["admin"])
    _shipped_in_part(app, clock, admin)
    page = client.get("/api/v1/updates?include_acked=true", headers=admin)
    lines = page.json["updates"][-1]["deliveries"][0]["lines"]
    assert sorted((line["sku"], line["quantity"]) for line in lines) == [("MUG", 1), ("RIBBON", 0.25)]
    assert b'"quantity":1,' in page.data.replace(b" ", b"") and b'"quantity":1.0' not in page.data.replace(b" ", b"")
    view = client.get("/api/v1/orders/4711", headers=admin).json
    shipped = [document for document in view["documents"] if document["type"] == 3][0]
    assert sorted((line["sku"], line["quantity"]) for line in shipped["lines"]) == [("MUG", 1), ("RIBBON", 0.25)]


def test_without_a_shop_the_order_view_says_nothing_about_pushing(app, client, keys, clock):
    """Pull mode (no PRESTASHOP_URL): an update is waiting for the module, not "pending" for a push that never comes."""
    admin = bearer(keys["admin"])
    _shipped_in_part(app, clock, admin)
    entries = [entry for entry in client.get("/api/v1/orders/4711", headers=admin).json["timeline"] if entry["kind"] == "update"]
    assert entries and all(entry["to_shop"]["push"] is None and entry["to_shop"]["status"] == "pending" for entry in entries)


@pytest.mark.parametrize("path", ["/api/v1/orders/47%0011", "/api/v1/orders/47%0011/tracking", "/api/v1/push/retry/47%0011", "/api/v1/shops/b%002b"])
def test_a_nul_in_a_path_names_nothing(client, keys, path):
    """PostgreSQL refuses NUL in text: the path is answered 404 before any query, on every backend alike."""
    method = client.put if path.endswith("/tracking") else client.post if "/retry/" in path else client.get
    answer = method(path, json={"tracking_number": "6A1"} if path.endswith("/tracking") else None, headers=bearer(keys["admin"]))
    assert answer.status_code == 404 and answer.json["code"] == "not_found", answer.json
