"""How shop order keys compare (the base's collation), whose a line of a grouped document is, and the isolation
each kind of GesCom read asks for on SQL Server (no SQL Server runs here: a recording stand-in for the connection)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from sync.gescom.adapter import GesCom
from sync.gescom.catalog import Catalog, KeyRule
from sync.gescom.ownership import UndecidedInvoice, Verdict, invoice_origins, whose_line


def test_keys_compare_like_french_ci_as():
    rule = KeyRule.from_collation("French_CI_AS", "mssql")
    assert not rule.case_sensitive and rule.accent_sensitive
    assert rule("khwtqzxnb") == rule("KHWTQZXNB") == "KHWTQZXNB"
    assert rule("4711 ") == rule("4711") == "4711"
    assert rule(" 4711") != rule("4711")  # leading spaces count, as in SQL
    assert rule("commandée") != rule("commandee")  # accent-sensitive
    assert rule(None) == "" and rule(4711) == "4711"


def test_an_accent_insensitive_base_folds_accents_too():
    rule = KeyRule.from_collation("French_CI_AI", "mssql")
    assert not rule.accent_sensitive
    assert rule("Commandée ") == rule("COMMANDEE") == "COMMANDEE"


def test_a_case_sensitive_or_binary_collation_keeps_the_case():
    for name, dialect in (("French_CS_AS", "mssql"), ("Latin1_General_BIN2", "mssql"), ("BINARY", "sqlite"), (None, "sqlite"), (None, "postgresql")):
        rule = KeyRule.from_collation(name, dialect)
        assert rule.case_sensitive, name
        assert rule("abc ") == "abc"
    assert not KeyRule.from_collation(None, "mssql").case_sensitive  # Sage installs its bases case-insensitive
    assert not KeyRule.from_collation("NOCASE", "sqlite").case_sensitive
    assert not KeyRule.from_collation("sage_ci_as", "postgresql").case_sensitive


# --- whose line: the lines of a document whose header carries the order's link value ---------------------------

BC, PL, BL, RETURN, INVOICE, POSTED_INVOICE = 1, 2, 3, 4, 6, 7


def test_a_line_of_the_orders_own_bcs_or_without_a_bc_is_its():
    ours, batch = {"BC001"}, {"BC001", "BC002"}
    assert whose_line(BL, "BC001", ours, batch) is Verdict.OURS
    assert whose_line(INVOICE, "BC001", ours, batch) is Verdict.OURS
    assert whose_line(BL, "", ours, batch) is Verdict.OURS  # a BL typed by hand
    assert whose_line(BC, "BC009", ours, batch) is Verdict.OURS  # a BC's line is the BC's, whatever it says


def test_a_line_from_a_bc_another_order_of_the_batch_owns_is_that_orders():
    for doc_type in (PL, BL, INVOICE, POSTED_INVOICE):
        assert whose_line(doc_type, "BC002", {"BC001"}, {"BC001", "BC002"}) is Verdict.ANOTHER_ORDER


def test_a_line_from_an_unknown_bc_is_learned_on_a_delivery_but_undecided_on_an_invoice():
    for doc_type in (PL, BL, RETURN):
        assert whose_line(doc_type, "BC007", {"BC001"}, {"BC001"}) is Verdict.LEARNED
    for doc_type in (INVOICE, POSTED_INVOICE):
        assert whose_line(doc_type, "BC007", {"BC001"}, {"BC001"}) is Verdict.UNDECIDED


# --- invoice_origins: the undecided lines of an invoice the order owns ---------------------------------------


def test_an_invoice_of_one_order_is_that_orders():
    lines = [("BC007", "REF7"), ("BC007", "REF7")]
    assert invoice_origins("4711", "FA001", lines, "REF7", claimed={}, decided=set()) == {"BC007"}
    assert invoice_origins("4711", "FA001", lines, "", claimed={}, decided=set()) == {"BC007"}  # no reference needed


def test_an_invoice_grouping_another_orders_bls_leaves_that_orders_lines_to_it():
    lines = [("BC007", "REF7"), ("BC008", "REF8")]
    claimed = {"BC008": "4712"}  # our store knows BC008 as shop order 4712's
    assert invoice_origins("4711", "FA001", lines, "", claimed, decided=set()) == {"BC007"}
    assert invoice_origins("4711", "FA001", lines, "", {"BC007": "4711", "BC008": "4712"}, set()) == {"BC007"}
    assert invoice_origins("4711", "FA001", [("BC008", "REF8")], "", claimed, set()) == set()  # none of it is ours


def test_a_bc_already_attributed_in_this_read_is_not_the_invoice_owners():
    lines = [("BC007", "REF7"), ("BC008", "REF8")]
    assert invoice_origins("4711", "FA001", lines, "", claimed={}, decided={"BC008"}) == {"BC007"}


def test_several_unknown_bcs_are_told_apart_by_the_header_reference():
    lines = [("BC007", "REF7"), ("BC007", "REF7"), ("BC008", "REF8")]
    assert invoice_origins("4711", "FA001", lines, "REF7", claimed={}, decided=set()) == {"BC007"}


@pytest.mark.parametrize(
    "header_reference, lines",
    [
        ("", [("BC007", "REF7"), ("BC008", "REF8")]),  # no reference on the header
        ("REF7", [("BC007", ""), ("BC008", "")]),  # none on the lines (or F_DOCLIGNE has no DO_Ref)
        ("REF9", [("BC007", "REF7"), ("BC008", "REF8")]),  # a reference of neither
        ("REF7", [("BC007", "REF7"), ("BC008", "REF7")]),  # the reference of both
    ],
)
def test_several_unknown_bcs_that_nothing_tells_apart_are_not_guessed(header_reference, lines):
    with pytest.raises(UndecidedInvoice) as caught:
        invoice_origins("4711", "FA001", lines, header_reference, claimed={}, decided=set())
    assert str(caught.value) == (
        "invoice FA001 groups lines of several orders we have not seen (BC007, BC008) and nothing tells which are this order's"
    )


class _Dialect:
    name = "mssql"


class _Recorder:
    """A Connection stand-in: records the isolation asked and the statements sent."""

    dialect = _Dialect()
    invalidated = False

    def __init__(self, log: list):
        self.log = log

    def execution_options(self, **options):
        self.log.append(("options", options))
        return self

    def exec_driver_sql(self, statement):
        self.log.append(("sql", statement))

    def rollback(self):
        self.log.append(("rollback",))

    def close(self):
        self.log.append(("close",))


def _gescom(log: list, snapshot: bool) -> GesCom:
    gescom = GesCom(create_engine("sqlite://"))
    gescom._catalog = Catalog(dialect="mssql", snapshot_allowed=snapshot, read_committed_snapshot=False)
    gescom.connect = lambda: _Recorder(log)
    return gescom


def test_chain_reads_are_committed_with_a_lock_timeout_put_back_afterwards():
    for snapshot, level in ((True, "SNAPSHOT"), (False, "READ COMMITTED")):
        log: list = []
        with _gescom(log, snapshot).reader():
            log.append(("inside",))
        assert ("options", {"isolation_level": level}) in log
        sql = [entry[1] for entry in log if entry[0] == "sql"]
        assert sql == ["SET LOCK_TIMEOUT 2000", "SET LOCK_TIMEOUT -1"]
        assert log.index(("inside",)) < log.index(("sql", "SET LOCK_TIMEOUT -1")) and log[-1] == ("close",)


def test_discovery_reads_never_wait_for_sage_users():
    log: list = []
    with _gescom(log, True).scout():
        pass
    assert ("options", {"isolation_level": "READ UNCOMMITTED"}) in log
    assert not [entry for entry in log if entry[0] == "sql"] and log[-1] == ("close",)
