"""Hostile input: nothing a client sends makes the API fail or reach GesCom unchecked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import MetaData, Table, select

from models import db
from sync.gescom.demo.schema import create_gescom
from sync.gescom.demo.warehouse import Warehouse
from sync.services.run_config import RunConfig
from sync.services.runs import run_sync
from sync.services.unit_of_work import UnitOfWork
from tests.conftest import bearer

HOSTILE_NUMBERS = [
    "6A1'; DROP TABLE F_DOCENTETE; --",
    'quote"inside',
    "日本語の追跡番号",
    "6A1\n6A2",
    "\x00nul",
    "é" * 20,
    "x" * 10_000,
    " ",
    "6A1;6A2",
]


@pytest.fixture
def shop(app, clock):
    engine = app.extensions["gescom"].engine
    create_gescom(engine)
    warehouse = Warehouse(engine, clock)
    piece = warehouse.create_order("4711", [("MUG", "Mug", 1)])
    warehouse.transform((1, piece), 3)
    with app.app_context():
        run_sync(UnitOfWork(db.session), app.extensions["gescom"], config=RunConfig(recheck_age=timedelta(0)))
        db.session.remove()
    return engine


def _coord01_values(engine) -> list:
    table = Table("F_DOCENTETE", MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        return sorted(conn.execute(select(table.c.DO_Coord01)).scalars())


@pytest.mark.parametrize("number", HOSTILE_NUMBERS, ids=range(len(HOSTILE_NUMBERS)))
def test_hostile_tracking_numbers_are_refused_with_the_field_named(client, keys, shop, number):
    client.patch("/api/v1/settings", json={"tracking": {"import_from_shop": True}}, headers={**bearer(keys["admin"]), "If-Match": "*"})
    before = _coord01_values(shop)
    response = client.put("/api/v1/orders/4711/tracking", json={"tracking_number": number}, headers=bearer(keys["write"]))
    assert response.status_code == 422, response.json
    assert response.json["field"] == "tracking_number" and response.mimetype == "application/problem+json"
    assert _coord01_values(shop) == before  # GesCom untouched


@pytest.mark.parametrize(
    "field",
    ["DO_NoWeb]; DELETE FROM F_DOCLIGNE; --", "DO_NoWeb' OR '1'='1", "[DO_NoWeb]", "DO_NoWeb\x00", "cbMarq", "DO_Coord01 ", "Ref Chronopost; --"],
)
def test_field_names_that_try_sql_are_refused(client, keys, shop, field):
    for patch in ({"link_field": field}, {"tracking": {"header_field": field}}, {"tracking": {"line_field": field}}):
        response = client.patch("/api/v1/settings", json=patch, headers={**bearer(keys["admin"]), "If-Match": "*"})
        assert response.status_code == 422, (patch, response.json)
        assert response.json["field"] in ("link_field", "tracking.header_field", "tracking.line_field")


@pytest.mark.parametrize("size", [1024 * 1024 + 1, 5 * 1024 * 1024])
def test_oversized_bodies_are_refused_before_being_read(client, keys, size):
    body = b'{"ids": [' + b"1," * (size // 2) + b"1]}"
    response = client.post("/api/v1/updates/ack", data=body, headers={**bearer(keys["write"]), "Content-Type": "application/json"})
    assert response.status_code == 413 and response.json["code"] == "payload_too_large"


def test_deeply_nested_json_is_a_client_error(client, keys):
    body = "[" * 5000 + "]" * 5000
    response = client.post("/api/v1/updates/ack", data=body, headers={**bearer(keys["write"]), "Content-Type": "application/json"})
    assert 400 <= response.status_code < 500
