"""Every statement the adapter sends to GesCom, compiled for SQL Server (mssql+pyodbc), as no SQL Server runs here.

The statements are the ones a realistic scenario really executes (recorded with an engine event), so a new
query cannot slip past this test; each adapter method that reads GesCom must have been exercised.
"""
from __future__ import annotations

import re

from sqlalchemy import event
from sqlalchemy.dialects.mssql import pyodbc as mssql_pyodbc
from sqlalchemy.sql import ClauseElement

from sync.gescom import GesCom
from sync.store import current_settings

LINES = [("TSHIRT-M", "T-shirt M", 3), ("MUG", "Mug", 1)]
MSSQL = mssql_pyodbc.dialect()
MSSQL_PARAMETER_LIMIT = 2100


def _adapter_methods() -> set[str]:
    return {name for name, value in vars(GesCom).items() if callable(value) and getattr(value, "__wrapped__", None)}


def test_every_gescom_statement_compiles_for_sql_server(sync, warehouse, gescom_db, clock, monkeypatch):
    sync.settings(tracking__header_field="Ref Chronopost", tracking__line_field="Colis transporteur",
                  options__send_delivery_details=True)
    called: set[str] = set()
    depth = [0]  # inside an adapter call: the warehouse's own writes use the same engine and don't count
    for name in _adapter_methods():
        original = getattr(GesCom, name)

        def spy(self, *args, __name=name, __original=original, **kwargs):
            called.add(__name)
            depth[0] += 1
            try:
                result = __original(self, *args, **kwargs)
                return list(result) if __name == "all_keys" else result
            finally:
                depth[0] -= 1

        monkeypatch.setattr(GesCom, name, spy)

    statements: list[ClauseElement] = []

    def record(conn, clauseelement, multiparams, params, execution_options):
        if isinstance(clauseelement, ClauseElement) and depth[0]:
            statements.append(clauseelement)

    sync.gescom.tables  # reflection is the dialect's own business, not ours
    event.listen(gescom_db.engine, "before_execute", record)
    try:
        clock.tick(-10)
        first = warehouse.create_order("101", LINES, reference="AAAAAAAAA")
        second = warehouse.create_order("102", LINES, reference="BBBBBBBBB")
        sync.run()  # first run: look-back window, cbMarq maxima
        clock.tick(10)
        bl1 = warehouse.transform((1, first), 3, take={"MUG": 1}, header={"Ref Chronopost": "XY1FR"})
        bl2 = warehouse.transform((1, second), 3, line_values={"MUG": {"Colis transporteur": "XY2FR"}})
        warehouse.transform([(3, bl1), (3, bl2)], 6)  # grouped invoice, origin lookups
        sync.run()  # incremental: changes, keys_of, load with grouped documents
        sync.run(full=True)  # all_keys
        sync.gescom.ping()
        with sync.gescom.connect() as conn:  # the admin page's order lookup by reference
            assert sync.gescom.keys_by_reference(conn, current_settings(sync.session)[0], "AAAAAAAAA") == ["101"]
    finally:
        event.remove(gescom_db.engine, "before_execute", record)

    assert called >= {"changes", "keys_of", "all_keys", "now", "max_marqs", "carriers", "load", "keys_by_reference"}, called
    assert len(statements) > 10
    for statement in statements:
        compiled = statement.compile(dialect=MSSQL)
        sql = str(compiled)
        assert len(compiled.params) <= MSSQL_PARAMETER_LIMIT
        assert sql.startswith("SELECT"), sql  # reads only
        # Values travel as parameters, never inlined: no order key or piece number in the SQL text.
        for literal in ("'101'", "'102'", "'BC0", "'BL0", "'XY", "'AAAAAAAAA'"):
            assert literal not in sql, sql
    texts = "\n".join(str(s.compile(dialect=MSSQL)) for s in statements)
    assert "[Ref Chronopost]" in texts and "[Colis transporteur]" in texts  # free fields bracket-quoted
    assert re.search(r"\[F_DOCENTETE\]|F_DOCENTETE", texts)


class _FakeMssqlConnection:
    """Just enough of a Connection to see what `GesCom.now()` sends to a SQL Server."""

    dialect = MSSQL

    def __init__(self):
        self.sent = []

    def execute(self, statement):
        from datetime import datetime

        self.sent.append(statement)

        class Result:
            def scalar(self_inner):
                return datetime(2024, 5, 2, 10, 15)

        return Result()


def test_gescom_clock_on_sql_server_is_current_timestamp(gescom):
    conn = _FakeMssqlConnection()
    assert gescom.now.__wrapped__(gescom, conn).year == 2024
    [statement] = conn.sent
    assert str(statement.compile(dialect=MSSQL)).startswith("SELECT CURRENT_TIMESTAMP")
