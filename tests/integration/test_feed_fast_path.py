"""The pull feed's hot path: pages serialised straight from rows give what FeedPageSchema gave, byte for byte,
and the API key check cached per worker still refuses a revoked key within API_KEY_CACHE_SECONDS."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import event, insert, null, select, update

from api.schemas import FeedPageSchema, UpdateSchema, dump_feed_page
from models import ApiKey, Update, UpdateAck, db
from sync.core.stages import ShopUpdate
from sync.store.feed import FEED_COLUMNS, CursorBeyondHead, acknowledge, add_update, update_rows_after, updates_after
from sync.store.keys import KeyCache, KeyGrant, create_key, revoke_key
from tests.conftest import bearer

LINES = [("TSHIRT-M", "T-shirt M", 3), ("MUG", "Tasse café « été »", 1)]


def _odd_rows(session) -> None:
    """Rows the runs do not write today but the JSON columns can hold (older versions, hand edits): every branch."""
    at = datetime(2026, 11, 8, 14, 3, 12)  # no microseconds: isoformat() drops them
    odd_deliveries = [
        {"piece": "BL1", "extra": "dropped", "lines": [{"sku": "A", "quantity": 2}, {"sku": 7, "name": None, "quantity": "1.5", "x": 1}]},
        {"date": None, "carrier": "Colissimo", "tracking_numbers": ["6A1", 42, None], "lines": None},
        {},
        None,
        "not-a-delivery",
    ]
    shapes = [
        ShopUpdate(None, None, None, None, None, None, []),
        ShopUpdate("shipped", 4, ["6A99", 1234], "BL00042", date(2026, 1, 31), odd_deliveries, ["tracking", "deliveries"]),
        ShopUpdate("invoiced", 5, [], "FA1", None, [], ["piece"]),
    ]
    for number, shape in enumerate(shapes):
        add_update(session, f"odd-{number}", None if number == 0 else 9_000_000_000 + number, shape, run_id=None, created_at=at)
    # SQL NULL in the JSON columns (not JSON null), as a hand-written row would have them.
    session.execute(
        insert(Update).values(
            order_key="odd-null", changes=["state"], tracking_numbers=null(), deliveries=null(), created_at=at + timedelta(seconds=1)
        )
    )
    session.flush()


@pytest.fixture
def stored(sync, warehouse, clock):
    """Updates of every kind the store holds: from runs (stages, tracking, pieces, deliveries, dates), odd rows, some acknowledged."""
    sync.settings(stage_states__partially_shipped=3, options__send_piece_number=True, options__send_delivery_details=True)
    bc = warehouse.create_order("4711", LINES, reference="KHWTQZXNB")
    warehouse.create_order("4712", [("MUG", "Mug", 2)], reference="OTHERREFX")
    warehouse.create_order("4713", [("VIS", "Vis 0,5 kg", 1.5)])
    sync.run()
    clock.tick()
    bl1 = warehouse.transform((1, bc), 3, take={"TSHIRT-M": 2, "MUG": 1}, header={"DO_Coord01": "6A11111111111"})
    sync.run()
    clock.tick()
    bl2 = warehouse.transform((1, bc), 3, header={"DO_Coord01": "6A22222222222"})
    sync.run()
    clock.tick()
    warehouse.transform([(3, bl1), (3, bl2)], 6)
    sync.run()
    _odd_rows(sync.session)
    sync.session.commit()
    ids = list(sync.session.scalars(select(Update.id).order_by(Update.id)))
    acknowledge(sync.session, ids=ids[1::3])
    sync.session.commit()
    assert sync.session.scalar(select(Update.id).where(Update.deliveries.is_not(None), Update.order_key == "4711").limit(1))
    return ids


@pytest.fixture
def consumer(sync, stored) -> int:
    """A key that may write, served everything, that acknowledged other updates than the global ones."""
    key, _ = create_key(sync.session, "consumer", "write")
    key.served_up_to = stored[-1]
    sync.session.flush()
    acknowledge(sync.session, ids=stored[2::4], consumer=key.id)
    sync.session.commit()
    return key.id


def _schema_page(session, after, limit, include_acked, consumer=None) -> dict:
    """The feed's answer as it was built before the fast path: ORM rows through FeedPageSchema (a consumer's own
    acknowledgement times put in)."""
    page = updates_after(session, after, limit, include_acked, consumer=consumer)
    updates = page.updates
    if consumer is not None:
        mine = dict(session.execute(select(UpdateAck.update_id, UpdateAck.acked_at).where(UpdateAck.key_id == consumer)).all())
        updates = [SimpleNamespace(**{**{name: getattr(u, name) for name in FEED_COLUMNS}, "acked_at": mine.get(u.id)}) for u in updates]
    return FeedPageSchema().dump({"updates": updates, "next": page.next, "has_more": page.has_more, "head": page.head})


def _fast_page(session, after, limit, include_acked, consumer=None) -> dict:
    page = update_rows_after(session, after, limit, include_acked, consumer)
    return dump_feed_page(page.rows, page.next, page.has_more, page.head)


def test_the_feed_columns_are_the_schemas_fields_in_order():
    assert tuple(UpdateSchema().fields) == FEED_COLUMNS


@pytest.mark.parametrize("mine", [False, True])
@pytest.mark.parametrize("include_acked", [False, True])
@pytest.mark.parametrize("limit", [1, 3, 500])
def test_every_page_is_what_the_schema_gives(app, sync, stored, consumer, include_acked, limit, mine):
    who = consumer if mine else None
    with app.app_context():
        after, pages = 0, 0
        while True:
            expected, fast = _schema_page(sync.session, after, limit, include_acked, who), _fast_page(sync.session, after, limit, include_acked, who)
            assert fast == expected
            assert app.json.dumps(fast) == app.json.dumps(expected)  # types too: 2 and 2.0 are equal, not the same JSON
            assert [list(u) for u in fast["updates"]] == [list(u) for u in expected["updates"]]  # and the fields' order
            pages += 1
            if not expected["has_more"]:
                break
            after = expected["next"]
        assert pages >= (len(stored) // limit if include_acked else 1)
        at_the_head = stored[-1]
        assert _fast_page(sync.session, at_the_head, limit, include_acked, who) == _schema_page(sync.session, at_the_head, limit, include_acked, who)
        for page in (_fast_page, _schema_page):
            with pytest.raises(CursorBeyondHead):
                page(sync.session, stored[-1] + 10, limit, include_acked, who)


def test_the_answer_is_byte_identical_to_the_schemas(app, client, keys, sync, stored):
    for query, (after, limit, acked) in {
        "?limit=500&include_acked=true": (0, 500, True),
        "": (0, 100, False),
        f"?after={stored[2]}&limit=4": (stored[2], 4, False),
        f"?after={stored[-1]}&limit=500": (stored[-1], 500, False),
    }.items():
        answer = client.get("/api/v1/updates" + query, headers=bearer(keys["read"]))
        with app.app_context():
            expected = app.json.response(_schema_page(sync.session, after, limit, acked))
        assert answer.status_code == 200
        assert answer.get_data() == expected.get_data(), query
        assert answer.headers["Content-Type"] == expected.headers["Content-Type"] == "application/json"
    # A consumer's page: its own acknowledgements, and its acknowledgement times.
    write = bearer(keys["write"])
    served = client.get("/api/v1/updates?limit=500", headers=write).json["updates"]
    assert client.post("/api/v1/updates/ack", json={"ids": [u["id"] for u in served[::2]]}, headers=write).status_code == 200
    with app.app_context():
        key_id = db.session.scalar(select(ApiKey.id).where(ApiKey.name == "test-write"))
    for query, (after, limit, acked) in {"?limit=500&include_acked=true": (0, 500, True), "?limit=7": (0, 7, False)}.items():
        answer = client.get("/api/v1/updates" + query, headers=write)
        with app.app_context():
            expected = app.json.response(_schema_page(sync.session, after, limit, acked, key_id))
        assert answer.get_data() == expected.get_data(), query


def test_the_quantities_are_plain_numbers_and_the_deliveries_filtered(app, sync, stored):
    """2, not 2.0, for a whole quantity (as the order view and docs/api.md write it); 1.5 stays 1.5."""
    with app.app_context():
        updates = _fast_page(sync.session, 0, 500, True)["updates"]
    odd = next(u for u in updates if u["order_key"] == "odd-1")
    assert odd["deliveries"][0] == {"piece": "BL1", "lines": [{"sku": "A", "quantity": 2}, {"sku": "7", "name": None, "quantity": 1.5}]}
    assert odd["deliveries"][2:] == [{}, None, {}] and odd["tracking_numbers"] == ["6A99", "1234"]
    text = json.dumps(odd, separators=(",", ":"))
    assert '"quantity":2}' in text and '"quantity":2.0' not in text and '"quantity":1.5}' in text


def test_the_feed_stays_documented_by_its_schema(client):
    spec = client.get("/openapi.json").json
    get = spec["paths"]["/api/v1/updates"]["get"]
    assert get["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/FeedPage"}
    assert [p["name"] for p in get["parameters"]] == ["after", "limit", "include_acked", "shop"]
    assert list(spec["components"]["schemas"]["Update"]["properties"]) == list(FEED_COLUMNS)


# --- the key check, cached per worker ------------------------------------------------------------------------------


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def key_clock(app) -> FakeClock:
    clock = FakeClock()
    app.extensions["api_key_cache"].clock = clock
    return clock


def _revoke_elsewhere(app, name: str) -> None:
    """Revoke as another process would (`flask apikey revoke` beside gunicorn): straight in the store, no cache told."""
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(update(ApiKey).where(ApiKey.name == name).values(revoked_at=datetime(2026, 1, 1)))


def test_a_key_revoked_elsewhere_is_refused_within_the_cache_seconds(app, client, keys, key_clock):
    assert app.extensions["api_key_cache"].seconds == 10  # API_KEY_CACHE_SECONDS's default
    assert client.get("/api/v1/updates", headers=bearer(keys["read"])).status_code == 200
    _revoke_elsewhere(app, "test-read")
    key_clock.now += 9.9
    assert client.get("/api/v1/updates", headers=bearer(keys["read"])).status_code == 200  # still in this worker's cache
    key_clock.now += 0.1
    refused = client.get("/api/v1/updates", headers=bearer(keys["read"]))
    assert refused.status_code == 401 and refused.json["code"] == "invalid_api_key"


def test_a_key_revoked_in_this_process_is_refused_at_once(app, client, keys, key_clock):
    assert client.get("/api/v1/updates", headers=bearer(keys["read"])).status_code == 200
    with app.app_context():
        revoke_key(db.session, "test-read")
        db.session.commit()
    assert client.get("/api/v1/updates", headers=bearer(keys["read"])).status_code == 401


@pytest.mark.parametrize("setting, seconds", [("0", 0), ("2.5", 2.5), ("", 10)])
def test_api_key_cache_seconds_from_the_environment(app, keys, monkeypatch, setting, seconds):
    from app import create_app

    monkeypatch.setenv("API_KEY_CACHE_SECONDS", setting)
    config = {
        name: app.config[name] for name in ("TESTING", "SQLALCHEMY_DATABASE_URI", "SQLALCHEMY_ENGINE_OPTIONS", "GESCOM_DATABASE_URL", "SECRET_KEY")
    }
    other = create_app(config)
    assert other.extensions["api_key_cache"].seconds == seconds
    other_client = other.test_client()
    assert other_client.get("/api/v1/updates", headers=bearer(keys["read"])).status_code == 200
    _revoke_elsewhere(other, "test-read")
    assert other_client.get("/api/v1/updates", headers=bearer(keys["read"])).status_code == (401 if seconds == 0 else 200)


@pytest.mark.parametrize("setting", ["-1", "nan", "inf", "ten"])
def test_a_wrong_api_key_cache_seconds_stops_the_start(app, monkeypatch, setting):
    from app import create_app

    monkeypatch.setenv("API_KEY_CACHE_SECONDS", setting)
    with pytest.raises(RuntimeError, match="API_KEY_CACHE_SECONDS"):
        create_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"], "GESCOM_DATABASE_URL": app.config["GESCOM_DATABASE_URL"]})


def test_scopes_are_checked_on_a_cached_key_as_on_a_fresh_one(client, keys, key_clock):
    read, write = bearer(keys["read"]), bearer(keys["write"])
    for _ in range(2):  # the first check reads the store, the second the cache
        assert client.get("/api/v1/updates", headers=read).status_code == 200
        refused = client.post("/api/v1/updates/ack", json={"up_to": 1}, headers=read)
        assert refused.status_code == 403 and refused.json["code"] == "insufficient_scope"
        refused = client.post("/api/v1/updates/ack", json={"up_to": 1}, headers=write)  # the scope passes; nothing was served
        assert refused.status_code == 422 and refused.json["code"] == "ack_beyond_served"


def test_a_cached_keys_use_is_still_recorded_once_a_minute(app, client, keys, key_clock):
    writes: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE API_KEYS"):
            writes.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for step in range(5):
            key_clock.now += 6  # past the cache's 10 s every other request: reloaded from the store, still no write
            assert client.get("/api/v1/updates", headers=bearer(keys["read"])).status_code == 200, step
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(writes) == 1
    with app.app_context():
        assert db.session.scalar(select(ApiKey.last_used_at).where(ApiKey.name == "test-read")) is not None


def test_the_cache_is_bounded_and_forgets_expired_keys():
    clock = FakeClock()
    cache = KeyCache(seconds=10, size=2, clock=clock)
    grant = KeyGrant(1, "read", "sgps_abcd", None)
    for number in range(3):
        cache.put(f"hash-{number}", grant, clock())
    assert cache.get("hash-0") is None and cache.get("hash-1") == grant and cache.get("hash-2") == grant
    clock.now += 10
    assert cache.get("hash-1") is None
    KeyCache(seconds=0).put("hash-0", grant, clock())  # off: nothing is kept
