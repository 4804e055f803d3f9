"""Webhooks to consumers (updates.available): a consumer registers an endpoint and gets one signed event when updates
wait for it, checked here by a real HTTP receiver on loopback with the Standard Webhooks library and the secret given
once; failures are retried with backoff and recorded; one attempt in flight per consumer (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app import gescom_of, run_config_of
from models import ApiKey, UpdateAck, db, utcnow
from models.notifications import ConsumerWebhook, WebhookDelivery
from sync.core.stages import ShopUpdate
from sync.services.notifications import DeliveryOptions, deliver_due
from sync.services.scheduler import tick
from sync.services.unit_of_work import UnitOfWork
from sync.store.feed import add_update, head_id
from sync.store.keys import hash_key, revoke_key
from sync.store.notifications import queue_events
from tests.conftest import bearer, make_test_app
from tests.integration.test_admin import login

WEBHOOK = "/api/v1/consumer/webhook"
LINES = [("TSHIRT-M", "T-shirt M", 3), ("MUG", "Mug", 1)]


class Receiver:
    """A consumer's endpoint: records every request (headers, body) and answers the statuses it is given in turn
    (204 once they run out); `hold` keeps a request open until released, to see what happens meanwhile."""

    def __init__(self):
        self.requests: list[tuple[dict, bytes]] = []
        self.statuses: list[int] = []
        self.hold: threading.Event | None = None
        self.arrived = threading.Event()
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                    status = receiver.statuses.pop(0) if receiver.statuses else 204
                receiver.arrived.set()
                if receiver.hold is not None:
                    receiver.hold.wait(10)
                with receiver.lock:
                    receiver.in_flight -= 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/module/webhook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def verified(self, secret: str) -> list[dict]:
        """Every request's payload, each checked with the Standard Webhooks library (raises when one does not verify)."""
        return [Webhook(secret).verify(body.decode("utf-8"), headers) for headers, body in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    if receiver.hold is not None:
        receiver.hold.set()
    receiver.close()


@pytest.fixture
def app(store_db, gescom_db):
    """conftest's app, with http to this machine allowed (the receiver is on loopback)."""
    app = make_test_app(store_db, gescom_db, SYNC_RECHECK_AGE=0, CONSUMER_WEBHOOK_ALLOW_HTTP=True)
    if gescom_db.engine_options:
        from sync.gescom.adapter import GesCom

        app.extensions["gescom"] = GesCom(gescom_db.engine)
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def _register(client, key: str, url: str) -> str:
    answer = client.put(WEBHOOK, json={"url": url}, headers=bearer(key))
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["secret"]


def _store_updates(count: int, first: int = 4700) -> None:
    for n in range(count):
        add_update(
            db.session,
            str(first + n),
            first + n,
            ShopUpdate("shipped", 4, [], None, None, None, ["state"]),
            run_id=None,
            created_at=datetime(2026, 1, 1),
        )
    db.session.commit()


LOOPBACK = DeliveryOptions(allow_http=True)


def _deliver(at: datetime, options: DeliveryOptions = LOOPBACK):
    with UnitOfWork(db.session) as uow:
        return deliver_due(uow, options, clock=lambda: at)


def _queue(at: datetime) -> int:
    with UnitOfWork(db.session) as uow:
        changed = queue_events(uow.session, at)
        uow.commit()
        return changed


def key_id_of(key: str) -> int:
    """The id of the key row of this API key."""
    return db.session.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(key)))


def _tick_and_wait(app) -> None:
    """A scheduler tick (a run, then the webhooks), and the delivery thread it started, joined."""
    tick(db.session, gescom_of(app), None, run_config_of(app), threading.Event(), webhooks=DeliveryOptions.from_mapping(app.config))
    for thread in threading.enumerate():
        if thread.name == "consumer-webhooks":
            thread.join(15)


def test_a_run_storing_updates_sends_one_verified_event_with_its_head(app, client, keys, warehouse, receiver):
    secret = _register(client, keys["write"], receiver.url)
    assert secret.startswith("whsec_")
    warehouse.create_order("4711", LINES)
    warehouse.create_order("4712", LINES)
    with app.app_context():
        _tick_and_wait(app)
        head = head_id(db.session)
        assert head >= 2
        [payload] = receiver.verified(secret)
        assert payload["type"] == "updates.available"
        assert payload["data"] == {"head": head, "waiting": head}
        assert datetime.fromisoformat(payload["timestamp"].rstrip("Z")) <= datetime.now() + timedelta(seconds=5)
        _tick_and_wait(app)  # nothing new: no second event
        assert len(receiver.requests) == 1
    shown = client.get(WEBHOOK, headers=bearer(keys["write"])).get_json()
    assert "secret" not in shown
    assert shown["notified_head"] == head and shown["pending_head"] is None
    assert [(d["head"], d["status_code"], d["delivered"]) for d in shown["deliveries"]] == [(head, 204, True)]
    headers = receiver.requests[0][0]
    assert headers["webhook-id"] == shown["deliveries"][0]["event_id"]


def test_only_consumers_with_updates_waiting_are_told(app, client, keys, receiver):
    """The admin key acknowledged everything: it is not told; the write key is."""
    other = Receiver()
    try:
        write_secret = _register(client, keys["write"], receiver.url)
        _register(client, keys["admin"], other.url)
        with app.app_context():
            _store_updates(3)
            admin_id = db.session.scalar(select(ConsumerWebhook.key_id).where(ConsumerWebhook.url == other.url))
            db.session.add_all(UpdateAck(key_id=admin_id, update_id=n) for n in (1, 2, 3))
            db.session.commit()
            now = utcnow()
            assert _queue(now) == 1
            assert _deliver(now).delivered == 1
        assert [p["data"] for p in receiver.verified(write_secret)] == [{"head": 3, "waiting": 3}]
        assert other.requests == []
    finally:
        other.close()


def test_a_failing_endpoint_is_retried_with_backoff_and_every_attempt_recorded(app, client, keys, receiver):
    secret = _register(client, keys["write"], receiver.url)
    receiver.statuses = [500, 503]
    start = utcnow()
    with app.app_context():
        _store_updates(2)
        _queue(start)
        assert _deliver(start).failed == 1
        assert _deliver(start + timedelta(seconds=10)).failed == 0  # not due yet: the first wait is 30 s ± 25 %
        assert len(receiver.requests) == 1
        row = db.session.get(ConsumerWebhook, key_id_of(keys["write"]))
        first_wait = row.next_attempt_at - start
        assert timedelta(seconds=22) <= first_wait <= timedelta(seconds=38)
        assert _deliver(start + timedelta(seconds=40)).failed == 1
        db.session.expire_all()
        second_wait = db.session.get(ConsumerWebhook, row.key_id).next_attempt_at - (start + timedelta(seconds=40))
        assert timedelta(seconds=44) <= second_wait <= timedelta(seconds=76)  # doubled
        assert _deliver(start + timedelta(minutes=3)).delivered == 1
        attempts = list(db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
    assert [(a.attempt, a.status_code, a.delivered) for a in attempts] == [(1, 500, False), (2, 503, False), (3, 204, True)]
    assert all(a.duration_ms >= 0 and a.error in (None, "HTTP 500", "HTTP 503") for a in attempts)
    # Retries of one event: the same webhook-id and the same body, each verified.
    assert len({headers["webhook-id"] for headers, _ in receiver.requests}) == 1
    assert len({body for _, body in receiver.requests}) == 1
    assert len(receiver.verified(secret)) == 3


def test_an_endpoint_that_never_answers_is_given_up_and_polling_goes_on(app, client, keys):
    _register(client, keys["write"], "http://127.0.0.1:9/nobody")  # the discard port: nothing listens
    start = utcnow()
    options = DeliveryOptions(allow_http=True, timeout=1, max_attempts=2)
    with app.app_context():
        _store_updates(1)
        _queue(start)
        assert _deliver(start, options).failed == 1
        report = _deliver(start + timedelta(minutes=5), options)
        assert report.given_up == 1
        row = db.session.get(ConsumerWebhook, key_id_of(keys["write"]))
        assert row.pending_head is None and row.notified_head == 1
        attempts = list(db.session.scalars(select(WebhookDelivery)))
        assert [a.status_code for a in attempts] == [None, None] and all("Connection" in a.error for a in attempts)
    assert client.get("/api/v1/updates", headers=bearer(keys["write"])).get_json()["updates"][0]["id"] == 1


def test_one_event_in_flight_per_consumer_and_newer_heads_coalesce(app, client, keys, receiver):
    secret = _register(client, keys["write"], receiver.url)
    receiver.hold = threading.Event()
    start = utcnow()
    with app.app_context():
        _store_updates(1)
        _queue(start)

        def first_delivery():
            with app.app_context():
                _deliver(start)

        sending = threading.Thread(target=first_delivery)
        sending.start()
        assert receiver.arrived.wait(10)
        _store_updates(2, first=4800)  # a newer head while the first event is in flight
        assert _queue(start) == 1
        assert _queue(start) == 0  # the same head again changes nothing
        report = _deliver(start + timedelta(seconds=1))  # another deliverer: the consumer is leased
        assert (report.delivered, report.failed) == (0, 0)
        receiver.hold.set()
        sending.join(10)
        db.session.expire_all()
        row = db.session.get(ConsumerWebhook, key_id_of(keys["write"]))
        assert (row.notified_head, row.pending_head) == (1, 3)  # the newer head waits, due now
        assert _deliver(start + timedelta(seconds=2)).delivered == 1
    assert [p["data"]["head"] for p in receiver.verified(secret)] == [1, 3]
    assert len({headers["webhook-id"] for headers, _ in receiver.requests}) == 2
    assert receiver.most_in_flight == 1


def test_pending_event_takes_the_newer_head_while_retrying(app, client, keys, receiver):
    secret = _register(client, keys["write"], receiver.url)
    receiver.statuses = [500]
    start = utcnow()
    with app.app_context():
        _store_updates(1)
        _queue(start)
        _deliver(start)
        _store_updates(2, first=4800)
        assert _queue(start + timedelta(seconds=5)) == 1
        assert _deliver(start + timedelta(seconds=5)).failed == 0  # still backing off: no new event
        assert _deliver(start + timedelta(minutes=2)).delivered == 1
    assert [p["data"] for p in receiver.verified(secret)] == [{"head": 1, "waiting": 1}, {"head": 3, "waiting": 3}]


def test_a_fixed_url_is_tried_at_once_and_a_consumer_up_to_date_by_polling_is_not_told(app, client, keys, receiver):
    _register(client, keys["write"], receiver.url + "?broken")
    receiver.statuses = [500]
    start = utcnow()
    with app.app_context():
        _store_updates(1)
        _queue(start)
        assert _deliver(start).failed == 1
    assert client.put(WEBHOOK, json={"url": receiver.url}, headers=bearer(keys["write"])).status_code == 200
    with app.app_context():
        assert _deliver(utcnow()).delivered == 1  # not after the broken URL's backoff
        _store_updates(2, first=4800)
        key_id = key_id_of(keys["write"])
        db.session.add_all(UpdateAck(key_id=key_id, update_id=n) for n in (1, 2, 3))  # pulled and acknowledged
        db.session.commit()
        assert _queue(utcnow()) == 0
        assert db.session.get(ConsumerWebhook, key_id, populate_existing=True).notified_head == 3
    assert [headers for headers, _ in receiver.requests][-1]["webhook-id"] == receiver.requests[0][0]["webhook-id"]
    assert len(receiver.requests) == 2


def test_only_the_latest_attempts_are_kept(app, client, keys, receiver, monkeypatch):
    from sync.store import notifications

    monkeypatch.setattr(notifications, "KEEP_ATTEMPTS", 3)
    _register(client, keys["write"], receiver.url)
    with app.app_context():
        for n in range(5):
            _store_updates(1, first=4700 + n)
            _queue(utcnow())
            assert _deliver(utcnow()).delivered == 1
        assert [a.head for a in db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))] == [3, 4, 5]


def test_a_scheduled_tick_from_the_command_line_tells_the_consumer(app, client, keys, warehouse, receiver):
    secret = _register(client, keys["write"], receiver.url)
    warehouse.create_order("4711", LINES)
    result = app.test_cli_runner().invoke(args=["sync", "schedule", "--interval", "1", "--max-runs", "1"])
    assert result.exit_code == 0, result.output
    for thread in threading.enumerate():
        if thread.name == "consumer-webhooks":
            thread.join(15)
    [payload] = receiver.verified(secret)
    assert payload["data"]["head"] >= 1


def test_secret_is_shown_once_and_rotating_gives_a_new_one(app, client, keys, receiver):
    secret = _register(client, keys["write"], receiver.url)
    again = client.put(WEBHOOK, json={"url": receiver.url + "?v=2"}, headers=bearer(keys["write"]))
    assert again.status_code == 200 and "secret" not in again.get_json()
    assert again.get_json()["url"].endswith("?v=2")
    assert "secret" not in client.get(WEBHOOK, headers=bearer(keys["write"])).get_json()
    rotated = client.post(WEBHOOK + "/rotate-secret", headers=bearer(keys["write"])).get_json()["secret"]
    assert rotated.startswith("whsec_") and rotated != secret
    with app.app_context():
        _store_updates(1)
        _queue(utcnow())
        _deliver(utcnow())
    assert len(receiver.verified(rotated)) == 1
    with pytest.raises(WebhookVerificationError):
        receiver.verified(secret)


@pytest.mark.parametrize(
    "url",
    ["ftp://shop.example.com/hook", "http://shop.example.com/hook", "not a url", "https://", "https://shop.example.com:port/", ""],
)
def test_a_bad_url_is_refused_naming_the_field(client, keys, url):
    answer = client.put(WEBHOOK, json={"url": url}, headers=bearer(keys["write"]))
    assert answer.status_code == 422
    assert answer.mimetype == "application/problem+json"
    assert answer.get_json()["field"] == "url"


def test_missing_url_and_http_without_the_setting_are_refused(store_db, gescom_db, client, keys):
    assert client.put(WEBHOOK, json={}, headers=bearer(keys["write"])).get_json()["field"] == "url"
    strict = make_test_app(store_db, gescom_db).test_client()
    answer = strict.put(WEBHOOK, json={"url": "http://127.0.0.1:8080/hook"}, headers=bearer(keys["write"]))
    assert answer.status_code == 422 and "CONSUMER_WEBHOOK_ALLOW_HTTP" in answer.get_json()["detail"]
    assert strict.put(WEBHOOK, json={"url": "https://shop.example.com/hook"}, headers=bearer(keys["write"])).status_code == 201


def test_a_read_key_cannot_register_nor_see_an_endpoint(client, keys, receiver):
    assert client.put(WEBHOOK, json={"url": receiver.url}, headers=bearer(keys["read"])).status_code == 403
    assert client.get(WEBHOOK, headers=bearer(keys["read"])).status_code == 403
    assert client.get(WEBHOOK, headers=bearer(keys["write"])).get_json()["code"] == "webhook_not_registered"


def test_a_removed_endpoint_or_a_revoked_key_gets_nothing(app, client, keys, receiver):
    _register(client, keys["write"], receiver.url)
    _register(client, keys["admin"], receiver.url + "?admin")
    assert client.delete(WEBHOOK, headers=bearer(keys["write"])).status_code == 204
    assert client.delete(WEBHOOK, headers=bearer(keys["write"])).status_code == 404
    with app.app_context():
        revoke_key(db.session, "test-admin")
        db.session.commit()
        _store_updates(1)
        assert _queue(utcnow()) == 0
        assert _deliver(utcnow()).delivered == 0
    assert receiver.requests == []


def test_admin_page_lists_endpoints_and_attempts(app, client, keys, receiver):
    _register(client, keys["write"], receiver.url)
    receiver.statuses = [500]
    with app.app_context():
        _store_updates(1)
        _queue(utcnow())
        _deliver(utcnow())
    assert login(client, keys["admin"]).status_code == 303
    page = client.get("/admin/webhooks").get_data(as_text=True)
    assert "Webhooks vers le module" in page
    assert receiver.url in page and "test-write" in page
    assert "HTTP 500" in page and "échec" in page
    assert client.get("/admin/webhooks?lang=en").status_code == 200


def test_the_signature_is_what_the_documented_php_check_computes(app, client, keys, receiver):
    """docs/api.md's PHP check, step by step: HMAC-SHA256 of "{id}.{timestamp}.{body}" keyed with the base64-decoded
    secret after whsec_, base64, compared with a v1 candidate; the timestamp is the attempt's (within 5 minutes)."""
    secret = _register(client, keys["write"], receiver.url)
    with app.app_context():
        _store_updates(1)
        _queue(utcnow())
        _deliver(utcnow())
    headers, body = receiver.requests[0]
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 300
    key = base64.b64decode(secret[len("whsec_") :], validate=True)
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    candidates = [candidate.split(",", 1) for candidate in headers["webhook-signature"].split(" ")]
    assert any(version == "v1" and hmac.compare_digest(expected, value) for version, value in candidates)
    assert json.loads(body)["type"] == "updates.available"


def test_migration_0010_adds_the_webhook_tables_and_its_downgrade_drops_them(app, store_db):
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import inspect, text

    with app.app_context():
        db.metadata.drop_all(db.engine)
        upgrade(revision="0009")
        assert "consumer_webhooks" not in inspect(db.engine).get_table_names()
        with db.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO api_keys (name, key_hash, prefix, scope, created_at) VALUES ('module', 'h', 'sgps_x', 'write', '2026-01-01')")
            )
        upgrade()
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO consumer_webhooks (key_id, url, secret, created_at, updated_at) VALUES (1, 'https://x.test', 'whsec_eA==', :t, :t)"
                ),
                {"t": datetime(2026, 1, 1)},
            )
            assert conn.execute(text("SELECT notified_head, attempts FROM consumer_webhooks")).one() == (0, 0)
        downgrade(revision="0009")
        tables = inspect(db.engine).get_table_names()
        assert "consumer_webhooks" not in tables and "webhook_deliveries" not in tables and "api_keys" in tables
        upgrade()
