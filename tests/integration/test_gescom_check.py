"""`flask gescom check` on Sage-shaped bases: the demo's, and the ones a customer's DBA or a Sage upgrade leave."""

from __future__ import annotations

import pytest
from sqlalchemy import LargeBinary, create_engine, text

from sync.gescom.adapter import GesCom
from sync.gescom.demo.schema import HEADER_FREE_FIELDS, create_gescom


@pytest.fixture
def gescom(app):
    """The app's adapter, on a freshly created demo-shaped base."""
    adapter = app.extensions["gescom"]
    create_gescom(adapter.engine)
    adapter.refresh()
    return adapter


def check(runner, code: int) -> str:
    """The command's output, its wrapped lines and aligned columns flattened to single spaces."""
    result = runner.invoke(args=["gescom", "check"])
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return " ".join(result.output.split())


def execute(gescom: GesCom, *statements: str) -> None:
    with gescom.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    gescom.refresh()


def test_the_demo_base_has_everything_the_sync_relies_on(gescom, runner):
    output = check(runner, 0)
    for shadow in gescom.catalog.shadows.values():
        assert f"{shadow.column} = {shadow.definition}: look-ups by {shadow.source} seek its index" in output
    assert "IDO_TPIECE (DO_Domaine, DO_Type, cbDO_Piece)" in output
    assert "IDL_PIECECOM (cbDL_PieceBC)" in output
    assert "all present: IDO_TPIECE" in output
    assert "link_field F_DOCENTETE.DO_NoWeb found" in output
    assert "every run, by cbMarq ranges" in output
    assert "a safety net, at most every SYNC_FULL_SCAN_INTERVAL=3600 seconds" in output
    assert "(SQL Server only)" in output
    assert "WARN" not in output and "FAIL" not in output
    assert "0 failed, 0 warnings" in output and output.endswith("the sync can run.")


def test_the_rights_are_asked_of_the_database_where_it_has_any(gescom, runner, backend):
    output = check(runner, 0)
    if backend == "postgresql":
        assert "ok SELECT on F_DOCLIGNE granted" in output
        assert "ok UPDATE on F_DOCENTETE granted" in output
    else:
        assert "n/a SELECT on F_DOCENTETE (file database" in output


def test_a_plain_shadow_column_is_a_warning_that_names_the_fallback(gescom, runner):
    binary = LargeBinary().compile(dialect=gescom.engine.dialect)
    execute(
        gescom,
        'DROP INDEX "IDL_PIECECOM"',
        'ALTER TABLE "F_DOCLIGNE" DROP COLUMN "cbDL_PieceBC"',
        f'ALTER TABLE "F_DOCLIGNE" ADD COLUMN "cbDL_PieceBC" {binary}',
        'CREATE INDEX "IDL_PIECECOM" ON "F_DOCLIGNE" ("cbDL_PieceBC")',
    )
    output = check(runner, 0)
    assert "WARN F_DOCLIGNE.DL_PieceBC" in output
    assert "cbDL_PieceBC is not a computed column: look-ups use DL_PieceBC (a table scan)" in output
    assert "(some through text columns: see Shadow columns)" in output
    assert "0 failed, 1 warning," in output


def test_a_dropped_index_is_a_warning(gescom, runner):
    execute(gescom, 'DROP INDEX "IDL_PIECECOM"')
    output = check(runner, 0)
    assert "WARN missing" in output and "no index led by F_DOCLIGNE (cbDL_PieceBC)" in output


def test_a_base_without_f_docligne_fails_with_a_clear_line(gescom, runner):
    execute(gescom, 'DROP TABLE "F_DOCLIGNE"')
    output = check(runner, 1)
    assert "FAIL F_DOCLIGNE" in output
    assert "not found (or this login may not see it): is GESCOM_DATABASE_URL the Sage company database?" in output
    assert "not run: fix the failures above first" in output
    assert "Error: 1 check(s) failed" in output
    assert "Traceback" not in output


def test_a_link_field_gone_from_the_base_fails(gescom, runner):
    result = runner.invoke(args=["settings", "set", "link_field=N° Dossier"])
    assert result.exit_code == 0, result.output
    create_gescom(gescom.engine, header_free={name: size for name, size in HEADER_FREE_FIELDS.items() if name != "N° Dossier"})
    output = check(runner, 1)
    assert "FAIL link_field" in output
    assert "F_DOCENTETE has no column 'N° Dossier'" in output and "flask settings set link_field=" in output
    assert "DO_NoWeb found, where PrestaConnect keeps the shop order id (not used: the link field is N° Dossier)" in output
    assert "ok F_DOCLIGNE.DL_PieceBC cbDL_PieceBC =" in output  # the other checks still ran


def test_a_cbmodification_index_added_by_a_dba_makes_the_window_every_run(gescom, runner):
    execute(gescom, 'CREATE INDEX "IX_SYNC_DOCLIGNE_MODIF" ON "F_DOCLIGNE" ("cbModification")')
    output = check(runner, 0)
    assert "a safety net" in output
    assert "F_DOCLIGNE has IX_SYNC_DOCLIGNE_MODIF but F_DOCENTETE has none" in output

    execute(gescom, 'CREATE INDEX "IX_SYNC_DOCENTETE_MODIF" ON "F_DOCENTETE" ("cbModification")')
    output = check(runner, 0)
    assert "cbModification window every run, looking back SYNC_OVERLAP_SECONDS=120 seconds more" in output
    assert "IX_SYNC_DOCENTETE_MODIF, IX_SYNC_DOCLIGNE_MODIF" in output
    assert "a safety net" not in output


def test_no_safety_net_is_a_warning(app, gescom, runner):
    app.config["SYNC_FULL_SCAN_INTERVAL"] = 0
    output = check(runner, 0)
    assert "WARN cbModification window never after the first run (SYNC_FULL_SCAN_INTERVAL=0)" in output


def test_gescom_unreachable_is_one_clean_failure(app, gescom, runner, tmp_path):
    app.extensions["gescom"] = GesCom(create_engine(f"sqlite:///{tmp_path}/no/such/dir/gescom.db"))
    output = check(runner, 1)
    assert "FAIL GesCom" in output and "GesCom is unreachable" in output
    assert "Traceback" not in output


def test_a_login_without_select_on_f_docligne_fails_and_without_update_warns_when_writing_back(app, gescom, gescom_db, runner, backend):
    if backend != "postgresql":
        pytest.skip("SQLite has no logins: the rights are n/a there")
    schema = gescom_db.engine_options["connect_args"]["options"].removeprefix("-csearch_path=")
    role = f"check_{schema}"[:63]
    execute(gescom, f'CREATE ROLE "{role}" LOGIN', f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"', f'GRANT SELECT ON "F_DOCENTETE" TO "{role}"')
    login = create_engine(gescom_db.engine.url.set(username=role), **gescom_db.engine_options)
    try:
        assert runner.invoke(args=["settings", "set", "tracking.import_from_shop=true"]).exit_code == 0
        app.extensions["gescom"] = GesCom(login)
        output = check(runner, 1)
        assert "ok SELECT on F_DOCENTETE granted" in output
        assert 'FAIL SELECT on F_DOCLIGNE not granted: GRANT SELECT ON "F_DOCLIGNE" TO <login>' in output
        assert "WARN UPDATE on F_DOCENTETE NOT granted while tracking.import_from_shop is on" in output
    finally:
        login.dispose()
        execute(gescom, f'DROP OWNED BY "{role}"', f'DROP ROLE "{role}"')
