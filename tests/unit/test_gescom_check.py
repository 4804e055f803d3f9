"""`flask gescom check`'s words: the key rule said with examples, the summary, the URL printed without secrets."""

from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy.engine import make_url

from sync.gescom.catalog import KeyRule
from sync.gescom.check import FAIL, NA, OK, WARN, Check, _connection, describe_key_rule, render


def test_the_key_rule_in_words_follows_the_collation():
    assert describe_key_rule(KeyRule.from_collation("French_CI_AS", "mssql")) == (
        "case-insensitive, accent-sensitive (French_CI_AS): '4711 ' and '4711' are one shop order, "
        "so are 'khwtqzxnb' and 'KHWTQZXNB'; 'cafe' and 'café' are two"
    )
    assert describe_key_rule(KeyRule.from_collation("French_CI_AI", "mssql")).endswith("so are 'cafe' and 'café'")
    assert describe_key_rule(KeyRule.from_collation("Latin1_General_BIN2", "mssql")) == (
        "case-sensitive, accent-sensitive (Latin1_General_BIN2): '4711 ' and '4711' are one shop order; "
        "'khwtqzxnb' and 'KHWTQZXNB' are two, so are 'cafe' and 'café'"
    )


def test_render_groups_by_section_and_sums_up():
    text = render(
        [
            Check("Tables", "F_DOCENTETE", OK, "found"),
            Check("Tables", "F_DOCLIGNE", FAIL, "not found"),
            Check("Isolation", "chain reads", NA, "(SQL Server only)"),
            Check("Indexes", "missing", WARN, "word " * 40),
        ],
        width=60,
    )
    lines = text.splitlines()
    assert lines[:3] == ["Tables", "  ok    F_DOCENTETE  found", "  FAIL  F_DOCLIGNE   not found"]
    assert "  n/a   chain reads  (SQL Server only)" in lines
    assert all(len(line) <= 60 for line in lines[:-1])
    assert lines[-1] == "1 failed, 1 warning, 1 ok, 1 n/a: the sync cannot run as configured."


def test_the_connection_line_shows_no_password_nor_odbc_connection_string():
    def line(url: str) -> str:
        conn = SimpleNamespace(engine=SimpleNamespace(url=make_url(url)), dialect=SimpleNamespace(name="mssql", server_version_info=(15, 0, 2000)))
        return _connection(conn).detail

    assert line("mssql+pyodbc://middleware_ro:s3cret@sage:1433/SOCIETE?driver=ODBC+Driver+18+for+SQL+Server") == (
        "mssql+pyodbc://middleware_ro:***@sage:1433/SOCIETE?driver=ODBC+Driver+18+for+SQL+Server (SQL Server 15.0.2000)"
    )
    assert "s3cret" not in line("mssql+pyodbc:///?odbc_connect=DRIVER%3D%7BODBC%7D%3BUID%3Dme%3BPWD%3Ds3cret")


def test_a_sql_server_column_without_its_own_collation_says_it_has_the_database_s():
    from sqlalchemy import Column, MetaData, String, Table

    from sync.gescom.catalog import Catalog
    from sync.gescom.check import _collations

    header = Table("F_DOCENTETE", MetaData(), Column("DO_Piece", String(13)), Column("DO_NoWeb", String(17, collation="French_CI_AI")))
    line = Table("F_DOCLIGNE", MetaData(), Column("DO_Piece", String(13)), Column("DL_PieceBC", String(13)))
    checks = {
        check.name: check.detail
        for check in _collations(Catalog("mssql", database_collation="French_CI_AS"), {"F_DOCENTETE": header, "F_DOCLIGNE": line}, "DO_NoWeb")
    }
    assert checks["F_DOCENTETE.DO_NoWeb"] == "French_CI_AI"
    assert checks["F_DOCLIGNE.DL_PieceBC"] == "French_CI_AS (the database's default)"
    assert checks["shop order keys"].startswith("case-insensitive, accent-insensitive (French_CI_AI): ")
