"""Every statement the adapter sends to GesCom, compiled for SQL Server (mssql+pyodbc), as no SQL Server runs here.

The statements are the ones a realistic scenario really executes (recorded with an engine event), so a new
query cannot slip past this test; each adapter method that reads GesCom must have been exercised.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event
from sqlalchemy.dialects.mssql import pyodbc as mssql_pyodbc
from sqlalchemy.sql import ClauseElement

from sync.gescom.adapter import GesCom
from sync.store.settings import load_settings
from sync.store.shops import create_shop, stored_shops, update_shop

LINES = [("TSHIRT-M", "T-shirt M", 3), ("MUG", "Mug", 1)]
MSSQL = mssql_pyodbc.dialect()
MSSQL_PARAMETER_LIMIT = 2100


def _adapter_methods() -> set[str]:
    return {name for name, value in vars(GesCom).items() if callable(value) and getattr(value, "__wrapped__", None)}


@pytest.mark.parametrize("shops", [False, True], ids=["one-shop", "two-shops"])
def test_every_gescom_statement_compiles_for_sql_server(sync, warehouse, gescom_db, clock, monkeypatch, shops):
    sync.settings(tracking__header_field="Ref Chronopost", tracking__line_field="Colis transporteur", options__send_delivery_details=True)
    header, key = {}, "101"
    if shops:  # two shops told apart by a free field: its column is read with every header
        update_shop(sync.session, "default", {"rule": {"kind": "field", "field": "N° Dossier", "values": ["WEB"]}})
        create_shop(sync.session, {"code": "b2b", "name": "Pro", "rule": {"kind": "field", "field": "N° Dossier", "values": ["PRO"]}})
        sync.session.commit()
        header, key = {"N° Dossier": "PRO"}, "b2b:101"
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
        first = warehouse.create_order("101", LINES, reference="AAAAAAAAA", header=header)
        second = warehouse.create_order("102", LINES, reference="BBBBBBBBB", header=header)
        sync.run()  # first run: look-back window, cbMarq maxima
        clock.tick(10)
        bl1 = warehouse.transform((1, first), 3, take={"MUG": 1}, header={"Ref Chronopost": "XY1FR"})
        bl2 = warehouse.transform((1, second), 3, line_values={"MUG": {"Colis transporteur": "XY2FR"}})
        warehouse.transform([(3, bl1), (3, bl2)], 6)  # grouped invoice, origin lookups
        sync.run()  # incremental: new_rows, resolve, load with grouped documents
        sync.run(full=True)  # all_documents
        sync.gescom.ping()
        with sync.gescom.connect() as conn:  # the admin page's order lookup by reference
            claims = stored_shops(sync.session).claims
            assert sync.gescom.keys_by_reference(conn, load_settings(sync.session), "AAAAAAAAA", claims=claims) == [key]
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
    assert ("[N° Dossier]" in texts) is shops
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
        "F_DOCLIGNE",
        MetaData(),
        Column("cbMarq", Integer, primary_key=True),
        Column("DL_PieceBC", String(13)),
        Column("cbDL_PieceBC", LargeBinary(13), Computed(definition)),
    )


def test_shadow_look_ups_compile_for_sql_server_as_index_seeks():
    """The parameter is converted the way the shadow column is computed: first to the column's varchar (pyodbc
    sends a str as nvarchar, whose bytes are UTF-16), then to varbinary of the same width."""
    from sqlalchemy import select

    from sync.gescom.catalog import read_shadow

    for definition in SQL_SERVER_DEFINITIONS:
        table = _line_table_with(definition)
        shadow = read_shadow(table, "DL_PieceBC", "cbDL_PieceBC", "mssql")
        assert shadow.usable, (definition, shadow.note)
        statement = select(table.c.cbMarq).where(table.c.cbDL_PieceBC.in_([shadow.convert(value) for value in ("BC00001", "BC00002")]))
        compiled = statement.compile(dialect=MSSQL)
        sql = " ".join(str(compiled).split())
        assert re.search(
            r"\[cbDL_PieceBC\] IN \(CAST\(CAST\(:param_1 AS VARCHAR\(13\)\) AS VARBINARY\(13\)\), "
            r"CAST\(CAST\(:param_2 AS VARCHAR\(13\)\) AS VARBINARY\(13\)\)\)",
            sql,
        ), sql
        assert "BC00001" not in sql and "BC00001" in compiled.params.values()


def test_batched_look_ups_are_one_union_of_index_seeks_with_each_value_bound_once():
    """Look-ups batched into one statement (UNION ALL, at most CHUNK values): each branch its own seek on the
    shadow column, its values bound under names of its own, within SQL Server's parameter limit."""
    from sqlalchemy.sql.selectable import CompoundSelect

    from sync.gescom.catalog import read_shadow
    from sync.gescom.chains import CHUNK, batched

    table = _line_table_with(SQL_SERVER_DEFINITIONS[0])
    shadow = read_shadow(table, "DL_PieceBC", "cbDL_PieceBC", "mssql")

    def look(values: list[str]):
        return (lambda batch, index: shadow.in_(table.c.cbDL_PieceBC, batch, index)), values

    first, second, third = [f"BC{n:05d}" for n in range(CHUNK + 200)], ["BL00001", "BL00002"], ["FA00001"]
    statements = list(batched([table.c.cbMarq], [look(first), look(second), look(third)]))
    assert len(statements) == 2 and isinstance(statements[1], CompoundSelect)
    bound: list[str] = []
    for statement in statements:
        compiled = statement.compile(dialect=MSSQL, compile_kwargs={"render_postcompile": True})
        sql = " ".join(str(compiled).split())
        assert len(compiled.params) <= CHUNK < MSSQL_PARAMETER_LIMIT
        assert "BC00001" not in sql and "[cbDL_PieceBC] IN (CAST(CAST(" in sql
        bound += list(compiled.params.values())
    assert sorted(bound) == sorted(first + second + third)
    union = " ".join(str(statements[1].compile(dialect=MSSQL)).split())
    assert union.count(" UNION ALL ") == 2 and union.count("[cbDL_PieceBC] IN") == 3


def test_an_unknown_shadow_definition_falls_back_to_the_text_column_and_says_so():
    from sync.gescom.catalog import read_shadow

    for definition in (
        "(CONVERT([varbinary](13),upper([DL_PieceBC]),(0)))",
        "(CONVERT([varbinary](13),[DO_Piece],(0)))",
        "hashbytes('MD5',[DL_PieceBC])",
    ):
        shadow = read_shadow(_line_table_with(definition), "DL_PieceBC", "cbDL_PieceBC", "mssql")
        assert not shadow.usable and "table scan" in shadow.note and definition in shadow.note


class _ScriptedMssqlConnection:
    """A SQL Server connection for `flask gescom check`'s own statements: answers each by the function it calls."""

    dialect = MSSQL

    def __init__(self, answers: dict):
        self.answers = answers  # SQL function name -> a value, a list of values (one per call), or an exception
        self.sent: list[ClauseElement] = []
        self.rolled_back = 0

    def execute(self, statement):
        self.sent.append(statement)
        sql = str(statement.compile(dialect=MSSQL))
        name = next(name for name in self.answers if f"{name}(" in sql)
        answer = self.answers[name]
        if isinstance(answer, list):
            answer = answer.pop(0)
        if isinstance(answer, Exception):
            raise answer

        class Result:
            def scalar(self_inner):
                return answer

        return Result()

    def rollback(self):
        self.rolled_back += 1


def test_gescom_check_statements_compile_for_sql_server():
    from sqlalchemy.exc import DBAPIError

    from sync.core.settings import Settings, TrackingSettings
    from sync.gescom.catalog import Catalog
    from sync.gescom.check import FAIL, OK, WARN, _isolation, _permissions, _record_lock

    settings = Settings(tracking=TrackingSettings(import_from_shop=True))
    refused = DBAPIError("SELECT dbo.CB_FntIsRecordLock(?, ?)", None, Exception("EXECUTE permission was denied"))
    conn = _ScriptedMssqlConnection({"OBJECT_ID": 1234, "CB_FntIsRecordLock": refused, "HAS_PERMS_BY_NAME": [1, 0, 0]})

    [lock] = _record_lock(conn, None, settings)
    rights = _permissions(conn, None, settings)

    assert lock.status == WARN and "GRANT EXECUTE ON dbo.CB_FntIsRecordLock" in lock.detail and conn.rolled_back == 1
    assert [(check.name, check.status) for check in rights] == [
        ("SELECT on F_DOCENTETE", OK),
        ("SELECT on F_DOCLIGNE", FAIL),
        ("UPDATE on F_DOCENTETE", WARN),
    ]
    assert "NOT granted while tracking.import_from_shop is on" in rights[2].detail
    sql = [str(statement.compile(dialect=MSSQL)) for statement in conn.sent]
    assert sql[0].startswith("SELECT OBJECT_ID(") and sql[1].startswith("SELECT dbo.CB_FntIsRecordLock(")
    assert all(line.startswith("SELECT HAS_PERMS_BY_NAME(") for line in sql[2:]) and len(sql) == 5
    for statement in conn.sent:
        compiled = statement.compile(dialect=MSSQL)
        assert "'" not in str(compiled), compiled  # names travel as parameters
    assert [statement.compile(dialect=MSSQL).params for statement in conn.sent][2:4] == [
        {"HAS_PERMS_BY_NAME_2": "dbo.F_DOCENTETE", "HAS_PERMS_BY_NAME_3": "OBJECT", "HAS_PERMS_BY_NAME_4": "SELECT"},
        {"HAS_PERMS_BY_NAME_2": "dbo.F_DOCLIGNE", "HAS_PERMS_BY_NAME_3": "OBJECT", "HAS_PERMS_BY_NAME_4": "SELECT"},
    ]

    locked = _ScriptedMssqlConnection({"OBJECT_ID": 1234, "CB_FntIsRecordLock": 0})
    assert _record_lock(locked, "sage", settings)[0].status == OK
    assert str(locked.sent[1].compile(dialect=MSSQL)).startswith("SELECT sage.CB_FntIsRecordLock(")
    absent = _ScriptedMssqlConnection({"OBJECT_ID": None})
    assert _record_lock(absent, None, settings)[0].status == WARN and len(absent.sent) == 1

    isolation = {check.name: check for check in _isolation(Catalog("mssql", snapshot_allowed=False, read_committed_snapshot=False), 2000)}
    assert "READ COMMITTED with a 2000 ms lock timeout" in isolation["chain reads"].detail
    assert isolation["discovery reads"].detail.startswith("READ UNCOMMITTED")
    isolation = {check.name: check for check in _isolation(Catalog("mssql", snapshot_allowed=True, read_committed_snapshot=True), 2000)}
    assert isolation["chain reads"].detail.startswith("SNAPSHOT") and isolation["READ_COMMITTED_SNAPSHOT"].detail == "on"
