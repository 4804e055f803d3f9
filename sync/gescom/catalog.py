"""What a Sage base looks like to a query, read once at start-up (Sage reference §8.5).

- **Shadow columns.** A real base indexes the computed binary columns (`cbDO_Piece`, `cbDL_PieceBC`...), not
  the text beside them. Each definition is read from the live base (on SQL Server `sys.computed_columns`,
  through the reflection; on PostgreSQL and SQLite their generated-column expression) and, when it has the
  form we know, a look-up compares the shadow column with the parameter converted by that same expression:
  an index seek. Any other definition falls back to the text column (a scan on a real base) and says so.
- **Collation.** The link value's collation tells how SQL compares shop order keys (`French_CI_AS`: case and
  trailing spaces ignored; `_AI`: accents too), and `KeyRule` makes Python's keys compare the same way.
- **Indexes** on `cbModification` (none on a real base unless a DBA adds one) decide the detection strategy.
- **Isolation** (SQL Server): whether SNAPSHOT is allowed and READ_COMMITTED_SNAPSHOT is on.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from sqlalchemy import LargeBinary, String, Table, Text, bindparam, cast, func, inspect, literal, text, type_coerce
from sqlalchemy.dialects.mssql import VARBINARY
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator

# Text columns looked up by value, and the shadow column a real base indexes for each.
SHADOWS = {
    "F_DOCENTETE": {"DO_Piece": "cbDO_Piece"},
    "F_DOCLIGNE": {"DO_Piece": "cbDO_Piece", "DL_PieceBC": "cbDL_PieceBC", "DL_PieceBL": "cbDL_PieceBL", "DL_PiecePL": "cbDL_PiecePL"},
}
# The indexes the sync relies on: (table, leading columns). IDO_TPIECE and IDL_PIECE may carry more columns.
RELIED_ON = {
    "F_DOCENTETE": [("DO_Domaine", "DO_Type", "cbDO_Piece")],
    "F_DOCLIGNE": [("cbDL_PieceBC",), ("DO_Domaine", "DO_Type", "cbDO_Piece")],
}
MODIFICATION = "cbModification"

_MSSQL = re.compile(
    r"^\(*\s*convert\s*\(\s*\[?varbinary\]?\s*\(\s*(?P<length>\d+|max)\s*\)\s*,\s*\[?(?P<column>\w+)\]?\s*(?:,\s*\(*0\)*\s*)?\)\s*\)*$",
    re.IGNORECASE,
)
_POSTGRESQL = re.compile(r'^\(*\s*(?P<function>[\w.]+)\s*\(\s*\(*"?(?P<column>\w+)"?\)*(?:::text)?\s*\)\s*\)*$', re.IGNORECASE)
_SQLITE = re.compile(r'^\(*\s*cast\s*\(\s*"?(?P<column>\w+)"?\s+as\s+blob\s*\)\s*\)*$', re.IGNORECASE)


@dataclass(frozen=True)
class KeyRule:
    """Python's side of the base's collation for shop order keys (link values).

    SQL Server ignores trailing spaces in `=`, and a `_CI` collation ignores case (`_AI` accents too), so
    `'4711 '`/`'4711'` and `'KHWTQZXNB'`/`'khwtqzxnb'` are one shop order each. A key is the link value with
    trailing spaces dropped, in upper case unless the collation is case-sensitive, without accents when it
    is accent-insensitive. Leading spaces count, as they do in SQL.
    """

    case_sensitive: bool = False
    accent_sensitive: bool = True
    collation: str | None = None

    def __call__(self, value) -> str:
        if value is None:
            return ""
        key = str(value).rstrip(" ")
        if not self.case_sensitive:
            key = key.upper()
        if not self.accent_sensitive:
            key = "".join(c for c in unicodedata.normalize("NFKD", key) if not unicodedata.combining(c))
            key = unicodedata.normalize("NFC", key)
        return key

    @classmethod
    def from_collation(cls, name: str | None, dialect: str) -> KeyRule:
        """From a collation's name: SQL Server `French_CI_AS`, SQLite `NOCASE`, PostgreSQL an ICU `..._ci_as`.

        Unknown or absent: SQL Server bases are case-insensitive (Sage installs them so); elsewhere binary."""
        label = (name or "").upper()
        if label == "NOCASE" or "_CI" in label:
            return cls(case_sensitive=False, accent_sensitive="_AI" not in label, collation=name)
        if "_CS" in label or label in ("BINARY", "RTRIM", "C", "POSIX") or label.endswith("_BIN") or label.endswith("_BIN2"):
            return cls(case_sensitive=True, accent_sensitive=True, collation=name)
        if dialect == "mssql":
            return cls(collation=name)
        return cls(case_sensitive=True, accent_sensitive=True, collation=name)


DEFAULT_KEY_RULE = KeyRule()


class ShadowParameter(TypeDecorator):
    """A look-up value converted in SQL the way its shadow column is computed, around each value of an expanding
    IN: one cached statement whatever the number of values (a list of converted literals is compiled every time)."""

    impl = String
    cache_ok = True

    def __init__(self, dialect: str, size: int | None = None, text_length: int | None = None, function: str | None = None):
        super().__init__()
        self.dialect_name, self.size, self.text_length, self.function = dialect, size, text_length, function

    def bind_expression(self, bindvalue):
        return self.converted(type_coerce(bindvalue, String()))

    def converted(self, value: ColumnElement) -> ColumnElement:
        """`value` (text) as the shadow column's expression computes it from the text column."""
        if self.dialect_name == "mssql":
            # The parameter as the column's varchar (pyodbc sends str as nvarchar: UTF-16 bytes), then binary.
            return cast(cast(value, String(self.text_length)), VARBINARY(self.size) if self.size else VARBINARY("max"))
        if self.dialect_name == "postgresql":
            target = func
            for part in self.function.split("."):
                target = getattr(target, part)
            return target(cast(value, Text()))
        return cast(value, LargeBinary())


@dataclass(frozen=True)
class Shadow:
    """The shadow column of a text column, and how to convert a parameter the way it was computed."""

    table: str
    source: str
    column: str
    definition: str | None
    parameter: ShadowParameter | None = None
    note: str = ""

    @property
    def usable(self) -> bool:
        return self.parameter is not None

    def convert(self, value: str) -> ColumnElement:
        """One value converted the way the shadow column is computed."""
        return self.parameter.converted(literal(value, String()))

    def in_(self, column: ColumnElement, values: list[str], index: int = 0) -> ColumnElement:
        """`column IN values`, each value converted in SQL, as one expanding parameter (`index` names it apart from
        the other look-ups of the same statement)."""
        if not values:
            return column.in_([])
        name = f"{self.column}_values_in{index}" if index else f"{self.column}_values"
        return column.in_(bindparam(name, list(values), expanding=True, type_=self.parameter))


def read_shadow(table: Table, source: str, shadow: str, dialect: str) -> Shadow:
    """The shadow column `shadow` of `table.source`, usable when its definition has a form we know."""
    if shadow not in table.c:
        return Shadow(table.name, source, shadow, None, note=f"{table.name} has no column {shadow}: look-ups use {source} (a table scan)")
    computed = table.c[shadow].computed
    definition = str(computed.sqltext).strip() if computed is not None else None
    if definition is None:
        return Shadow(table.name, source, shadow, None, note=f"{shadow} is not a computed column: look-ups use {source} (a table scan)")
    length = getattr(table.c[source].type, "length", None) if source in table.c else None
    parameter = None
    if dialect == "mssql" and (match := _MSSQL.match(definition)) and match["column"].lower() == source.lower():
        size = None if match["length"].lower() == "max" else int(match["length"])
        parameter = ShadowParameter(dialect, size=size, text_length=length or size)
    elif dialect == "postgresql" and (match := _POSTGRESQL.match(definition)) and match["column"] == source:
        parameter = ShadowParameter(dialect, function=match["function"])
    elif dialect == "sqlite" and (match := _SQLITE.match(definition)) and match["column"] == source:
        parameter = ShadowParameter(dialect)
    if parameter is None:
        return Shadow(
            table.name,
            source,
            shadow,
            definition,
            note=f"{shadow} is computed as {definition!r}, not a form we know: look-ups use {source} (a table scan)",
        )
    return Shadow(table.name, source, shadow, definition, parameter, note=f"{shadow} = {definition}")


@dataclass
class Catalog:
    """What the sync relies on in this base, read once (GesCom.catalog); `refresh()` reads it again."""

    dialect: str
    shadows: dict[tuple[str, str], Shadow] = field(default_factory=dict)
    indexes: dict[str, list[tuple[str, tuple[str, ...]]]] = field(default_factory=dict)
    database_collation: str | None = None  # SQL Server: the default of columns that name none
    collations: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, column) -> collation, where named
    read_committed_snapshot: bool | None = None  # SQL Server only
    snapshot_allowed: bool | None = None  # SQL Server only

    @property
    def modification_indexed(self) -> bool:
        """Both tables have an index led by cbModification: the modification window is cheap every run."""
        return all(any(columns and columns[0] == MODIFICATION for _, columns in self.indexes.get(name, [])) for name in SHADOWS)

    def key_rule(self, table: Table, link_field: str) -> KeyRule:
        """How the base compares values of the link column (its own collation, else the database's)."""
        return KeyRule.from_collation(self.collation(table, link_field), self.dialect)

    def collation(self, table: Table, column_name: str) -> str | None:
        """The collation a text column compares with: its own, else (SQL Server) the database's."""
        column = table.c.get(column_name)
        named = getattr(column.type, "collation", None) if column is not None else None
        return named or self.collations.get((table.name, column_name)) or self.database_collation

    def shadow(self, table: str, source: str) -> Shadow | None:
        return self.shadows.get((table, source))

    def missing_indexes(self) -> list[str]:
        """The indexes the sync relies on that this base lacks, in words."""
        missing = []
        for table, wanted in RELIED_ON.items():
            have = [columns for _, columns in self.indexes.get(table, [])]
            for columns in wanted:
                if not any(tuple(found[: len(columns)]) == columns for found in have):
                    missing.append(f"{table} ({', '.join(columns)})")
        return missing


def read_catalog(conn: Connection, tables: dict[str, Table], schema: str | None = None) -> Catalog:
    dialect = conn.dialect.name
    catalog = Catalog(dialect=dialect)
    inspector = inspect(conn)
    for name, sources in SHADOWS.items():
        table = tables[name]
        for source, shadow in sources.items():
            if source in table.c:
                catalog.shadows[(name, source)] = read_shadow(table, source, shadow, dialect)
        catalog.indexes[name] = [
            (index["name"], tuple(column for column in index["column_names"] if column)) for index in inspector.get_indexes(name, schema=schema)
        ]
    catalog.collations = _column_collations(conn, tables, schema)
    if dialect == "mssql":
        catalog.database_collation = conn.execute(text("SELECT CONVERT(nvarchar(128), DATABASEPROPERTYEX(DB_NAME(), 'Collation'))")).scalar()
        row = conn.execute(text("SELECT snapshot_isolation_state, is_read_committed_snapshot_on FROM sys.databases WHERE name = DB_NAME()")).first()
        if row is not None:
            catalog.snapshot_allowed = row[0] == 1
            catalog.read_committed_snapshot = bool(row[1])
    return catalog


def _column_collations(conn: Connection, tables: dict[str, Table], schema: str | None) -> dict[tuple[str, str], str]:
    """Collations the reflection does not report (SQL Server's it does): PostgreSQL's catalog, SQLite's DDL."""
    found: dict[tuple[str, str], str] = {}
    for name in SHADOWS:
        if conn.dialect.name == "postgresql":
            relation = f'"{schema}"."{name}"' if schema else f'"{name}"'
            rows = conn.execute(
                text(
                    "SELECT a.attname, c.collname FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation "
                    "WHERE a.attrelid = to_regclass(:relation) AND a.attnum > 0 AND NOT a.attisdropped"
                ),
                {"relation": relation},
            )
            found.update({(name, column): collation for column, collation in rows if collation != "default"})
        elif conn.dialect.name == "sqlite":
            ddl = conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"), {"name": name}).scalar() or ""
            for column, collation in re.findall(r'"([^"]+)"[^,"]*?COLLATE\s+"?(\w+)"?', ddl, re.IGNORECASE):
                found[(name, column)] = collation
    return found
