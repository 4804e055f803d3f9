"""A shop order a run cannot read, next to one it can, on the selected backend: the run says which and why in the
API, on the admin run page and in `flask sync run`, and each says whether the run read the cbModification window
(the safety-net scan). The reading itself is tested in tests/integration/test_runs.py."""

from __future__ import annotations

from html import unescape
from urllib.parse import quote

import pytest
from sqlalchemy import text

from models import db
from sync.gescom.demo.schema import create_gescom
from sync.gescom.demo.warehouse import Warehouse
from sync.services.run_config import RunConfig
from sync.services.runs import run_sync
from sync.services.unit_of_work import UnitOfWork
from tests.conftest import bearer
from tests.integration.test_admin import login

LINES = [("TSHIRT-M", "T-shirt M", 3), ("MUG", "Mug", 1)]
BROKEN = '<B>&"7'  # a link value as Sage may hold one: the page must show it escaped
SKIPPED_TITLE = "skipped shop orders (the next run retries them):"


@pytest.fixture
def broken(app, clock, backend) -> str:
    """Web order 1, readable, and web order BROKEN, whose documents cannot be read; the latter's BC piece."""
    engine = app.extensions["gescom"].engine
    create_gescom(engine)
    warehouse = Warehouse(engine, clock)
    warehouse.create_order("1", LINES)
    piece = warehouse.create_order(BROKEN, LINES)
    with engine.begin() as conn:
        if backend == "sqlite":  # SQLite keeps whatever text it is given, as a damaged base might
            conn.execute(text("UPDATE F_DOCENTETE SET DO_Date = '31/02/2024 oops' WHERE DO_Piece = :p"), {"p": piece})
        else:
            conn.execute(text('ALTER TABLE "F_DOCLIGNE" ALTER COLUMN "DL_Qte" DROP NOT NULL'))
            conn.execute(text('UPDATE "F_DOCLIGNE" SET "DL_Qte" = NULL WHERE "DO_Piece" = :p'), {"p": piece})
    return piece


def _run(app) -> int:
    with app.app_context():
        run = run_sync(UnitOfWork(db.session), app.extensions["gescom"], config=RunConfig.from_mapping(app.config)).run
        assert run.status == "succeeded", run.error
        run_id = run.id
        db.session.remove()
    return run_id


def test_the_api_lists_the_skipped_order_and_says_whether_the_scan_ran(app, client, keys, broken):
    read = bearer(keys["read"])
    first = client.get(f"/api/v1/sync/runs/{_run(app)}", headers=read).json
    assert first["orders_checked"] == 2 and first["orders_skipped"] == 1 and first["updates_created"] == 1
    [skipped] = first["skipped"]
    assert set(skipped) == {"order_key", "reason", "documents"}
    assert skipped["order_key"] == BROKEN and skipped["reason"] and f"1:{broken}" in skipped["documents"]
    assert f"shop order {BROKEN} skipped: {skipped['reason']}" in first["warnings"]
    assert first["modified_scan"] is True and first["window_from"]  # the first run reads the window

    # The next run, well within SYNC_FULL_SCAN_INTERVAL: no scan, and the order is retried (still unreadable).
    second = client.get(f"/api/v1/sync/runs/{_run(app)}", headers=read).json
    assert [entry["order_key"] for entry in second["skipped"]] == [BROKEN] and second["updates_created"] == 0
    assert second["modified_scan"] is False and second["window_from"] is None
    listed = client.get("/api/v1/sync/runs?limit=2", headers=read).json["runs"]
    assert [(run["modified_scan"], run["skipped"][0]["order_key"]) for run in listed] == [(False, BROKEN), (True, BROKEN)]


def test_the_openapi_document_describes_skipped_orders(client):
    schemas = client.get("/openapi.json").json["components"]["schemas"]
    run = schemas["Run"]["properties"]
    assert run["skipped"]["type"] == "array" and run["skipped"]["items"]["$ref"] == "#/components/schemas/SkippedOrder"
    skipped = schemas["SkippedOrder"]["properties"]
    assert set(skipped) == {"order_key", "reason", "documents"} and skipped["documents"]["items"] == {"type": "string"}
    assert run["modified_scan"]["type"] == "boolean" and "null" in run["window_from"]["type"]  # OpenAPI 3.1


def test_the_run_page_lists_the_skipped_order_escaped_and_linked(app, client, keys, broken):
    first = _run(app)
    login(client, keys["admin"])
    page = client.get(f"/admin/runs/{first}").text
    assert "Commandes de la boutique ignorées" in unescape(page) and "relues à la prochaine synchronisation" in unescape(page)
    assert f'<a href="/admin/orders?q={quote(BROKEN)}">&lt;B&gt;&amp;&#34;7</a>' in page
    assert "<B>" not in page  # escaped everywhere, in the warnings too
    assert f"<code>1:{broken}</code>" in page
    assert "Balayage de sécurité (cbModification)" in unescape(page) and 'oui <span class="help-inline">modifications lues depuis le' in unescape(
        page
    )

    second = _run(app)
    page = client.get(f"/admin/runs/{second}?lang=en").text
    assert "Skipped shop orders" in page and "The next run reads them again." in page
    assert "Safety-net scan (cbModification)" in page and 'no <span class="help-inline">only new documents and open orders were read' in page
    runs = client.get("/admin/runs").text
    assert f'href="/admin/runs/{first}#skipped"' in runs and f'href="/admin/runs/{second}#skipped"' in runs
    assert runs.count(">safety-net scan</span>") == 1  # the first run only


def test_sync_run_prints_the_skipped_order_and_whether_the_scan_ran(runner, broken):
    first = runner.invoke(args=["sync", "run"])
    assert first.exit_code == 0, first.output
    lines = first.output.splitlines()
    assert [line.split()[-1] for line in lines if "shop orders skipped" in line] == ["1"]  # the table, as before
    assert lines[lines.index(SKIPPED_TITLE) + 1].startswith(f"  {BROKEN}: ")
    assert "safety-net scan (cbModification): yes, changes read from " in first.output

    second = runner.invoke(args=["sync", "run"])
    assert second.exit_code == 0, second.output
    assert lines[lines.index(SKIPPED_TITLE) + 1] in second.output.splitlines()  # retried, same reason
    assert "safety-net scan (cbModification): no, only new documents and open orders were read" in second.output
