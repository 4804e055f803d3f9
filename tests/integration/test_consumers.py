"""Consumers of the pull feed: each key that may write acknowledges for itself, only what it was served; a cursor
beyond the head is refused; the global acknowledgements of before 0009 become each consumer's (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import inspect, select, text

from models import ApiKey, Update, UpdateAck, db
from sync.core.stages import ShopUpdate
from sync.store.feed import add_update
from sync.store.keys import create_key
from tests.conftest import bearer
from tests.integration.test_admin import login

FEED = "/api/v1/updates"
ACK = "/api/v1/updates/ack"


@pytest.fixture
def updates(app) -> list[int]:
    """Six updates in the store, none acknowledged."""
    with app.app_context():
        rows = [
            add_update(
                db.session,
                str(4700 + n),
                4700 + n,
                ShopUpdate("shipped", 4, [], None, None, None, ["state"]),
                run_id=None,
                created_at=datetime(2026, 1, 1),
            )
            for n in range(6)
        ]
        db.session.commit()
        return [row.id for row in rows]


@pytest.fixture
def consumers(app, keys) -> dict[str, str]:
    """Two consumers (a module and a staging module, both of scope write) and a reader."""
    with app.app_context():
        staging = create_key(db.session, "staging", "write")[1]
        db.session.commit()
    return {"module": bearer(keys["write"]), "staging": bearer(staging), "read": bearer(keys["read"])}


def _ids(client, headers, query: str = "limit=500") -> list[int]:
    answer = client.get(f"{FEED}?{query}", headers=headers)
    assert answer.status_code == 200, answer.json
    return [u["id"] for u in answer.json["updates"]]


def test_two_consumers_acknowledge_independently(client, consumers, updates):
    module, staging, read = consumers["module"], consumers["staging"], consumers["read"]
    assert _ids(client, module) == _ids(client, staging) == updates
    assert client.post(ACK, json={"up_to": updates[3]}, headers=module).json == {"acknowledged": 4, "already_acknowledged": 0, "unknown": []}
    assert _ids(client, module) == updates[4:]
    assert _ids(client, staging) == updates  # the module's acknowledgements are not the staging module's
    assert client.post(ACK, json={"ids": [updates[0], updates[5]]}, headers=staging).json == {
        "acknowledged": 2,
        "already_acknowledged": 0,
        "unknown": [],
    }
    assert _ids(client, staging) == updates[1:5]
    assert _ids(client, module) == updates[4:]
    assert _ids(client, read) == [updates[4]]
    again = client.post(ACK, json={"ids": [updates[0], updates[4]]}, headers=module).json
    assert again == {"acknowledged": 1, "already_acknowledged": 1, "unknown": []}
    # include_acked shows this consumer's own acknowledgements, with their times.
    shown = client.get(f"{FEED}?limit=500&include_acked=true", headers=staging).json["updates"]
    assert [u["id"] for u in shown if u["acked_at"]] == [updates[0], updates[5]]
    # A read key is no consumer: it sees what no consumer acknowledged.
    assert _ids(client, read) == []
    refused = client.post(ACK, json={"up_to": updates[0]}, headers=read)
    assert refused.status_code == 403


def test_acknowledging_beyond_what_was_served_is_refused(app, client, consumers, updates):
    module = consumers["module"]
    never = client.post(ACK, json={"up_to": 2147483647}, headers=module)
    assert never.status_code == 422 and never.json["code"] == "ack_beyond_served"
    assert never.json["field"] == "up_to" and never.json["served_up_to"] == 0
    assert never.headers["Content-Type"] == "application/problem+json"
    assert _ids(client, module, "limit=2") == updates[:2]
    beyond = client.post(ACK, json={"up_to": updates[2]}, headers=module)
    assert beyond.status_code == 422 and beyond.json["served_up_to"] == updates[1] and str(updates[1]) in beyond.json["detail"]
    ids = client.post(ACK, json={"ids": [updates[0], updates[4]]}, headers=module)
    assert ids.status_code == 422 and ids.json["code"] == "ack_beyond_served" and ids.json["field"] == "ids"
    assert ids.json["served_up_to"] == updates[1]
    assert _ids(client, module) == updates  # refused means nothing acknowledged, not even the served id sent along
    assert client.post(ACK, json={"up_to": updates[-1]}, headers=module).json["acknowledged"] == len(updates)
    with app.app_context():
        assert db.session.scalar(select(ApiKey.served_up_to).where(ApiKey.name == "test-read")) == 0  # a reader is never served
        assert db.session.scalar(select(ApiKey.served_up_to).where(ApiKey.name == "test-write")) == updates[-1]


def test_a_cursor_beyond_the_head_is_refused_with_the_head(client, consumers, updates):
    for who in ("module", "read"):
        page = client.get(f"{FEED}?after={updates[-1]}", headers=consumers[who])
        assert page.status_code == 200 and page.json == {"updates": [], "next": updates[-1], "has_more": False, "head": updates[-1]}
        beyond = client.get(f"{FEED}?after={updates[-1] + 1}", headers=consumers[who])
        assert beyond.status_code == 409 and beyond.json["code"] == "cursor_beyond_head" and beyond.json["head"] == updates[-1]
        assert beyond.headers["Content-Type"] == "application/problem+json"


def test_an_empty_store_has_head_zero(client, consumers):
    assert client.get(FEED, headers=consumers["module"]).json == {"updates": [], "next": 0, "has_more": False, "head": 0}
    assert client.get(f"{FEED}?after=5", headers=consumers["module"]).json["head"] == 0


def test_the_dashboard_shows_each_consumers_waiting_updates(app, client, keys, consumers, updates):
    _ids(client, consumers["module"])
    client.post(ACK, json={"up_to": updates[3]}, headers=consumers["module"])
    from sync.services.dashboard import overview

    with app.app_context():
        lags = {lag.name: lag.waiting for lag in overview(db.session).consumers}
    assert lags == {"test-write": 2, "test-admin": 6, "staging": 6}  # admin keys may write: they consume too
    login(client, keys["admin"])
    page = client.get("/admin/")
    assert page.status_code == 200 and "staging" in page.text and page.text.count('class="consumer"') == 3


def test_migration_0009_makes_global_acknowledgements_each_consumers(app, store_db):
    """Updates acknowledged before 0009 are acknowledged by every active key that may write after it, which counts as
    served up to the head; the downgrade keeps `updates.acked_at`."""
    from flask_migrate import downgrade, upgrade

    with app.app_context():
        db.metadata.drop_all(db.engine)
        upgrade(revision="0008")
        with db.engine.begin() as conn:
            for name, scope, revoked in (
                ("module", "write", None),
                ("boss", "admin", None),
                ("reader", "read", None),
                ("old", "write", "2026-01-01"),
            ):
                conn.execute(
                    text(
                        "INSERT INTO api_keys (name, key_hash, prefix, scope, created_at, revoked_at) VALUES (:n, :h, 'sgps_x', :s, '2026-01-01', :r)"
                    ),
                    {"n": name, "h": name * 8, "s": scope, "r": revoked},
                )
            for n in range(4):
                conn.execute(
                    text("INSERT INTO updates (order_key, changes, created_at, acked_at) VALUES (:k, '[]', '2026-01-01', :a)"),
                    {"k": str(4711 + n), "a": "2026-01-02 10:00:00" if n < 2 else None},
                )
        upgrade()
        with db.engine.connect() as conn:
            keys = dict(conn.execute(text("SELECT name, id FROM api_keys")).all())
            acks = sorted(conn.execute(text("SELECT key_id, update_id, acked_at FROM update_acks")).all())
            assert [(key_id, update_id) for key_id, update_id, _ in acks] == sorted(
                (keys[name], update_id) for name in ("module", "boss") for update_id in (1, 2)
            )
            assert {str(at)[:19] for _, _, at in acks} == {"2026-01-02 10:00:00"}
            served = dict(conn.execute(text("SELECT name, served_up_to FROM api_keys")).all())
            assert served == {"module": 4, "boss": 4, "reader": 0, "old": 0}
        assert db.session.scalar(select(UpdateAck).where(UpdateAck.key_id == keys["module"], UpdateAck.update_id == 3)) is None
        assert db.session.scalar(select(Update.acked_at).where(Update.id == 1)) is not None  # "by at least one consumer" stays
        db.session.rollback()
        downgrade(revision="0008")
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM updates WHERE acked_at IS NOT NULL")).scalar() == 2
        assert "update_acks" not in inspect(db.engine).get_table_names()
        assert "served_up_to" not in {column["name"] for column in inspect(db.engine).get_columns("api_keys")}
        upgrade()
