"""Against GesCom as a real Sage base is built (Sage reference §8.5): case-insensitive text, computed shadow
columns and only their indexes, Sage-like triggers, locks; and data a real base may hold that breaks an
assumption. One bad order never stops a run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, insert, select, text, update
from sqlalchemy.exc import OperationalError

from models import ShopOrder, SyncRun
from sync.services import runs as runs_module
from sync.services.run_config import RunConfig
from sync.services.runs import run_sync
from sync.services.unit_of_work import UnitOfWork
from sync.services.writeback import DocumentBusy, write_tracking

LINES = [("TSHIRT-M", "T-shirt M", 3), ("MUG", "Mug", 1)]
NUMBER = "6A12345678901"


def keys(sync) -> list[str]:
    sync.session.expire_all()
    return sorted(sync.session.scalars(select(ShopOrder.order_key)))


# --- keys the way SQL Server sees them ----------------------------------------------------------------------


def test_case_variants_of_a_reference_are_one_shop_order(sync, warehouse, clock):
    """French_CI_AS: 'khwtqzxnb' = 'KHWTQZXNB'. A BL whose reference was retyped in lower case is the same order."""
    sync.settings(link_field="DO_Ref")
    bc = warehouse.create_order("4711", LINES, reference="KHWTQZXNB")
    sync.run()
    clock.tick()
    bl = warehouse.transform((1, bc), 3, take={"MUG": 1})
    warehouse.set_header(3, bl, DO_Ref="khwtqzxnb")
    result = sync.run()
    assert result.run.orders_skipped == 0, result.run.warnings
    assert keys(sync) == ["KHWTQZXNB"]
    assert sync.order("KHWTQZXNB").stage == "partially_shipped"
    assert {u["order_key"] for u in sync.updates()} == {"KHWTQZXNB"}


def test_trailing_spaces_and_case_of_a_link_value_are_one_shop_order(sync, warehouse, clock):
    """SQL Server ignores trailing spaces in `=`: '4711 ' and '4711' are one order, shown trimmed."""
    bc = warehouse.create_order("ab4711 ", LINES)
    sync.run()
    clock.tick()
    bl = warehouse.transform((1, bc), 3)
    warehouse.set_header(3, bl, DO_NoWeb="AB4711")
    sync.run()
    assert keys(sync) == ["AB4711"]
    assert sync.order("AB4711").stage == "shipped"


def test_a_lower_case_key_asked_over_the_api_finds_the_order(client, keys, app):
    from sync.gescom.demo.schema import create_gescom
    from sync.gescom.demo.warehouse import Warehouse

    with app.app_context():
        gescom = app.extensions["gescom"]
        create_gescom(gescom.engine)
        Warehouse(gescom.engine).create_order("ab4711", LINES)
        from models import db

        run_sync(UnitOfWork(db.session), gescom, config=RunConfig(recheck_age=timedelta(0)))
    answer = client.get("/api/v1/orders/ab4711", headers={"Authorization": f"Bearer {keys['read']}"})
    assert answer.status_code == 200 and answer.json["order_key"] == "AB4711"


# --- one bad order never stops a run ------------------------------------------------------------------------


def _break(conn, backend: str, how: str, piece: str) -> None:
    """Damage one order's rows the way a real base can be damaged (SQLite keeps any value in any column;
    PostgreSQL needs the NOT NULL dropped first, as a base restored from an odd export may have)."""
    if how == "quantity":
        if backend == "sqlite":
            conn.execute(text('UPDATE "F_DOCLIGNE" SET "DL_Qte" = \'trois\' WHERE "DO_Piece" = :p'), {"p": piece})
        else:
            conn.execute(text('ALTER TABLE "F_DOCLIGNE" ALTER COLUMN "DL_Qte" DROP NOT NULL'))
            conn.execute(text('UPDATE "F_DOCLIGNE" SET "DL_Qte" = NULL WHERE "DO_Piece" = :p'), {"p": piece})
    elif how == "date":
        if backend == "sqlite":
            conn.execute(text('UPDATE "F_DOCENTETE" SET "DO_Date" = \'31/02/2024 oops\' WHERE "DO_Piece" = :p'), {"p": piece})
        else:
            conn.execute(text('ALTER TABLE "F_DOCENTETE" ALTER COLUMN "DO_Date" TYPE varchar(30)'))
            conn.execute(text('UPDATE "F_DOCENTETE" SET "DO_Date" = \'31/02/2024 oops\' WHERE "DO_Piece" = :p'), {"p": piece})
    elif how == "line number":
        if backend == "postgresql":
            conn.execute(text('ALTER TABLE "F_DOCLIGNE" ALTER COLUMN "DL_Ligne" TYPE varchar(12)'))
        conn.execute(text('UPDATE "F_DOCLIGNE" SET "DL_Ligne" = \'premier\' WHERE "DO_Piece" = :p AND "AR_Ref" = \'MUG\''), {"p": piece})


def _repair(conn, backend: str, how: str, piece: str, bc: str) -> None:
    if how == "quantity":
        conn.execute(text('UPDATE "F_DOCLIGNE" SET "DL_Qte" = 1 WHERE "DO_Piece" = :p'), {"p": piece})
    elif how == "date":
        conn.execute(text('UPDATE "F_DOCENTETE" SET "DO_Date" = :d WHERE "DO_Piece" = :p'), {"p": piece, "d": "2026-11-30 00:00:00"})
    elif how == "line number":
        conn.execute(text('UPDATE "F_DOCLIGNE" SET "DL_Ligne" = \'2000\' WHERE "DO_Piece" = :p AND "AR_Ref" = \'MUG\''), {"p": piece})


@pytest.mark.parametrize("how", ["quantity", "date", "line number"])
def test_broken_rows_skip_their_order_only_and_it_is_retried_next_run(sync, warehouse, gescom_db, backend, how):
    good = warehouse.create_order("1", LINES)
    bad = warehouse.create_order("2", LINES)
    also_good = warehouse.create_order("3", LINES)
    with gescom_db.engine.begin() as conn:
        _break(conn, backend, how, bad)
    sync.gescom.refresh()  # a column type may have changed (PostgreSQL damage)
    first = sync.run()
    assert first.run.status == "succeeded"
    assert first.run.orders_skipped == 1 and [entry["order_key"] for entry in first.run.skipped] == ["2"]
    assert first.run.skipped[0]["reason"] and f"1:{bad}" in first.run.skipped[0]["documents"]
    assert "shop order 2 skipped" in first.run.warnings[0]
    assert keys(sync) == ["1", "3"] and good and also_good
    assert first.run.watermark_header_marq and first.run.watermark_modified  # the window still advances

    again = sync.run()  # still broken: still skipped, still carried
    assert [entry["order_key"] for entry in again.run.skipped] == ["2"]

    with gescom_db.engine.begin() as conn:
        _repair(conn, backend, how, bad, bad)
    repaired = sync.run()  # nothing new in GesCom's cbMarq ranges: the skipped list alone brings it back
    assert repaired.run.orders_skipped == 0 and repaired.run.skipped == []
    assert keys(sync) == ["1", "2", "3"] and sync.order("2").stage == "ordered"


def test_a_header_without_link_value_or_number_is_ignored(sync, warehouse, gescom_db, backend):
    warehouse.create_order("1", LINES)
    with gescom_db.engine.begin() as conn:
        if backend == "postgresql":
            conn.execute(text('ALTER TABLE "F_DOCENTETE" ALTER COLUMN "DO_NoWeb" DROP NOT NULL'))
            conn.execute(text('ALTER TABLE "F_DOCLIGNE" ALTER COLUMN "DL_PieceBC" DROP NOT NULL'))
            link, origin = None, None
        else:
            link, origin = "", ""
        conn.execute(insert(warehouse.h).values(DO_Domaine=0, DO_Type=3, DO_Piece="BLX0001", DO_NoWeb=link))
        conn.execute(insert(warehouse.l).values(DO_Domaine=0, DO_Type=3, DO_Piece="BLX0001", DL_PieceBC=origin, AR_Ref="MUG", DL_Qte=1, DL_No=900))
    result = sync.run()
    assert result.run.status == "succeeded" and result.run.orders_skipped == 0
    assert keys(sync) == ["1"]


def test_an_order_whose_rules_fail_is_skipped_and_the_others_followed(sync, warehouse, monkeypatch):
    warehouse.create_order("1", LINES)
    warehouse.create_order("2", LINES)
    real = runs_module.follow

    def follow(chain, memory, settings):
        if any(doc.piece == "BC00002" for doc in chain.documents):
            raise ArithmeticError("a value that breaks an assumption")
        return real(chain, memory, settings)

    monkeypatch.setattr(runs_module, "follow", follow)
    result = sync.run()
    assert result.run.skipped == [{"order_key": "2", "reason": "ArithmeticError: a value that breaks an assumption", "documents": ["1:BC00002"]}]
    assert keys(sync) == ["1"] and [u["order_key"] for u in sync.updates()] == ["1"]
    monkeypatch.setattr(runs_module, "follow", real)
    sync.run()
    assert keys(sync) == ["1", "2"]


def test_an_order_held_by_a_sage_transaction_is_skipped_this_run_and_read_next_run(sync, warehouse, gescom_db, clock):
    """A chain read that hits the lock timeout (SQL Server 1222) fails for that order only."""
    sync.run()
    warehouse.create_order("1", LINES)
    held = warehouse.create_order("2", LINES)
    warehouse.create_order("3", LINES)

    def lock_timeout(conn, cursor, statement, parameters, context, executemany):
        values = parameters.values() if isinstance(parameters, dict) else parameters or ()
        blob = held.encode()
        chain_read = context.execution_options.get("gescom_read") == "chain"  # discovery never waits (NOLOCK)
        if chain_read and any(v in (held, blob) for v in values):
            raise OperationalError(statement, parameters, Exception("Lock request time out period exceeded. (1222)"))

    event.listen(gescom_db.engine, "before_cursor_execute", lock_timeout)
    try:
        result = sync.run()
    finally:
        event.remove(gescom_db.engine, "before_cursor_execute", lock_timeout)
    assert result.run.status == "succeeded"
    [skipped] = result.run.skipped
    assert skipped["order_key"] == "2" and "held by a Sage transaction" in skipped["reason"]
    assert keys(sync) == ["1", "3"]
    assert sync.run().run.skipped == [] and keys(sync) == ["1", "2", "3"]


def test_every_order_failing_alike_fails_the_run(sync, warehouse, gescom_db):
    """Not a bad record: something is wrong with GesCom itself, and the run says so."""
    sync.run()
    for key in ("1", "2", "3"):
        warehouse.create_order(key, LINES)

    def broken(conn, cursor, statement, parameters, context, executemany):
        if "cbDL_PieceBC" in statement:
            raise OperationalError(statement, parameters, Exception("permission denied on F_DOCLIGNE"))

    event.listen(gescom_db.engine, "before_cursor_execute", broken)
    try:
        result = run_sync(UnitOfWork(sync.session), sync.gescom, config=sync.config)
    finally:
        event.remove(gescom_db.engine, "before_cursor_execute", broken)
    assert result.run.status == "failed" and "permission denied" in result.run.error


# --- detection: cbMarq every run, the cbModification window at its interval -------------------------------


def _statements(engine):
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    return seen, lambda: event.remove(engine, "before_cursor_execute", record)


def _scans(statements: list[str]) -> list[str]:
    return [s for s in statements if '"cbModification" >=' in s or "cbModification >=" in s]


def test_the_safety_net_scan_runs_only_at_its_interval(sync, warehouse, gescom_db, clock):
    # No re-read of open orders here: what changes existing rows is then seen by the safety net alone.
    config = RunConfig(recheck_limit=0, full_scan_interval=timedelta(hours=1))
    bc = warehouse.create_order("4711", LINES)
    clock.tick()
    bl = warehouse.transform((1, bc), 3)
    first = run_sync(UnitOfWork(sync.session), sync.gescom, config=config).run
    assert first.modified_scan and first.window_from is not None  # the first run looks back

    warehouse.set_header(3, bl, DO_Coord01=NUMBER)  # typed later: an existing row changes, no new cbMarq
    statements, stop = _statements(gescom_db.engine)
    try:
        quiet = run_sync(UnitOfWork(sync.session), sync.gescom, config=config).run
    finally:
        stop()
    assert not quiet.modified_scan and quiet.window_from is None and _scans(statements) == []
    assert quiet.updates_created == 0 and quiet.watermark_modified == first.watermark_modified

    # An hour (of GesCom's clock) after the last scan, the next run scans and finds the number.
    sync.session.execute(update(SyncRun).where(SyncRun.id == quiet.id).values(watermark_modified=quiet.watermark_modified - timedelta(hours=2)))
    sync.session.commit()
    statements, stop = _statements(gescom_db.engine)
    try:
        due = run_sync(UnitOfWork(sync.session), sync.gescom, config=config).run
    finally:
        stop()
    assert due.modified_scan and len(_scans(statements)) == 2  # headers and lines
    assert [u["tracking_numbers"] for u in sync.updates("4711")][-1] == [NUMBER]

    never = RunConfig(recheck_limit=0, full_scan_interval=None)
    sync.session.execute(update(SyncRun).where(SyncRun.id == due.id).values(watermark_modified=due.watermark_modified - timedelta(days=30)))
    sync.session.commit()
    assert not run_sync(UnitOfWork(sync.session), sync.gescom, config=never).run.modified_scan


def test_an_index_on_cbmodification_makes_the_window_cheap_every_run(sync, warehouse, gescom_db):
    sync.run()
    with gescom_db.engine.begin() as conn:
        conn.execute(text('CREATE INDEX "IX_DBA_DOCENTETE_MODIF" ON "F_DOCENTETE" ("cbModification")'))
        conn.execute(text('CREATE INDEX "IX_DBA_DOCLIGNE_MODIF" ON "F_DOCLIGNE" ("cbModification")'))
    sync.gescom.refresh()  # read at start-up
    assert sync.gescom.catalog.modification_indexed
    assert sync.run().run.modified_scan and sync.run().run.modified_scan


def test_changes_to_existing_rows_reach_the_feed_through_the_re_read_of_open_orders(sync, warehouse, clock):
    bc = warehouse.create_order("4711", LINES)
    clock.tick()
    bl = warehouse.transform((1, bc), 3)
    sync.run()
    warehouse.set_header(3, bl, DO_Coord01=NUMBER)  # no new row: the order is open, so it is re-read
    run = sync.run().run
    assert not run.modified_scan
    assert sync.updates("4711")[-1]["tracking_numbers"] == [NUMBER]


# --- the write-back proves itself by a re-read -----------------------------------------------------------


def _trigger(conn, backend: str, kind: str) -> None:
    """Triggers that make the driver's rowcount lie, or that refuse a record locked in Sage (80003)."""
    if backend == "sqlite":
        body = {
            # The row is updated (changes() = 1), then put back: nothing written.
            "reverts": 'AFTER UPDATE OF "DO_Coord01" ON "F_DOCENTETE" FOR EACH ROW WHEN NEW."DO_Coord01" <> \'\' '
            'BEGIN UPDATE "F_DOCENTETE" SET "DO_Coord01" = \'\' WHERE "cbMarq" = NEW."cbMarq"; END',
            # The trigger writes the row itself and abandons the statement's own change: changes() = 0, written.
            "hides": 'BEFORE UPDATE OF "DO_Coord01" ON "F_DOCENTETE" FOR EACH ROW WHEN NEW."DO_Coord01" <> \'\' AND OLD."DO_Coord01" = \'\' '
            'BEGIN UPDATE "F_DOCENTETE" SET "DO_Coord01" = NEW."DO_Coord01" WHERE "cbMarq" = NEW."cbMarq"; SELECT RAISE(IGNORE); END',
            "locks": 'BEFORE UPDATE OF "DO_Coord01" ON "F_DOCENTETE" FOR EACH ROW '
            "BEGIN SELECT RAISE(ABORT, 'Enregistrement verrouillé par un autre utilisateur (80003)'); END",
        }[kind]
        conn.execute(text(f'CREATE TRIGGER "TG_TEST_{kind}" {body}'))
        return
    body = {
        "reverts": 'NEW."DO_Coord01" := OLD."DO_Coord01"; RETURN NEW;',
        "hides": 'IF pg_trigger_depth() = 1 THEN UPDATE "F_DOCENTETE" SET "DO_Coord01" = NEW."DO_Coord01" WHERE "cbMarq" = NEW."cbMarq"; '
        "RETURN NULL; END IF; RETURN NEW;",
        "locks": "RAISE EXCEPTION 'Enregistrement verrouillé par un autre utilisateur (80003)';",
    }[kind]
    conn.execute(text(f"CREATE FUNCTION tg_test_{kind}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} END $$"))
    conn.execute(
        text(f'CREATE TRIGGER "TG_TEST_{kind}" BEFORE UPDATE OF "DO_Coord01" ON "F_DOCENTETE" FOR EACH ROW EXECUTE FUNCTION tg_test_{kind}()')
    )


def _coord01(warehouse, piece: str) -> str:
    with warehouse.engine.connect() as conn:
        return conn.execute(select(warehouse.h.c.DO_Coord01).where(warehouse.h.c.DO_Type == 3, warehouse.h.c.DO_Piece == piece)).scalar_one().rstrip()


def _shipped(sync, warehouse, clock) -> str:
    sync.settings(tracking__import_from_shop=True)
    bc = warehouse.create_order("4711", LINES)
    clock.tick()
    bl = warehouse.transform((1, bc), 3)
    sync.run()
    return bl


def test_a_write_the_triggers_undo_is_not_taken_for_written(sync, warehouse, clock, gescom_db, backend):
    bl = _shipped(sync, warehouse, clock)
    with gescom_db.engine.begin() as conn:
        _trigger(conn, backend, "reverts")
    with pytest.raises(DocumentBusy):
        write_tracking(sync.session, sync.gescom, "4711", NUMBER)
    assert _coord01(warehouse, bl) == ""
    assert NUMBER not in (sync.order("4711").snapshot.get("tracking_numbers") or [])


def test_a_write_whose_rowcount_says_nothing_happened_is_taken_for_written(sync, warehouse, clock, gescom_db, backend):
    bl = _shipped(sync, warehouse, clock)
    with gescom_db.engine.begin() as conn:
        _trigger(conn, backend, "hides")
    result = write_tracking(sync.session, sync.gescom, "4711", NUMBER)
    assert result.changed and result.document == {"type": 3, "piece": bl}
    assert _coord01(warehouse, bl) == NUMBER


def test_sage_refusing_a_locked_record_is_document_busy_409(app, client, keys, gescom_db, backend):
    from models import db
    from sync.gescom.demo.schema import create_gescom
    from sync.gescom.demo.warehouse import Warehouse
    from sync.store.settings import save_settings

    with app.app_context():
        gescom = app.extensions["gescom"]
        create_gescom(gescom.engine)
        warehouse = Warehouse(gescom.engine)
        bc = warehouse.create_order("4711", LINES)
        warehouse.transform((1, bc), 3)
        save_settings(db.session, {"tracking": {"import_from_shop": True}}, gescom.schema())
        db.session.commit()
        run_sync(UnitOfWork(db.session), gescom, config=RunConfig(recheck_age=timedelta(0)))
    with gescom_db.engine.begin() as conn:
        _trigger(conn, backend, "locks")
    answer = client.put("/api/v1/orders/4711/tracking", json={"tracking_number": NUMBER}, headers={"Authorization": f"Bearer {keys['write']}"})
    assert answer.status_code == 409 and answer.json["code"] == "document_busy", answer.json


# --- down-payment invoices ---------------------------------------------------------------------------------


def test_a_down_payment_invoice_does_not_ship_an_order(sync, warehouse, gescom_db, clock):
    sync.settings(options__send_piece_number=True)
    warehouse.create_order("4711", LINES)
    sync.run()
    clock.tick()
    with gescom_db.engine.begin() as conn:  # a payment recorded against the order: a facture d'acompte
        conn.execute(insert(warehouse.h).values(DO_Domaine=0, DO_Type=6, DO_Piece="FA00099", DO_NoWeb="4711", DO_Provenance=4, DO_Date=clock.now))
        conn.execute(
            insert(warehouse.l).values(
                DO_Domaine=0, DO_Type=6, DO_Piece="FA00099", AR_Ref="ACOMPTE", DL_Design="Acompte commande web", DL_Qte=1, DL_No=990
            )
        )
    updates = sync.new_updates()
    assert sync.order("4711").stage == "ordered"
    assert all(u["stage"] == "ordered" and u["piece"] != "FA00099" for u in updates)
