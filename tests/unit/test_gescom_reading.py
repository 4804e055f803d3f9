"""How shop order keys compare (the base's collation), and the isolation each kind of GesCom read asks for on
SQL Server (no SQL Server runs here: a recording stand-in for the connection)."""
from __future__ import annotations

from sqlalchemy import create_engine

from sync.gescom.adapter import GesCom
from sync.gescom.catalog import Catalog, KeyRule


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
