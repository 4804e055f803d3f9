"""Runs read GesCom only through the access paths a real Sage base has (Sage reference §8.5): the clustered key
cbMarq and the shadow-column indexes. Proved by PostgreSQL's own counters on a 50,000-line base, and by
SQLite's query plans of every statement a run sends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event

from sync.services.run_config import RunConfig
from sync.services.runs import run_sync
from sync.services.unit_of_work import UnitOfWork
from tests.conftest import need_postgres


def test_no_sequential_scan_of_f_docligne_on_postgresql(backend):
    """~11,000 web orders, ~50,000 lines, ANALYZEd: a run with nothing changed and an incremental run read
    F_DOCLIGNE (and F_DOCENTETE) through indexes only; the safety-net scan comes at its interval and finds
    what changed in existing rows and the re-read of open orders has not reached yet."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL's scan counters: run in the PostgreSQL pass")
    need_postgres()
    from benchmarks.access_paths import measure

    result = measure(orders=11000, changed=300)
    assert result["lines"] >= 50000
    first, quiet, moved, quiet_again, due = result["phases"]
    assert first["modified_scan"] and first["updates_created"] > 9000
    for phase in (quiet, moved, quiet_again):
        assert phase["seq_scans"] == {"F_DOCLIGNE": 0, "F_DOCENTETE": 0}, phase
        assert not phase["modified_scan"], phase
    assert quiet["updates_created"] == quiet_again["updates_created"] == 0
    assert moved["updates_created"] > 200  # new documents: found by their cbMarq at once
    assert due["modified_scan"] and moved["updates_created"] + due["updates_created"] == 300  # nothing lost


def _plans(engine, statements: list[tuple[str, object]]) -> list[str]:
    plans = []
    with engine.connect() as conn:
        for statement, parameters in statements:
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
            plans.append("\n".join(row[-1] for row in rows))
    return plans


def test_every_statement_of_a_run_uses_an_index_on_sqlite(session, gescom_db, backend):
    """The same on SQLite, statement by statement: every SELECT an incremental run and a quiet run send to a
    2,000-order base (ANALYZEd) searches the document tables through an index, never scans them."""
    if backend != "sqlite":
        pytest.skip("SQLite's query plans: run in the SQLite pass")
    from benchmarks.generate import build, change
    from sync.gescom.adapter import GesCom

    built = build(gescom_db.engine, 2000)
    gescom = GesCom(gescom_db.engine)
    # A re-read of 100 open orders per run: on a base this small, reading 1,000 of its 2,000 orders would make a
    # scan the planner's right choice (on a real base, millions of lines, it never is).
    config = RunConfig(recheck_age=timedelta(0), recheck_limit=100, initial_lookback=timedelta(days=3650))
    assert run_sync(UnitOfWork(session), gescom, config=config).run.status == "succeeded"
    moved = change(gescom_db.engine, built, 60)
    sent: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    event.listen(gescom_db.engine, "before_cursor_execute", record)
    try:
        incremental = run_sync(UnitOfWork(session), gescom, config=config).run  # new rows, and a re-read of open orders
        quiet = run_sync(UnitOfWork(session), gescom, config=RunConfig(recheck_age=timedelta(hours=1))).run
    finally:
        event.remove(gescom_db.engine, "before_cursor_execute", record)
    assert incremental.updates_created >= len(moved) * 0.9 and quiet.updates_created == 0
    assert not incremental.modified_scan and not quiet.modified_scan
    plans = _plans(gescom_db.engine, sent)
    touching = [(statement, plan) for (statement, _), plan in zip(sent, plans) if "F_DOCLIGNE" in statement or "F_DOCENTETE" in statement]
    assert len(touching) >= 6
    for statement, plan in touching:
        assert "SCAN F_DOCLIGNE" not in plan and "SCAN F_DOCENTETE" not in plan, (statement, plan)
