"""A run's bulk writes and column-wise reading store exactly what the ORM path stored, in a handful of statements.

The expected store (`run_bulk_equivalence.json`) was recorded by the code before the bulk path (ORM objects per
shop order and per update, values read cell by cell), on the benchmark generator's data with fixed dates.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table, create_engine, event, insert, select, text, type_coerce
from sqlalchemy.dialects import mssql
from sqlalchemy.orm import Session

from benchmarks.generate import build, change
from models import ShopOrder
from sync.core.memory import OrderMemory
from sync.gescom.adapter import GesCom
from sync.services.run_config import RunConfig
from sync.services.runs import run_sync
from sync.services.unit_of_work import UnitOfWork

EXPECTED = Path(__file__).with_name("run_bulk_equivalence.json")
T0 = datetime(2026, 3, 2, 9, 0)
MOVED = T0 + timedelta(days=1)
# The safety-net scan every run, and an overlap reaching back before T0: the changes (stamped at MOVED, in the
# past) are seen, and every other order is followed again with nothing to say (its memory unchanged).
CONFIG = RunConfig(
    recheck_age=timedelta(hours=1), initial_lookback=timedelta(days=3650), full_scan_interval=timedelta(0), overlap=timedelta(days=3650)
)
TIMES = {"first_seen_at", "checked_at", "updated_at", "created_at"}


def run_scenario(gescom_engine, store_engine, orders: int = 100, changed: int = 25) -> dict:
    """A full run of a generated base, C orders changed, an incremental run: what the store holds after each (the
    orders the second run did not change keep what the first one stored)."""
    built = build(gescom_engine, orders, t0=T0)
    gescom = GesCom(gescom_engine)
    states = {}
    with Session(store_engine) as session:
        run = run_sync(UnitOfWork(session), gescom, full=True, config=CONFIG).run
        assert run.status == "succeeded", run.error
        states["full"] = dump(session)
    change(gescom_engine, built, changed, when=MOVED)
    with Session(store_engine) as session:
        run = run_sync(UnitOfWork(session), gescom, config=CONFIG).run
        assert run.status == "succeeded", run.error
        states["incremental"] = dump(session)
    return states


def dump(session: Session) -> dict:
    """Shop orders, their BC numbers and the updates, in a stable order, ids and clock times left out."""

    def rows(sql: str) -> list[dict]:
        return [
            {k: _plain(v) for k, v in row.items() if k not in TIMES and k not in ("id", "shop_order_id", "run_id", "shop_id")}
            for row in session.execute(text(sql)).mappings()
        ]

    return {
        "shop_orders": rows("SELECT * FROM shop_orders ORDER BY order_key"),
        "pieces": rows("SELECT p.piece, o.order_key FROM order_pieces p JOIN shop_orders o ON o.id = p.shop_order_id ORDER BY p.piece"),
        "updates": rows("SELECT * FROM updates ORDER BY id"),
        "vanished_first": session.execute(text("SELECT count(*) FROM shop_orders WHERE checked_at < '1971-01-01'")).scalar(),
        "updated_when_checked": session.execute(text("SELECT count(*) FROM shop_orders WHERE updated_at = checked_at")).scalar(),
    }


def _plain(value):
    """JSON columns come back as text from SQLite and decoded from PostgreSQL: compare them decoded."""
    if isinstance(value, str) and (value[:1] in "[{" or value == "null"):
        return json.loads(value)
    if isinstance(value, (datetime, Decimal)):
        return str(value)
    return value


def test_a_run_stores_what_the_orm_path_stored(gescom_db, store_db):
    states = run_scenario(gescom_db.engine, store_db.engine)
    expected = json.loads(EXPECTED.read_text())
    for part, value in expected.items():
        assert json.loads(json.dumps(states["incremental"][part], default=str)) == value, part
    assert len(states["incremental"]["updates"]) > len(states["full"]["updates"])  # the scenario did change orders


def test_a_chunk_is_written_in_a_handful_of_statements(gescom_db, store_db):
    """Statements that write the store per chunk: not one per shop order, nor one per update."""
    writes: list[str] = []
    sets: list[str] = []

    @event.listens_for(store_db.engine, "before_cursor_execute")
    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().split()[0].upper() in ("INSERT", "UPDATE") and re.search(r"\b(shop_orders|order_pieces|updates)\b", statement):
            writes.append(statement.split("(")[0].split(" SET")[0])
            sets.append(statement)

    states = run_scenario(gescom_db.engine, store_db.engine)
    assert len(states["full"]["shop_orders"]) > 80 and len(states["incremental"]["updates"]) > len(states["full"]["updates"])
    # Each run is one chunk here: at most one insert each of new shop orders, of BC numbers learned and of updates, and one
    # update of stored shop orders per set of columns written (checked_at alone, or with what changed): a few.
    kinds = Counter(writes)
    assert (kinds["INSERT INTO shop_orders "], kinds["INSERT INTO order_pieces "], kinds["INSERT INTO updates "]) == (1, 2, 2), kinds
    assert kinds["UPDATE shop_orders"] <= 8, kinds
    # Only what changed is written: the push's and the shop poll's columns, which a run does not change, never are
    # (written meanwhile by them, they stay).
    updates_of_orders = [statement for statement in sets if statement.startswith("UPDATE shop_orders")]
    assert updates_of_orders and not any(re.search(r"\bshop_(state_pushed|tracking|state_id|id_order)\b", s) for s in updates_of_orders)
    assert len(writes) == sum(
        kinds[kind] for kind in ("INSERT INTO shop_orders ", "INSERT INTO order_pieces ", "INSERT INTO updates ", "UPDATE shop_orders")
    )


def test_shadow_look_ups_are_one_statement_whatever_the_number_of_values_and_compile_for_sql_server():
    """An expanding IN, each value converted the way the shadow column is computed: one cached statement."""
    from sqlalchemy import Computed

    from sync.gescom.catalog import read_shadow

    table = Table(
        "F_DOCLIGNE",
        MetaData(),
        Column("cbMarq", Integer, primary_key=True),
        Column("DL_PieceBC", String(13)),
        Column("cbDL_PieceBC", LargeBinary(13), Computed("(CONVERT([varbinary](13),[DL_PieceBC],(0)))")),
    )
    shadow = read_shadow(table, "DL_PieceBC", "cbDL_PieceBC", "mssql")
    two = select(table.c.cbMarq).where(shadow.in_(table.c.cbDL_PieceBC, ["BC00001", "BC00002"]))
    three = select(table.c.cbMarq).where(shadow.in_(table.c.cbDL_PieceBC, ["BC00001", "BC00002", "BC00003"]))
    assert two._generate_cache_key() == three._generate_cache_key()
    compiled = two.compile(dialect=mssql.dialect(), compile_kwargs={"render_postcompile": True})
    sql = " ".join(str(compiled).split())
    assert re.search(
        r"\[cbDL_PieceBC\] IN \(CAST\(CAST\(:cbDL_PieceBC_values_1 AS VARCHAR\(13\)\) AS VARBINARY\(13\)\), "
        r"CAST\(CAST\(:cbDL_PieceBC_values_2 AS VARCHAR\(13\)\) AS VARBINARY\(13\)\)\)",
        sql,
    ), sql
    assert "BC00001" not in sql and "BC00001" in compiled.params.values()


def test_reading_column_by_column_reads_what_the_column_types_read(tmp_path):
    """Odd values (padding, cp1252 bytes, NULLs, junk dates and numbers) come out the same both ways."""
    from sync.gescom.chains import ColumnReader
    from sync.gescom.values import DayValue, IntValue, Malformed, NumberValue, StampValue, TextValue

    engine = create_engine(f"sqlite:///{tmp_path}/odd.db")
    table = Table("odd", MetaData(), Column("a", String), Column("b", String), Column("c", String), Column("d", String), Column("e", String))
    kinds = {"a": TextValue, "b": DayValue, "c": NumberValue, "d": IntValue, "e": StampValue}
    table.create(engine)
    odd = [
        {"a": "BC001   ", "b": "2024-05-02 00:00:00", "c": "3.000000", "d": "7", "e": "2024-05-02 10:15:00"},
        {"a": None, "b": "1753-01-01 00:00:00", "c": None, "d": None, "e": None},
        {"a": "é ", "b": "02/05/2024", "c": "trois", "d": "x", "e": "never"},
        {"a": "", "b": "not a date", "c": "-1", "d": "12", "e": ""},
    ]
    with engine.begin() as conn:
        conn.execute(insert(table), odd)
        conn.execute(text("INSERT INTO odd (a) VALUES (CAST(X'E9746532' AS BLOB))"))  # cp1252 bytes
        reader = ColumnReader({name: (table.c[name], kind) for name, kind in kinds.items()})
        by_columns = reader.rows(conn.execute(select(*reader.columns)))
        by_cells = [row._asdict() for row in conn.execute(select(*[type_coerce(table.c[n], k()).label(n) for n, k in kinds.items()]))]

    def comparable(rows):
        return [{k: ("Malformed", v.raw) if isinstance(v, Malformed) else v for k, v in row.items()} for row in rows]

    assert comparable(by_columns) == comparable(by_cells)
    assert by_columns[0] == {"a": "BC001", "b": datetime(2024, 5, 2).date(), "c": Decimal("3.000000"), "d": 7, "e": datetime(2024, 5, 2, 10, 15)}
    assert by_columns[4]["a"] == "éte2" and isinstance(by_columns[2]["c"], Malformed)
    with engine.connect() as conn:
        assert ColumnReader({"a": (table.c.a, TextValue)}).rows(conn.execute(select(table.c.a).where(text("0")))) == []


def test_the_bulk_mapping_is_the_mapping_of_one_order():
    from sync.store.memory import memory_values, save_memory

    memory = OrderMemory(
        stage="shipped", current_stage="shipped", state_rank=4, states_sent=(2, 4), snapshot={"piece": "BL1"}, documents={"3:BL1": {}}
    )
    order = ShopOrder(order_key="4711")
    save_memory(order, memory)
    assert {name: getattr(order, name) for name in memory_values(memory)} == memory_values(memory)
