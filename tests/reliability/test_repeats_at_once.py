"""Repeats at once, through a real server on loopback: one request sent many times concurrently.

Promises (docs/reliability.md): the same Idempotency-Key and body get the same answer again, or 409
request_in_progress while the first is still being worked on, and nothing is done twice (GesCom written once, one
timeline event); one webhook-id delivered many times is recorded once, the others answer `duplicate`, and what
it changed is stored once. On SQLite the writes serialise: waiting for the store must never become a 500.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select
from werkzeug.serving import WSGIRequestHandler, make_server

from models import OrderEvent, db
from sync.store.webhooks import sign
from tests.conftest import bearer
from tests.integration.test_api import SECRET, shop  # noqa: F401 - the fixture: 4711 partly delivered, 4712 ordered, one run done

NUMBER = "6A12345678901"
AT_ONCE_PUT = 50
AT_ONCE_WEBHOOK = 20


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args) -> None:
        pass  # 50 access lines per test say nothing the assertions don't


@pytest.fixture
def server(app):
    """The app behind werkzeug's threaded server on a free loopback port: one thread per request, as in production."""
    served = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=served.serve_forever, daemon=True)
    thread.start()
    yield served.server_port
    served.shutdown()
    thread.join(10)


def send(port: int, method: str, path: str, body: bytes, headers: dict) -> tuple[int, dict, dict]:
    """One request on a connection of its own: (status, JSON body, headers)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else {}, {name.lower(): value for name, value in response.getheaders()}
    finally:
        conn.close()


def at_once(count: int, request) -> list[tuple[int, dict, dict]]:
    """`request()` from `count` threads released together by a barrier; every answer, or the first failure."""
    barrier = threading.Barrier(count)
    answers: list = []
    failures: list[BaseException] = []

    def one():
        try:
            barrier.wait(30)
            answers.append(request())
        except BaseException as error:  # surfaced below
            failures.append(error)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert not failures, failures
    assert len(answers) == count
    return answers


def stored_events(app, order_key: str, kind: str) -> list[dict]:
    with app.app_context():
        rows = db.session.scalars(select(OrderEvent).where(OrderEvent.order_key == order_key, OrderEvent.kind == kind).order_by(OrderEvent.id))
        found = [row.data for row in rows]
        db.session.remove()
    return found


def outcome(answers, app, order_key: str, kind: str) -> dict:
    """What happened, counted: answers by status and outcome (or problem code), timeline events stored."""
    counted = Counter(f"{status} {answer.get('status') if status < 400 else answer.get('code')}" for status, answer, _ in answers)
    return {"answers": dict(counted), "events": len(stored_events(app, order_key, kind))}


def count_gescom_writes(gescom, monkeypatch) -> dict:
    """Wrap the one guarded GesCom write: how often it was tried and how often it wrote."""
    counted = {"tried": 0, "written": 0}
    original = gescom.fill_header_field

    def counting(*args, **kwargs):
        written = original(*args, **kwargs)
        counted["tried"] += 1
        counted["written"] += written
        return written

    monkeypatch.setattr(gescom, "fill_header_field", counting)
    return counted


def test_one_idempotency_key_sent_fifty_times_at_once(app, keys, shop, server, monkeypatch):  # noqa: F811 - the imported fixture
    app.test_client().patch("/api/v1/settings", json={"tracking": {"import_from_shop": True}}, headers={**bearer(keys["admin"]), "If-Match": "*"})
    writes = count_gescom_writes(app.extensions["gescom"], monkeypatch)
    headers = {**bearer(keys["write"]), "Idempotency-Key": "order-4711-parcel-1"}
    body = json.dumps({"tracking_number": NUMBER}).encode()

    answers = at_once(AT_ONCE_PUT, lambda: send(server, "PUT", "/api/v1/orders/4711/tracking", body, headers))

    seen = outcome(answers, app, "4711", "tracking_from_shop") | {"gescom": dict(writes)}
    print(f"\n{AT_ONCE_PUT} PUT at once: {seen}")  # the figures docs/reliability.md quotes (pytest -s)
    done = [(status, answer) for status, answer, _ in answers if status != 409]
    waiting = [(status, answer, head) for status, answer, head in answers if status == 409]
    assert done, "no request did the work"
    assert {json.dumps(a, sort_keys=True) for a in done} == {json.dumps(done[0], sort_keys=True)}, f"answers disagree: {seen}"
    status, answer = done[0]
    assert status == 200 and answer["status"] == "written" and answer["changed"] is True
    for _, problem, head in waiting:
        assert problem["code"] == "request_in_progress" and int(head["retry-after"]) >= 1
    assert writes == {"tried": 1, "written": 1}, seen
    assert [event["tracking_number"] for event in stored_events(app, "4711", "tracking_from_shop")] == [NUMBER], seen

    again = send(server, "PUT", "/api/v1/orders/4711/tracking", body, headers)
    assert (again[0], again[1]) == (status, answer)  # after they finished: the stored answer, nothing done again
    assert writes == {"tried": 1, "written": 1}
    assert len(stored_events(app, "4711", "tracking_from_shop")) == 1


def signed_webhook(key: str, message_id: str, event: dict) -> tuple[bytes, dict]:
    raw = json.dumps(event).encode()
    timestamp = int(time.time())
    signature = sign(SECRET, message_id, timestamp, raw)
    return raw, {**bearer(key), "webhook-id": message_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def test_one_webhook_id_delivered_twenty_times_at_once(app, keys, shop, server):  # noqa: F811 - the imported fixture
    app.config["WEBHOOK_SECRET"] = SECRET
    event = {"type": "order.status_changed", "data": {"order_key": "4712", "state_id": 4, "previous_state_id": 2}}
    raw, headers = signed_webhook(keys["write"], "msg_state", event)

    answers = at_once(AT_ONCE_WEBHOOK, lambda: send(server, "POST", "/api/v1/webhooks/prestashop", raw, headers))

    seen = outcome(answers, app, "4712", "shop_state_changed")
    print(f"\n{AT_ONCE_WEBHOOK} status_changed deliveries at once: {seen}")  # the figures docs/reliability.md quotes (pytest -s)
    assert seen["answers"] == {"200 recorded": 1, "200 duplicate": AT_ONCE_WEBHOOK - 1}, seen
    assert [event["state_id"] for event in stored_events(app, "4712", "shop_state_changed")] == [4], seen
    again = send(server, "POST", "/api/v1/webhooks/prestashop", raw, headers)
    assert again[0] == 200 and again[1]["status"] == "duplicate" and again[1]["first_answer"]["status"] == "recorded"


def test_one_tracking_webhook_delivered_twenty_times_at_once(app, keys, shop, server, monkeypatch):  # noqa: F811 - the imported fixture
    """The webhook that writes GesCom: written once, one timeline event, the other deliveries `duplicate`."""
    app.config["WEBHOOK_SECRET"] = SECRET
    app.test_client().patch("/api/v1/settings", json={"tracking": {"import_from_shop": True}}, headers={**bearer(keys["admin"]), "If-Match": "*"})
    writes = count_gescom_writes(app.extensions["gescom"], monkeypatch)
    event = {"type": "order.tracking_updated", "data": {"id_order": 4711, "tracking_number": NUMBER}}
    raw, headers = signed_webhook(keys["write"], "msg_tracking", event)

    answers = at_once(AT_ONCE_WEBHOOK, lambda: send(server, "POST", "/api/v1/webhooks/prestashop", raw, headers))

    seen = outcome(answers, app, "4711", "tracking_from_shop") | {"gescom": dict(writes)}
    print(f"\n{AT_ONCE_WEBHOOK} tracking_updated deliveries at once: {seen}")  # the figures docs/reliability.md quotes (pytest -s)
    assert seen["answers"] == {"200 written": 1, "200 duplicate": AT_ONCE_WEBHOOK - 1}, seen
    assert writes == {"tried": 1, "written": 1}, seen
    assert [event["tracking_number"] for event in stored_events(app, "4711", "tracking_from_shop")] == [NUMBER], seen


# --- the claim's own rules -----------------------------------------------------------------------------------------


def put_tracking(client, keys, idempotency_key: str, number: str = NUMBER):
    headers = {**bearer(keys["write"]), "Idempotency-Key": idempotency_key}
    return client.put("/api/v1/orders/4711/tracking", json={"tracking_number": number}, headers=headers)


def claim_left(app, keys, idempotency_key: str, age: timedelta, number: str = NUMBER) -> None:
    """A claim in progress, as a request working (or dead) for `age` leaves it."""
    from models import ApiKey, IdempotencyKey, utcnow
    from sync.store.idempotency import IN_PROGRESS, body_hash

    with app.app_context():
        key_id = db.session.scalar(select(ApiKey.id).where(ApiKey.name == "test-write"))
        digest = body_hash(json.dumps({"tracking_number": number}, sort_keys=True).encode())
        endpoint = "PUT /api/v1/orders/4711/tracking"
        row = IdempotencyKey(key=idempotency_key, endpoint=endpoint, api_key_id=key_id, body_hash=digest, status=IN_PROGRESS, response={})
        row.created_at = utcnow() - age
        db.session.add(row)
        db.session.commit()
        db.session.remove()


def claims(app) -> list[tuple[str, int]]:
    from models import IdempotencyKey

    with app.app_context():
        found = [(row.key, row.status) for row in db.session.scalars(select(IdempotencyKey).order_by(IdempotencyKey.id))]
        db.session.remove()
    return found


def test_a_request_in_progress_is_answered_409_and_a_dead_ones_claim_is_taken_over(app, client, keys, shop):  # noqa: F811 - the imported fixture
    from sync.store.idempotency import TAKE_OVER_AFTER

    client.patch("/api/v1/settings", json={"tracking": {"import_from_shop": True}}, headers={**bearer(keys["admin"]), "If-Match": "*"})
    claim_left(app, keys, "working", timedelta(seconds=2))
    busy = put_tracking(client, keys, "working")
    assert busy.status_code == 409 and busy.json["code"] == "request_in_progress" and busy.headers["Retry-After"] == "1"
    other_body = put_tracking(client, keys, "working", "6A00000000000")
    assert other_body.status_code == 422 and other_body.json["code"] == "idempotency_key_reused"  # even while in progress
    claim_left(app, keys, "dead", TAKE_OVER_AFTER + timedelta(seconds=5))
    taken = put_tracking(client, keys, "dead")
    assert taken.status_code == 200 and taken.json["status"] == "written"
    assert put_tracking(client, keys, "dead").json == taken.json
    assert claims(app) == [("working", 0), ("dead", 200)]


def test_a_failure_removes_the_claim_so_a_retry_really_tries_again(app, client, keys, shop, monkeypatch):  # noqa: F811 - the imported fixture
    import api.resources

    client.patch("/api/v1/settings", json={"tracking": {"import_from_shop": True}}, headers={**bearer(keys["admin"]), "If-Match": "*"})
    real = api.resources.write_tracking

    def broken(*args, **kwargs):
        raise RuntimeError("the store went away mid-request")

    monkeypatch.setattr(api.resources, "write_tracking", broken)
    client.application.config["PROPAGATE_EXCEPTIONS"] = False  # answered as in production: a 500 problem
    assert put_tracking(client, keys, "k-1").status_code == 500
    assert claims(app) == []
    monkeypatch.setattr(api.resources, "write_tracking", real)
    retried = put_tracking(client, keys, "k-1")
    assert retried.status_code == 200 and retried.json["status"] == "written"
    assert claims(app) == [("k-1", 200)]
