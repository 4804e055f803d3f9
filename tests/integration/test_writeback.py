"""A shop tracking number written back onto the GesCom document (Sage reference §8.4), on a Sage-shaped base.

Idempotency choice: a repeat of a request already served answers changed=False and records no second
event; an event is recorded when GesCom was written, or the first time the shop tells a number GesCom
already showed (typed in Sage meanwhile).
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import MetaData, create_engine, event, select, text
from sqlalchemy.dialects.mssql import pyodbc as mssql_pyodbc
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.dml import Update as UpdateStatement

from models import OrderEvent, ShopOrder
from sync.core.memory import tracking_numbers
from sync.gescom.adapter import GesCom, GesComError
from sync.services.writeback import (
    DocumentBusy,
    FieldAlreadyFilled,
    HeaderFieldNotWritable,
    ImportDisabled,
    InvalidTrackingNumber,
    NoHeaderField,
    OnlyInvoicesLeft,
    SettingsMismatch,
    UnknownOrder,
    UnreadableOrder,
    WriteBackError,
    write_tracking,
)

LINES = [("TSHIRT-M", "T-shirt M", 3), ("MUG", "Mug", 1)]
NUMBER = "6A12345678901"
MSSQL = mssql_pyodbc.dialect()


def write(sync, key: str, number: str, **options):
    """Write back as an entry point does: GesCom's write, then the caller commits what the store remembers of it."""
    result = write_tracking(sync.session, sync.gescom, key, number, **options)
    sync.session.commit()
    return result


def field_of(warehouse, doc_type: int, piece: str, field: str = "DO_Coord01") -> str:
    with warehouse.engine.connect() as conn:
        return conn.execute(
            select(warehouse.h.c[field]).where(warehouse.h.c.DO_Domaine == 0, warehouse.h.c.DO_Type == doc_type, warehouse.h.c.DO_Piece == piece)
        ).scalar_one()


def events(sync, key: str) -> list[dict]:
    return [e.data for e in sync.session.scalars(select(OrderEvent).where(OrderEvent.order_key == key).order_by(OrderEvent.id))]


def dump(engine) -> dict[tuple[str, int, str], object]:
    """Every cell of every GesCom table, keyed by (table, cbMarq, column)."""
    metadata = MetaData()
    metadata.reflect(engine)
    assert {"F_DOCENTETE", "F_DOCLIGNE", "P_EXPEDITION", "cbSysLibre", "F_DOCCURRENTPIECE"} <= set(metadata.tables)
    cells = {}
    with engine.connect() as conn:
        for table in metadata.tables.values():
            for row in conn.execute(select(table)).mappings():
                for column, value in row.items():
                    cells[(table.name, row["cbMarq"], column)] = value
    return cells


def diff(before: dict, after: dict) -> dict:
    assert before.keys() == after.keys(), "rows appeared or vanished"
    return {key: (before[key], after[key]) for key in before if before[key] != after[key]}


def shipped_order(sync, warehouse, clock, key: str = "4711") -> tuple[str, str]:
    bc = warehouse.create_order(key, LINES)
    clock.tick()
    bl = warehouse.transform((1, bc), 3)
    sync.run()
    return bc, bl


# --- the happy paths -------------------------------------------------------------------------------------


def test_number_written_onto_the_bl_is_not_sent_back_and_survives_the_invoice(sync, warehouse, clock):
    sync.settings(tracking__import_from_shop=True, options__send_delivery_details=True)
    _, bl = shipped_order(sync, warehouse, clock)
    assert sync.updates("4711")[-1]["tracking_numbers"] == []

    result = write(sync, "4711", f"  {NUMBER} ")
    assert (result.order_key, result.document, result.field, result.tracking_number, result.changed) == (
        "4711",
        {"type": 3, "piece": bl},
        "DO_Coord01",
        NUMBER,
        True,
    )
    assert field_of(warehouse, 3, bl) == NUMBER
    order = sync.order("4711")
    assert order.documents[f"3:{bl}"]["tracking"] == [NUMBER] and order.documents[f"3:{bl}"]["from_shop"] == [NUMBER]
    assert order.snapshot["tracking_numbers"] == [NUMBER]
    assert events(sync, "4711") == [
        {"tracking_number": NUMBER, "document": {"type": 3, "piece": bl}, "field": "DO_Coord01", "changed": True, "source": "api"}
    ]

    # The next runs read the order again (re-check of open orders) and find nothing new.
    result_run = sync.run()
    assert result_run.run.orders_checked >= 1 and sync.updates("4711")[-1]["tracking_numbers"] == []
    assert sync.new_updates() == [] and sync.new_updates(full=True) == []

    clock.tick()
    warehouse.transform((3, bl), 6)
    [invoiced] = sync.new_updates()
    assert invoiced["stage"] == "invoiced" and "tracking" not in invoiced["changes"]
    assert invoiced["tracking_numbers"] == [NUMBER]
    assert invoiced["deliveries"][0]["tracking_numbers"] == [NUMBER]
    assert tracking_numbers(sync.order("4711").documents) == [NUMBER]


def test_written_onto_the_bc_when_nothing_left_yet(sync, warehouse, clock):
    sync.settings(tracking__import_from_shop=True)
    bc = warehouse.create_order("12", LINES)
    sync.run()
    result = write(sync, "12", NUMBER, source="cli")
    assert result.document == {"type": 1, "piece": bc} and result.changed
    assert field_of(warehouse, 1, bc) == NUMBER
    assert events(sync, "12")[0]["source"] == "cli"
    assert sync.new_updates() == []
    clock.tick()
    warehouse.transform((1, bc), 3)  # Sage does not copy Entête 1 to the BL: the BC's number is remembered
    [shipped] = sync.new_updates()
    assert shipped["stage"] == "shipped" and "tracking" not in shipped["changes"] and shipped["tracking_numbers"] == [NUMBER]


def test_target_is_the_latest_bl_not_the_bc_left_as_reliquat(sync, warehouse, clock):
    sync.settings(tracking__import_from_shop=True)
    bc = warehouse.create_order("20", LINES)
    clock.tick()
    bl1 = warehouse.transform((1, bc), 3, take={"MUG": 1})
    sync.run()
    assert write(sync, "20", "FIRST1").document == {"type": 3, "piece": bl1}
    clock.tick()
    bl2 = warehouse.transform((1, bc), 3, take={"TSHIRT-M": 1})
    assert {t for t, _ in warehouse.documents("20")} == {1, 3}  # BC still there (reliquat), two BLs
    assert write(sync, "20", "SECOND2").document == {"type": 3, "piece": bl2}
    assert (field_of(warehouse, 1, bc), field_of(warehouse, 3, bl1), field_of(warehouse, 3, bl2)) == ("", "FIRST1", "SECOND2")
    assert sync.new_updates() == []
    assert tracking_numbers(sync.order("20").documents) == ["FIRST1", "SECOND2"]


def test_target_is_the_preparation_when_there_is_no_bl(sync, warehouse, clock):
    sync.settings(tracking__import_from_shop=True)
    bc = warehouse.create_order("21", LINES)
    pl = warehouse.transform((1, bc), 2, take={"MUG": 1})
    sync.run()
    assert write(sync, "21", NUMBER).document == {"type": 2, "piece": pl}
    assert field_of(warehouse, 2, pl) == NUMBER and field_of(warehouse, 1, bc) == ""


def test_a_document_the_runs_have_not_seen_yet_is_remembered_with_the_next_seq(sync, warehouse, clock):
    sync.settings(tracking__import_from_shop=True)
    bc = warehouse.create_order("22", LINES)
    sync.run()
    clock.tick()
    bl = warehouse.transform((1, bc), 3)  # no run since
    assert write(sync, "22", NUMBER).document == {"type": 3, "piece": bl}
    memory = sync.order("22").documents
    assert memory[f"3:{bl}"]["seq"] > memory[f"1:{bc}"]["seq"] and memory[f"3:{bl}"]["tracking"] == [NUMBER]
    [shipped] = sync.new_updates()
    assert shipped["stage"] == "shipped" and "tracking" not in shipped["changes"] and shipped["tracking_numbers"] == [NUMBER]


def test_repeat_is_idempotent_and_records_one_event(sync, warehouse, clock):
    sync.settings(tracking__import_from_shop=True)
    _, bl = shipped_order(sync, warehouse, clock)
    assert write(sync, "4711", NUMBER).changed is True
    again = write(sync, "4711", NUMBER)
    assert again.changed is False and again.document == {"type": 3, "piece": bl}
    sync.run()  # the run replaces the BL's memory entry: a repeat after it is still the same request
    assert write(sync, "4711", NUMBER).changed is False
    assert [e["changed"] for e in events(sync, "4711")] == [True]
    assert field_of(warehouse, 3, bl) == NUMBER


def test_number_already_typed_in_sage_is_success_without_writing(sync, warehouse, clock, gescom_db):
    sync.settings(tracking__import_from_shop=True)
    _, bl = shipped_order(sync, warehouse, clock)
    warehouse.set_header(3, bl, DO_Coord01=NUMBER)
    before = dump(gescom_db.engine)
    result = write(sync, "4711", NUMBER)
    assert result.changed is False and result.document == {"type": 3, "piece": bl}
    assert diff(before, dump(gescom_db.engine)) == {}
    assert [e["changed"] for e in events(sync, "4711")] == [False]  # the shop told it: once in the timeline
    assert write(sync, "4711", NUMBER).changed is False and len(events(sync, "4711")) == 1
    assert sync.new_updates() == []  # GesCom's number, already known as the shop's: no news


def test_a_number_the_shop_got_from_us_is_not_written_on_another_document(sync, warehouse, clock, gescom_db):
    sync.settings(tracking__import_from_shop=True)
    bc = warehouse.create_order("30", LINES)
    bl1 = warehouse.transform((1, bc), 3, take={"MUG": 1}, header={"DO_Coord01": NUMBER})
    assert sync.new_updates()[0]["tracking_numbers"] == [NUMBER]
    clock.tick()
    warehouse.transform((1, bc), 3)  # a second BL, its Entête 1 empty
    sync.run()
    before = dump(gescom_db.engine)
    result = write(sync, "30", NUMBER)  # the shop sends back the number it got from us
    assert result.changed is False and result.document == {"type": 3, "piece": bl1}
    assert diff(before, dump(gescom_db.engine)) == {}


def test_header_free_field_with_spaces(sync, warehouse, clock):
    sync.settings(tracking__import_from_shop=True, tracking__header_field="Ref Chronopost")
    _, bl = shipped_order(sync, warehouse, clock)
    with pytest.raises(InvalidTrackingNumber, match="Ref Chronopost holds at most 21"):
        write(sync, "4711", "X" * 22)
    result = write(sync, "4711", "X" * 21)
    assert result.field == "Ref Chronopost" and field_of(warehouse, 3, bl, "Ref Chronopost") == "X" * 21
    assert field_of(warehouse, 3, bl) == ""
    assert sync.new_updates() == []


# --- refusals --------------------------------------------------------------------------------------------


def test_import_disabled_unknown_order_and_no_header_field(sync, warehouse, clock):
    shipped_order(sync, warehouse, clock)
    with pytest.raises(ImportDisabled) as disabled:  # off by default
        write(sync, "4711", NUMBER)
    assert (disabled.value.status, disabled.value.code) == (409, "tracking_import_disabled")
    sync.settings(tracking__import_from_shop=True)
    with pytest.raises(UnknownOrder) as unknown:
        write(sync, "9999", NUMBER)
    assert (unknown.value.status, unknown.value.code) == (404, "order_not_found") and "9999" in str(unknown.value)
    sync.settings(tracking__header_field=None, tracking__line_field="DL_NoColis")
    with pytest.raises(NoHeaderField) as none:
        write(sync, "4711", NUMBER)
    assert (none.value.status, none.value.code) == (409, "no_tracking_header_field")
    sync.settings(tracking__header_field="DO_Ref")  # read from, never written
    with pytest.raises(HeaderFieldNotWritable) as not_writable:
        write(sync, "4711", NUMBER)
    assert (not_writable.value.status, not_writable.value.code) == (409, "tracking_header_field_not_writable")
    assert events(sync, "4711") == []


def test_settings_that_no_longer_match_gescom_and_unreadable_orders(sync, warehouse, clock, gescom_db, backend):
    sync.settings(tracking__import_from_shop=True, tracking__header_field="DO_Coord03")
    bc, _ = shipped_order(sync, warehouse, clock)
    with gescom_db.engine.begin() as conn:
        conn.execute(text('ALTER TABLE "F_DOCENTETE" DROP COLUMN "DO_Coord03"'))
    sync.gescom.refresh()
    with pytest.raises(SettingsMismatch, match="tracking.header_field") as mismatch:
        write(sync, "4711", NUMBER)
    assert (mismatch.value.status, mismatch.value.code) == (409, "settings_do_not_match_gescom")

    sync.settings(tracking__header_field="DO_Coord01")
    with gescom_db.engine.begin() as conn:
        if backend == "sqlite":
            conn.execute(text("UPDATE F_DOCENTETE SET DO_Date = '31/02/2024 oops' WHERE DO_NoWeb = '4711'"))
        else:
            conn.execute(text('ALTER TABLE "F_DOCLIGNE" ALTER COLUMN "DL_Qte" DROP NOT NULL'))
            conn.execute(text('UPDATE "F_DOCLIGNE" SET "DL_Qte" = NULL WHERE "DL_PieceBC" = :p'), {"p": bc})
    with pytest.raises(UnreadableOrder, match="unreadable") as unreadable:
        write(sync, "4711", NUMBER)
    assert (unreadable.value.status, unreadable.value.code) == (409, "order_unreadable")
    assert events(sync, "4711") == []


def test_header_number_goes_before_line_numbers_in_the_remembered_delivery(sync, warehouse, clock):
    """Header and line numbers both read: the delivery lists the header's first, as the next run will."""
    sync.settings(tracking__import_from_shop=True, tracking__line_field="DL_NoColis", options__send_delivery_details=True)
    bc = warehouse.create_order("50", LINES)
    clock.tick()
    bl = warehouse.transform((1, bc), 3, line_values={"MUG": {"DL_NoColis": "LINE1"}})
    [shipped] = sync.new_updates()
    assert shipped["deliveries"][0]["tracking_numbers"] == ["LINE1"]
    assert write(sync, "50", NUMBER).changed
    assert sync.order("50").snapshot["deliveries"][0]["tracking_numbers"] == [NUMBER, "LINE1"]
    assert sync.new_updates() == [] and sync.new_updates(full=True) == []
    clock.tick()
    warehouse.transform((3, bl), 6)
    [invoiced] = sync.new_updates()
    assert "tracking" not in invoiced["changes"] and sorted(invoiced["tracking_numbers"]) == sorted([NUMBER, "LINE1"])


def test_the_tracking_state_is_not_produced_for_a_number_the_shop_gave(sync, warehouse, clock):
    """tracking.state_on_send marks a number GesCom sends to the shop; the shop's own number is no such news."""
    sync.settings(tracking__import_from_shop=True, tracking__state_on_send=12)
    shipped_order(sync, warehouse, clock)
    write(sync, "4711", NUMBER)
    assert sync.new_updates() == []
    assert 12 not in sync.order("4711").states_sent


@pytest.mark.parametrize(
    "number, field, reason",
    [
        ("X" * 26, "DO_Coord01", "DO_Coord01 holds at most 25"),
        ("X" * 65, "Observation", "the shop holds at most 64"),
        ("6A1;6A2", "DO_Coord01", "';'"),
        ("6A1,6A2", "DO_Coord01", "','"),
        ("6A1|6A2", "DO_Coord01", "'|'"),
        ("6A1\n6A2", "DO_Coord01", "'\\n'"),
        ("6A1\t6A2", "DO_Coord01", "'\\t'"),
        ("COLIS-É1", "DO_Coord01", "non-ASCII"),
        ("é", "DO_Coord01", "non-ASCII"),
        ("<b>1</b>", "DO_Coord01", "'<'"),
        ("   ", "DO_Coord01", "empty"),
        ("", "DO_Coord01", "empty"),
    ],
)
def test_invalid_tracking_numbers(sync, warehouse, clock, gescom_db, number, field, reason):
    sync.settings(tracking__import_from_shop=True, tracking__header_field=field)
    shipped_order(sync, warehouse, clock)
    before = dump(gescom_db.engine)
    with pytest.raises(InvalidTrackingNumber) as caught:
        write(sync, "4711", number)
    assert (caught.value.status, caught.value.code, caught.value.field) == (422, "invalid_tracking_number", "tracking_number")
    assert reason in str(caught.value)
    assert diff(before, dump(gescom_db.engine)) == {} and events(sync, "4711") == []


def test_every_allowed_character_is_written(sync, warehouse, clock):
    sync.settings(tracking__import_from_shop=True, tracking__header_field="Observation")
    _, bl = shipped_order(sync, warehouse, clock)
    number = "Az09 _-./#:+@()=?~%&"
    assert write(sync, "4711", number).changed and field_of(warehouse, 3, bl, "Observation") == number


def test_only_invoices_left(sync, warehouse, clock, gescom_db):
    sync.settings(tracking__import_from_shop=True)
    _, bl = shipped_order(sync, warehouse, clock)
    clock.tick()
    invoice = warehouse.transform((3, bl), 6)
    sync.run()
    before = dump(gescom_db.engine)
    with pytest.raises(OnlyInvoicesLeft) as caught:
        write(sync, "4711", NUMBER)
    assert (caught.value.status, caught.value.code) == (422, "only_invoices_left") and f"6:{invoice}" in str(caught.value)
    warehouse.post(invoice)
    with pytest.raises(OnlyInvoicesLeft):
        write(sync, "4711", NUMBER)
    assert diff(before, dump(gescom_db.engine)).keys() <= {k for k in before if k[2] in ("DO_Type", "cbModification")}
    assert events(sync, "4711") == []


def test_field_filled_in_sage_with_another_number_is_never_overwritten(sync, warehouse, clock, gescom_db):
    sync.settings(tracking__import_from_shop=True)
    _, bl = shipped_order(sync, warehouse, clock)
    warehouse.set_header(3, bl, DO_Coord01="TYPED-IN-SAGE")
    before = dump(gescom_db.engine)
    with pytest.raises(FieldAlreadyFilled) as caught:
        write(sync, "4711", NUMBER)
    error = caught.value
    assert (error.status, error.code, error.existing, error.column) == (409, "tracking_field_not_empty", "TYPED-IN-SAGE", "DO_Coord01")
    assert getattr(error, "field", None) is None  # `field` names a request field at fault: not the case here
    assert error.document == {"type": 3, "piece": bl} and "TYPED-IN-SAGE" in str(error)
    assert diff(before, dump(gescom_db.engine)) == {} and events(sync, "4711") == []


@pytest.mark.parametrize("meanwhile", ["invoiced", "locked", "typed_other", "typed_same"])
def test_document_changed_between_read_and_write(sync, warehouse, clock, monkeypatch, meanwhile):
    """The guarded UPDATE changes no row: the header is re-read to tell why."""
    sync.settings(tracking__import_from_shop=True)
    _, bl = shipped_order(sync, warehouse, clock)
    original = GesCom.fill_header_field

    def racing(self, conn, doc_type, piece, marq, field, value):
        if meanwhile == "invoiced":
            warehouse.transform((3, bl), 6)
        elif meanwhile == "typed_other":
            warehouse.set_header(3, bl, DO_Coord01="OTHER")
        elif meanwhile == "typed_same":
            warehouse.set_header(3, bl, DO_Coord01=value)
        else:
            return 0  # what the CB_FntIsRecordLock predicate does on SQL Server when a user has it open
        return original(self, conn, doc_type, piece, marq, field, value)

    monkeypatch.setattr(GesCom, "fill_header_field", racing)
    if meanwhile in ("invoiced", "locked"):
        with pytest.raises(DocumentBusy) as caught:
            write(sync, "4711", NUMBER)
        assert (caught.value.status, caught.value.code) == (409, "document_busy") and "retry later" in str(caught.value)
        assert events(sync, "4711") == []
    elif meanwhile == "typed_other":
        with pytest.raises(FieldAlreadyFilled, match="OTHER"):
            write(sync, "4711", NUMBER)
    else:
        assert write(sync, "4711", NUMBER).changed is False
    if meanwhile != "invoiced":
        assert field_of(warehouse, 3, bl) == {"locked": "", "typed_other": "OTHER", "typed_same": NUMBER}[meanwhile]


def test_gescom_unreachable_propagates_and_nothing_is_recorded(sync, warehouse, clock, tmp_path):
    sync.settings(tracking__import_from_shop=True)
    shipped_order(sync, warehouse, clock)
    broken = GesCom(create_engine(f"sqlite:///{tmp_path}/missing/nowhere.db"))
    with pytest.raises(GesComError):
        write_tracking(sync.session, broken, "4711", NUMBER)
    assert events(sync, "4711") == []


def test_errors_share_one_base_with_status_and_code():
    import sync.services.writeback as writeback

    errors = [value for value in vars(writeback).values() if isinstance(value, type) and issubclass(value, WriteBackError)]
    assert len(errors) >= 9
    for error in errors:
        assert isinstance(error.status, int) and re.fullmatch(r"[a-z_]+", error.code)
    assert len({error.code for error in errors}) == len(errors)


# --- what reaches GesCom ---------------------------------------------------------------------------------


def test_exactly_one_cell_of_the_whole_base_changes(sync, warehouse, clock, gescom_db):
    sync.settings(tracking__import_from_shop=True, tracking__header_field="Ref Chronopost")
    bc = warehouse.create_order("4711", LINES)
    warehouse.create_order("4712", LINES)  # another order, untouched
    clock.tick()
    bl = warehouse.transform((1, bc), 3, take={"MUG": 1})
    sync.run()
    with warehouse.engine.connect() as conn:
        target = conn.execute(select(warehouse.h.c.cbMarq).where(warehouse.h.c.DO_Type == 3, warehouse.h.c.DO_Piece == bl)).scalar_one()
    before = dump(gescom_db.engine)
    assert write(sync, "4711", NUMBER).changed
    changed = diff(before, dump(gescom_db.engine))
    # Our one cell; the demo's Sage-like AFTER UPDATE trigger stamps cbModification of that row (we never do).
    stamped = changed.pop(("F_DOCENTETE", target, "cbModification"), None)
    assert changed == {("F_DOCENTETE", target, "Ref Chronopost"): ("", NUMBER)}
    assert stamped is None or stamped[1] is not None


def test_the_update_compiles_for_sql_server_with_one_quoted_column_and_parameters(sync, warehouse, clock, gescom_db):
    sync.settings(tracking__import_from_shop=True, tracking__header_field="Ref Chronopost")
    _, bl = shipped_order(sync, warehouse, clock)
    sync.gescom.tables
    statements: list[ClauseElement] = []

    def record(conn, clauseelement, multiparams, params, execution_options):
        if isinstance(clauseelement, ClauseElement):
            statements.append(clauseelement)

    event.listen(gescom_db.engine, "before_execute", record)
    try:
        write(sync, "4711", NUMBER)
    finally:
        event.remove(gescom_db.engine, "before_execute", record)
    updates = [s for s in statements if isinstance(s, UpdateStatement)]
    assert len(updates) == 1
    for statement in statements:
        sql = str(statement.compile(dialect=MSSQL))
        if sql.startswith("SET "):
            assert "lock_timeout" in sql.lower() or "LOCK_TIMEOUT" in sql, sql  # the only session setting: a lock timeout
            continue
        assert sql.startswith("UPDATE" if statement is updates[0] else "SELECT"), sql
    compiled = updates[0].compile(dialect=MSSQL)
    sql = str(compiled)
    set_clause = re.search(r"\bSET (.*?) WHERE\b", sql).group(1)
    assert set_clause.startswith("[Ref Chronopost]=") and "," not in set_clause  # one column, bracket-quoted
    for literal in (NUMBER, bl, "4711"):
        assert literal not in sql
    assert NUMBER in compiled.params.values() and bl in compiled.params.values()
    for guard in ("[cbMarq] =", "[DO_Domaine] =", "[DO_Type] =", "[DO_Type] IN", "[DO_Piece] =", "[Ref Chronopost] IS NULL"):
        assert guard in sql, guard
    assert "cbModification" not in sql and "CB_FntIsRecordLock" not in sql  # not SQL Server here


class _Result:
    def __init__(self, scalar=None, rowcount=0, row=None):
        self._scalar, self.rowcount, self._row = scalar, rowcount, row

    def scalar(self):
        return self._scalar

    def first(self):
        return self._row


class _FakeMssqlConnection:
    """Just enough of a Connection to see what `fill_header_field` sends to a SQL Server."""

    dialect = MSSQL
    invalidated = False

    def __init__(self, lock_function: bool, rowcount: int = 1, writes: bool = True):
        """`rowcount`: what the driver reports for the UPDATE (wrong behind Sage's triggers); `writes`: whether
        the row holds the value afterwards (what the re-read sees)."""
        self.lock_function, self.rowcount, self.writes = lock_function, rowcount, writes
        self.sent: list[ClauseElement] = []
        self.transactions: list[str] = []
        self.value = ""

    def rollback(self):
        pass

    def in_transaction(self) -> bool:
        return False

    def begin(self):
        connection = self

        class Transaction:
            def __enter__(self):
                self.state = "open"
                return self

            def rollback(self):
                self.state = "rolled back"

            def __exit__(self, kind, value, traceback):
                if self.state == "open":
                    self.state = "rolled back" if kind else "committed"
                connection.transactions.append(self.state)

        return Transaction()

    def execute(self, statement):
        self.sent.append(statement)
        sql = str(statement.compile(dialect=MSSQL))
        if sql.startswith("SELECT OBJECT_ID"):
            return _Result(scalar=1234 if self.lock_function else None)
        if sql.startswith("UPDATE"):
            if self.writes:
                self.value = self.expected
            return _Result(rowcount=self.rowcount)
        if sql.startswith("SELECT"):
            doc_type, piece = self.document
            return _Result(row=(0, doc_type, piece, self.value))
        return _Result()


def _fill(gescom, conn, doc_type, piece, marq, field, value):
    conn.document, conn.value, conn.expected = (doc_type, piece), "", value
    return gescom.fill_header_field(conn, doc_type, piece, marq, field, value)


def test_sql_server_checks_sage_record_lock_when_the_function_exists(gescom):
    conn = _FakeMssqlConnection(lock_function=True)
    assert _fill(gescom, conn, 3, "BL00001", 42, "Ref Chronopost", NUMBER) == 1
    assert _fill(gescom, conn, 2, "PL00001", 43, "DO_Coord01", NUMBER) == 1
    texts = [str(s.compile(dialect=MSSQL)) for s in conn.sent]
    # A lock timeout for each write, put back afterwards; the function looked up once; the row read (locked)
    # before and re-read after the UPDATE.
    assert [t.split(" ")[0] for t in texts] == ["SET", "SELECT", "SELECT", "UPDATE", "SELECT", "SET", "SET", "SELECT", "UPDATE", "SELECT", "SET"]
    assert texts[0] == "SET LOCK_TIMEOUT 3000" and texts[5] == "SET LOCK_TIMEOUT -1" and texts[-1] == "SET LOCK_TIMEOUT -1"
    lookup = conn.sent[1].compile(dialect=MSSQL)
    assert "dbo.CB_FntIsRecordLock" in lookup.params.values()
    assert "WITH (UPDLOCK, ROWLOCK)" in texts[2] and "[cbMarq] = " in texts[2]
    for statement in (texts[3], texts[8]):
        assert "dbo.CB_FntIsRecordLock(" in statement and "[F_DOCENTETE].[cbMarq]) = " in statement
    assert conn.transactions == ["committed", "committed"]

    without = GesCom(gescom.engine)
    conn = _FakeMssqlConnection(lock_function=False)
    assert _fill(without, conn, 3, "BL00001", 42, "DO_Coord01", NUMBER) == 1
    assert not any("CB_FntIsRecordLock" in str(s.compile(dialect=MSSQL)) for s in conn.sent)


@pytest.mark.parametrize("rowcount", [-1, 0, 1, 2, 7])
def test_the_outcome_is_the_re_read_never_the_rowcount(gescom, rowcount):
    """pyodbc reports a wrong rowcount behind Sage's AFTER UPDATE triggers (issue #829): whatever it says, the row
    re-read in the same transaction decides, and the session's lock timeout is put back either way."""
    conn = _FakeMssqlConnection(lock_function=True, rowcount=rowcount, writes=True)
    assert _fill(gescom, conn, 3, "BL00001", 42, "DO_Coord01", NUMBER) == 1
    assert conn.transactions == ["committed"]
    conn = _FakeMssqlConnection(lock_function=True, rowcount=rowcount, writes=False)
    assert _fill(gescom, conn, 3, "BL00001", 42, "DO_Coord01", NUMBER) == 0
    assert conn.transactions == ["rolled back"]
    assert str(conn.sent[-1].compile(dialect=MSSQL)) == "SET LOCK_TIMEOUT -1"


@pytest.mark.parametrize(
    "doc_type, field, value",
    [
        (6, "DO_Coord01", NUMBER),  # invoice: anti-fraud hash
        (7, "DO_Coord01", NUMBER),
        (0, "DO_Coord01", NUMBER),
        (4, "DO_Coord01", NUMBER),
        (5, "DO_Coord01", NUMBER),
        (True, "DO_Coord01", NUMBER),
        (3, "cbModification", NUMBER),  # technical columns, never
        (3, "cbCreateur", "X"),
        (3, "DO_Type", "1"),  # not text
        (3, "No Such Column", NUMBER),
        (3, "DO_Coord01", "X" * 26),  # wider than the column
        (3, "DO_Coord01", ""),
    ],
)
def test_the_adapter_refuses_what_must_never_be_written(gescom, gescom_db, doc_type, field, value):
    before = dump(gescom_db.engine)
    with gescom.connect() as conn, pytest.raises(ValueError):
        gescom.fill_header_field(conn, doc_type, "BL00001", 1, field, value)
    assert diff(before, dump(gescom_db.engine)) == {}


def test_the_adapter_will_not_write_inside_someone_elses_transaction(gescom):
    with gescom.connect() as conn:
        gescom.max_marqs(conn)  # autobegins
        with pytest.raises(ValueError, match="own transaction"):
            gescom.fill_header_field(conn, 3, "BL00001", 1, "DO_Coord01", NUMBER)


def test_invoices_are_never_targeted_even_with_the_number_remembered(sync, warehouse, clock, gescom_db):
    sync.settings(tracking__import_from_shop=True)
    _, bl = shipped_order(sync, warehouse, clock)
    assert write(sync, "4711", NUMBER).changed
    clock.tick()
    invoice = warehouse.transform((3, bl), 6)
    sync.run()
    before = dump(gescom_db.engine)
    result = write(sync, "4711", NUMBER)  # the shop repeats: known, remembered on the vanished BL
    assert result.changed is False and result.document == {"type": 3, "piece": bl}
    with pytest.raises(OnlyInvoicesLeft):
        write(sync, "4711", "ANOTHER1")
    assert diff(before, dump(gescom_db.engine)) == {}
    assert field_of(warehouse, 6, invoice) == ""
    assert sync.session.scalar(select(ShopOrder.snapshot).where(ShopOrder.order_key == "4711"))["tracking_numbers"] == [NUMBER]
