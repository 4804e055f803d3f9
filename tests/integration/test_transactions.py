"""The caller owns the transaction: what commits together, what is written apart, on the selected backend."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from api import resources
from models import ApiKey, IdempotencyKey, OrderEvent, Setting, ShopOrder, SyncLock, SyncRun, WebhookEvent, db
from sync.core.memory import tracking_numbers
from sync.services.runs import LOCK_NAME, execute_run, start_run
from sync.services.unit_of_work import UnitOfWork
from sync.store.keys import verify_key
from sync.store.locks import acquire_lock, extend_lock, release_lock
from sync.store.memory import load_memory
from tests.conftest import bearer
from tests.integration.test_api import _header_value, send_webhook, shop, webhooks  # noqa: F401 - fixtures

NUMBER = "6A12345678901"
STATE_CHANGED = {"type": "order.status_changed", "data": {"order_key": "4712", "state_id": 4, "previous_state_id": 2}}


def _count(app, query) -> int:
    with app.app_context():
        try:
            return db.session.scalar(select(func.count()).select_from(query.subquery()))
        finally:
            db.session.remove()


def _events(app, order_key: str, kind: str) -> int:
    return _count(app, select(OrderEvent).where(OrderEvent.order_key == order_key, OrderEvent.kind == kind))


# --- the tracking write-back and its idempotency record --------------------------------------------------------


def test_the_write_back_and_its_idempotency_record_are_committed_together(app, client, keys, shop, monkeypatch):  # noqa: F811
    write = {**bearer(keys["write"]), "Idempotency-Key": "parcel-1"}
    client.patch("/api/v1/settings", json={"tracking": {"import_from_shop": True}}, headers={**bearer(keys["admin"]), "If-Match": "*"})

    def refused(*args, **kwargs):
        raise OperationalError("INSERT INTO idempotency_keys", {}, Exception("disk I/O error"))

    monkeypatch.setattr(resources, "finish", refused)
    failed = client.put("/api/v1/orders/4711/tracking", json={"tracking_number": NUMBER}, headers=write)
    assert failed.status_code == 500
    bl = shop.documents("4711")[-1][1]
    assert _header_value(app, 3, bl) == NUMBER  # GesCom's write commits in its own guarded transaction, as before
    # ... but nothing of it stands in the store: neither the event, nor the memory, nor the answer to repeat.
    assert _events(app, "4711", "tracking_from_shop") == 0 and _count(app, select(IdempotencyKey)) == 0
    with app.app_context():
        order = db.session.scalar(select(ShopOrder).where(ShopOrder.order_key == "4711"))
        assert NUMBER not in tracking_numbers(load_memory(order).documents)
        db.session.remove()
    monkeypatch.undo()
    again = client.put("/api/v1/orders/4711/tracking", json={"tracking_number": NUMBER}, headers=write)
    assert again.status_code == 200 and again.json["changed"] is False  # GesCom has it: remembered now, with its answer
    assert _events(app, "4711", "tracking_from_shop") == 1 and _count(app, select(IdempotencyKey)) == 1
    assert client.put("/api/v1/orders/4711/tracking", json={"tracking_number": NUMBER}, headers=write).json == again.json


# --- a webhook handled twice at once --------------------------------------------------------------------------------


def test_a_webhook_repeated_concurrently_stores_its_event_once(app, client, keys, shop, webhooks, monkeypatch):  # noqa: F811
    """The race, played in turn: the repeat looked for the webhook-id before the first copy recorded it."""
    monkeypatch.setattr(resources, "webhook_seen", lambda session, webhook_id: None)
    first = send_webhook(client, keys["write"], STATE_CHANGED, message_id="m-twice")
    second = send_webhook(client, keys["write"], STATE_CHANGED, message_id="m-twice")
    assert first.status_code == 200 and first.json["status"] == "recorded"
    assert second.status_code == 200 and (second.json["status"], second.json["webhook_id"]) == ("duplicate", "m-twice")
    assert _events(app, "4712", "shop_state_changed") == 1 and _count(app, select(WebhookEvent)) == 1


def test_a_webhook_sent_twice_at_the_same_moment_stores_its_event_once(app, keys, shop, webhooks, monkeypatch):  # noqa: F811
    """The race itself, in two threads: both copies look for the webhook-id before either records anything."""
    barrier, real, waited = threading.Barrier(2, timeout=20), resources.webhook_seen, threading.local()

    def seen_then_wait(session, webhook_id):
        found = real(session, webhook_id)
        if not getattr(waited, "once", False):  # the first look of each copy; the loser looks again for its answer
            waited.once = True
            barrier.wait()
        return found

    monkeypatch.setattr(resources, "webhook_seen", seen_then_wait)
    answers: list[dict] = []

    def send() -> None:
        answers.append(send_webhook(app.test_client(), keys["write"], STATE_CHANGED, message_id="m-race").json)

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(answer["status"] for answer in answers) == ["duplicate", "recorded"], answers
    assert _events(app, "4712", "shop_state_changed") == 1 and _count(app, select(WebhookEvent)) == 1


# --- authentication ----------------------------------------------------------------------------------------------


def _statements(engine, into: list[str]):
    def seen(conn, cursor, statement, parameters, context, executemany):
        into.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    return lambda: event.remove(engine, "before_cursor_execute", seen)


def test_checking_a_key_only_reads(app, keys):
    statements: list[str] = []
    with app.app_context():
        stop = _statements(db.engine, statements)
        try:
            assert verify_key(db.session, keys["read"]) is not None
            assert not db.session.dirty and not db.session.new
        finally:
            stop()
            db.session.remove()
    assert statements and all(statement.lstrip().upper().startswith("SELECT") for statement in statements)


def test_a_keys_use_is_recorded_apart_from_the_request_at_most_once_a_minute(app, client, keys, shop):  # noqa: F811
    statements: list[str] = []
    with app.app_context():
        stop = _statements(db.engine, statements)
    try:
        # The request's own work is refused (422) and rolled back; the key's use is recorded all the same.
        refused = client.patch("/api/v1/settings", json={"tracking": {"header_field": "NOPE"}}, headers={**bearer(keys["admin"]), "If-Match": "*"})
        assert refused.status_code == 422
        assert client.get("/api/v1/updates", headers=bearer(keys["admin"])).status_code == 200
    finally:
        stop()
    used = [s for s in statements if s.lstrip().upper().startswith("UPDATE API_KEYS SET LAST_USED_AT")]
    assert len(used) == 1, statements  # (the feed also records what it served this consumer: another column)
    assert _count(app, select(ApiKey).where(ApiKey.name == "test-admin", ApiKey.last_used_at.is_not(None))) == 1
    assert _count(app, select(Setting)) == 0


def test_a_key_whose_use_cannot_be_recorded_still_works(app, client, keys, caplog):
    def read_only(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE API_KEYS"):
            raise OperationalError(statement, parameters, Exception("attempt to write a readonly database"))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", read_only)
    try:
        with caplog.at_level(logging.WARNING, logger="sync.store.keys"):
            assert client.get("/api/v1/updates", headers=bearer(keys["read"])).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", read_only)
    assert any("last used is not recorded" in message and "readonly" in message for message in caplog.messages)
    assert keys["read"] not in caplog.text


# --- locks: short sessions of their own --------------------------------------------------------------------------


def test_a_lease_never_commits_the_callers_work(sync):
    for take in (
        lambda: acquire_lock(sync.session, "other", "me", timedelta(minutes=1)),
        lambda: extend_lock(sync.session, "other", "me", timedelta(minutes=1)),
        lambda: release_lock(sync.session, "other", "me"),
    ):
        sync.session.add(Setting(id=1, document={}, version=1))  # the caller's work, not committed
        take()
        sync.session.rollback()
        assert sync.session.scalar(select(func.count()).select_from(Setting)) == 0
    assert sync.session.scalar(select(SyncLock.holder).where(SyncLock.name == "other")) is None


def test_a_run_whose_store_session_breaks_still_gives_the_lock_back(sync, warehouse, monkeypatch):
    warehouse.create_order("4711", [("MUG", "Mug", 1)])
    uow = UnitOfWork(sync.session)
    run, holder = start_run(uow, config=sync.config)

    def broken():
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(sync.session, "commit", broken)  # every later commit of the run's session fails
    with pytest.raises(OperationalError):
        execute_run(uow, sync.gescom, run, holder, config=sync.config)
    monkeypatch.undo()
    assert sync.session.scalar(select(SyncLock.holder).where(SyncLock.name == LOCK_NAME)) is None
    assert sync.run().run.status == "succeeded"  # the next run starts at once, and closes the broken one
    runs = list(sync.session.scalars(select(SyncRun).order_by(SyncRun.id)))
    assert [r.status for r in runs] == ["failed", "succeeded"]  # the broken run is closed with its reason
    assert runs[0].error.startswith("the run could not record its end: ") and "disk I/O error" in runs[0].error
