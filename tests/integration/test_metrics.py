"""GET /metrics: Prometheus' text format, read from the store, behind an API key; its figures move after a run."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from models import Update, db
from sync.gescom.demo.schema import create_gescom
from sync.gescom.demo.warehouse import Warehouse
from sync.services.run_config import RunConfig
from sync.services.runs import run_sync
from sync.services.unit_of_work import UnitOfWork
from tests.conftest import bearer


def scrape(client, key) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one scrape."""
    response = client.get("/metrics", headers=bearer(key))
    assert response.status_code == 200, response.data
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        assert family.name.startswith("gescom_sync_") and family.documentation, family.name
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def run_once(app) -> None:
    with app.app_context():
        run = run_sync(UnitOfWork(db.session), app.extensions["gescom"], config=RunConfig(recheck_age=timedelta(0))).run
        assert run.status == "succeeded", run.error
        db.session.remove()


def two_orders_and_a_run(app, warehouse, clock) -> None:
    clock.tick(-10)
    first = warehouse.create_order("4711", [("TSHIRT-M", "T-shirt M", 3), ("MUG", "Mug", 1)])
    warehouse.create_order("4712", [("MUG", "Mug", 2)])
    clock.tick(10)
    warehouse.transform((1, first), 3, take={"MUG": 1})
    run_once(app)


@pytest.fixture
def warehouse(app, clock):
    engine = app.extensions["gescom"].engine
    create_gescom(engine)
    return Warehouse(engine, clock)


def test_metrics_move_after_a_run(app, client, keys, warehouse, clock):
    before = scrape(client, keys["read"])
    assert before["gescom_sync_runs_total", (("status", "succeeded"),)] == 0
    assert before["gescom_sync_updates", ()] == 0
    assert ("gescom_sync_last_run_duration_seconds", ()) not in before  # no run yet: no last run
    assert not any(name.startswith("gescom_sync_push_") for name, _ in before)  # pull mode: no push figures

    two_orders_and_a_run(app, warehouse, clock)

    after = scrape(client, keys["read"])
    assert after["gescom_sync_runs_total", (("status", "succeeded"),)] == 1
    assert after["gescom_sync_runs_total", (("status", "failed"),)] == 0
    assert after["gescom_sync_runs_running", ()] == 0
    assert after["gescom_sync_last_run_status", (("status", "succeeded"),)] == 1
    assert after["gescom_sync_last_run_status", (("status", "failed"),)] == 0
    assert after["gescom_sync_last_run_duration_seconds", ()] >= 0
    assert after["gescom_sync_last_success_timestamp_seconds", ()] == after["gescom_sync_last_run_finished_timestamp_seconds", ()] > 0
    assert after["gescom_sync_run_orders_checked_total", ()] >= 2
    created = after["gescom_sync_run_updates_created_total", ()]
    assert created > 0 and after["gescom_sync_updates", ()] == created == after["gescom_sync_updates_unacknowledged", ()]
    assert after["gescom_sync_shop_orders", (("state", "open"),)] == 2
    assert after["gescom_sync_updates_oldest_unacknowledged_age_seconds", ()] >= 0

    served = client.get("/api/v1/updates", headers=bearer(keys["write"])).json  # a consumer acknowledges what it was served
    ack = client.post("/api/v1/updates/ack", json={"up_to": served["updates"][-1]["id"]}, headers=bearer(keys["write"]))
    assert ack.status_code == 200, ack.json
    acked = scrape(client, keys["read"])
    assert acked["gescom_sync_updates_unacknowledged", ()] == 0 and acked["gescom_sync_updates_oldest_unacknowledged_age_seconds", ()] == 0
    # Per consumer: the write key acknowledged everything; another key that may write (admin) still waits for all.
    lag = {labels[0][1]: value for (name, labels), value in acked.items() if name == "gescom_sync_consumer_updates_waiting"}
    assert sorted(lag.values()) == [0, created] and len(lag) == 2


def test_push_figures_in_push_mode(app, client, keys, warehouse, clock):
    two_orders_and_a_run(app, warehouse, clock)
    with app.app_context():
        rows = db.session.query(Update).order_by(Update.id).all()
        assert len(rows) >= 2
        rows[0].push_status, rows[0].push_attempts = "failed", 2
        rows[1].push_status, rows[1].push_attempts = "pushed", 1
        for row in rows[2:]:
            row.push_attempts = 1  # tried, waiting for another try
        db.session.commit()
    from app import configure_shop

    app.config.update(PRESTASHOP_URL="http://127.0.0.1:9/", PRESTASHOP_API_KEY="K" * 32)
    configure_shop(app)  # push mode: a shop is configured (never called by a scrape)
    samples = scrape(client, keys["read"])
    assert samples["gescom_sync_push_updates", (("status", "pushed"),)] == 1
    assert samples["gescom_sync_push_updates", (("status", "failed"),)] == 1
    assert samples["gescom_sync_push_updates", (("status", "pending"),)] == len(rows) - 2
    assert samples["gescom_sync_push_updates_retried", (("status", "failed"),)] == 1
    assert samples["gescom_sync_push_updates_retried", (("status", "pending"),)] == len(rows) - 2
    assert samples["gescom_sync_push_updates_retried", (("status", "pushed"),)] == 0
    assert samples["gescom_sync_push_oldest_pending_age_seconds", ()] >= 0


def test_metrics_need_a_key_of_any_scope(client, keys):
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401 and anonymous.json["code"] == "unauthorized"
    assert client.get("/metrics", headers=bearer("sgps_not-a-real-key")).status_code == 401
    for scope in ("read", "write", "admin"):
        assert client.get("/metrics", headers=bearer(keys[scope])).status_code == 200
    assert client.post("/metrics", headers=bearer(keys["admin"])).status_code == 405


def test_openmetrics_when_the_scraper_asks(client, keys):
    response = client.get("/metrics", headers={**bearer(keys["read"]), "Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert response.get_data(as_text=True).rstrip().endswith("# EOF")


def test_metrics_stay_out_of_the_openapi_document(client):
    assert "/metrics" not in client.get("/openapi.json").json["paths"]


def test_a_runs_log_lines_carry_its_run_id(app, warehouse, monkeypatch):
    """LOG_FORMAT=json: whatever a run logs, in its thread, says which run it was (and nothing after it ends)."""
    from api.observability import JsonFormatter
    from sync.services import runs

    lines = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(json.loads(JsonFormatter().format(record)))

    original = runs._discover

    def discover(*args, **kwargs):
        runs.log.warning("discovering")
        return original(*args, **kwargs)

    monkeypatch.setattr(runs, "_discover", discover)
    handler, level = Keep(), runs.log.level
    runs.log.addHandler(handler)
    runs.log.setLevel(logging.INFO)  # whatever level the tests' root logger has
    try:
        with app.app_context():
            run_id = run_sync(UnitOfWork(db.session), app.extensions["gescom"], config=RunConfig()).run.id
        runs.log.warning("after the run")
    finally:
        runs.log.removeHandler(handler)
        runs.log.setLevel(level)
    assert [line.get("run_id") for line in lines if line["message"] == "discovering"] == [run_id]
    assert [line.get("run_id") for line in lines if line["message"] == "after the run"] == [None]
