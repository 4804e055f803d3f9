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
                return list(result) if __name == "all_documents" else result
            finally:
                depth[0] -= 1

        monkeypatch.setattr(GesCom, name, spy)

    statements: list[ClauseElement] = []

    def record(conn, clauseelement, multiparams, params, execution_options):
        if isinstance(clauseelement, ClauseElement) and depth[0]:
            statements.append(clauseelement)

    sync.gescom.tables, sync.gescom.catalog  # reflection is the dialect's own business, not ours
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
        sync.run()  # incremental: new_rows, resolve, load with grouped documents
        sync.run(full=True)  # all_documents
        sync.gescom.ping()
        with sync.gescom.connect() as conn:  # the admin page's order lookup by reference
            assert sync.gescom.keys_by_reference(conn, current_settings(sync.session)[0], "AAAAAAAAA") == ["101"]
    finally:
        event.remove(gescom_db.engine, "before_execute", record)

    assert called >= {"new_rows", "modified_rows", "resolve", "all_documents", "now", "max_marqs", "carriers", "load", "keys_by_reference"}, called
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
    # Look-ups by piece go through the shadow columns a real base indexes, never the text columns.
    assert "[cbDL_PieceBC] IN" in texts and "[cbDO_Piece] IN" in texts
    assert "[DL_PieceBC] IN" not in texts and ".[DO_Piece] IN" not in texts


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


SQL_SERVER_DEFINITIONS = [
    "(CONVERT([varbinary](13),[DL_PieceBC],(0)))",  # as sys.computed_columns shows it
    "(convert(varbinary(13),[DL_PieceBC]))",
    "CONVERT([varbinary](13),[DL_PieceBC],0)",
]


def _line_table_with(definition: str):
    from sqlalchemy import Column, Computed, Integer, LargeBinary, MetaData, String, Table

    return Table(
        "F_DOCLIGNE", MetaData(), Column("cbMarq", Integer, primary_key=True), Column("DL_PieceBC", String(13)),
        Column("cbDL_PieceBC", LargeBinary(13), Computed(definition)),
    )


def test_shadow_look_ups_compile_for_sql_server_as_index_seeks():
    """The parameter is converted the way the shadow column is computed: first to the column's varchar (pyodbc
    sends a str as nvarchar, whose bytes are UTF-16), then to varbinary of the same width."""
    from sqlalchemy import select

    from sync.gescom_catalog import read_shadow

    for definition in SQL_SERVER_DEFINITIONS:
        table = _line_table_with(definition)
        shadow = read_shadow(table, "DL_PieceBC", "cbDL_PieceBC", "mssql")
        assert shadow.usable, (definition, shadow.note)
        statement = select(table.c.cbMarq).where(table.c.cbDL_PieceBC.in_([shadow.convert(value) for value in ("BC00001", "BC00002")]))
        compiled = statement.compile(dialect=MSSQL)
        sql = " ".join(str(compiled).split())
        assert re.search(r"\[cbDL_PieceBC\] IN \(CAST\(CAST\(:param_1 AS VARCHAR\(13\)\) AS VARBINARY\(13\)\), CAST\(CAST\(:param_2 AS VARCHAR\(13\)\) AS VARBINARY\(13\)\)\)", sql), sql
        assert "BC00001" not in sql and "BC00001" in compiled.params.values()


def test_an_unknown_shadow_definition_falls_back_to_the_text_column_and_says_so():
    from sync.gescom_catalog import read_shadow

    for definition in ("(CONVERT([varbinary](13),upper([DL_PieceBC]),(0)))", "(CONVERT([varbinary](13),[DO_Piece],(0)))", "hashbytes('MD5',[DL_PieceBC])"):
        shadow = read_shadow(_line_table_with(definition), "DL_PieceBC", "cbDL_PieceBC", "mssql")
        assert not shadow.usable and "table scan" in shadow.note and definition in shadow.note
