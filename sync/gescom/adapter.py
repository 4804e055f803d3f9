"""GesCom adapter: the `GesCom` facade over the customer's reflected Sage tables (mssql+pyodbc, SQLite, PostgreSQL).

Here: reflection of the Sage tables and of the catalog (`catalog.py`), the connection each kind of read asks
for, and a few small reads. Reading shop orders' chains is in `chains.py` (whose line is whose: `ownership.py`),
the one guarded write in `write.py`; `GesCom` is what the services call for all of them. Everything reaching
the database is a parameterised statement built from reflected `Table` objects, so a configured column name
is used only if it exists.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import MetaData, String, Table, func, literal, select, type_coerce
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

from sync.core.sage import FOLLOWED_TYPES, SALES_DOMAIN
from sync.core.settings import Settings
from sync.core.shops import ShopClaims
from sync.gescom.catalog import DEFAULT_KEY_RULE, Catalog, KeyRule, read_catalog
from sync.gescom.chains import CHUNK, ChainReader, LoadedChains, Named, Nominations, Owners, chunks, parse_document
from sync.gescom.engine import GesComLimits, create_gescom_engine
from sync.gescom.errors import GesComBusy, GesComError, is_busy, reads_gescom, reason_of, writes_gescom
from sync.gescom.settings_check import Column, GesComSchema
from sync.gescom.values import IntValue, Malformed, StampValue, TextValue
from sync.gescom.write import LOCK_TIMEOUT_MS, RECORD_LOCK_FUNCTION, WRITABLE_TYPES, HeaderWriter

# Some of these moved to the modules beside this one: still importable from here.
__all__ = [
    "CHUNK",
    "HEADER_OPTIONAL",
    "HEADER_REQUIRED",
    "LINE_OPTIONAL",
    "LINE_REQUIRED",
    "LOCK_TIMEOUT_MS",
    "READ_LOCK_TIMEOUT_MS",
    "RECORD_LOCK_FUNCTION",
    "WRITABLE_TYPES",
    "GesCom",
    "GesComBusy",
    "GesComError",
    "GesComLimits",
    "LoadedChains",
    "Malformed",
    "Named",
    "Nominations",
    "chunks",
    "create_gescom_engine",
    "is_busy",
    "parse_document",
    "reason_of",
]

log = logging.getLogger(__name__)

READ_LOCK_TIMEOUT_MS = 2000  # a chain read (SQL Server) waits at most this long behind a Sage transaction
HEADER_REQUIRED = ("DO_Domaine", "DO_Type", "DO_Piece", "DO_Date", "cbMarq", "cbModification")
HEADER_OPTIONAL = ("DO_Provenance", "DO_Expedit", "DO_DateLivrRealisee")
LINE_REQUIRED = ("DO_Domaine", "DO_Type", "DO_Piece", "DL_PieceBC", "AR_Ref", "DL_Qte", "cbMarq", "cbModification")
LINE_OPTIONAL = (
    "DL_Design",
    "DL_Ligne",
    "DL_PieceBL",
    "DL_PiecePL",
    "DL_DateBL",
    "AR_RefCompose",
    "DL_TRemPied",
    "DL_TRemExep",
    "DL_NonLivre",
)


class GesCom:
    """Reads a Sage GesCom base. Tables and catalog are read once and cached; `refresh()` reads them again."""

    def __init__(self, engine: Engine, schema: str | None = None):
        self.engine = engine
        self.schema_name = schema
        self._tables: dict[str, Table] | None = None
        self._schema: GesComSchema | None = None
        self._catalog: Catalog | None = None
        self.read_lock_timeout_ms = READ_LOCK_TIMEOUT_MS
        self._writer = HeaderWriter(schema, self._header)

    # --- schema -------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        self._tables = None
        self._schema = None
        self._catalog = None

    @property
    def tables(self) -> dict[str, Table]:
        if self._tables is None:
            metadata = MetaData(schema=self.schema_name)
            tables: dict[str, Table] = {}
            try:
                for name in ("F_DOCENTETE", "F_DOCLIGNE"):
                    tables[name] = Table(name, metadata, autoload_with=self.engine)
                for name in ("P_EXPEDITION", "cbSysLibre"):
                    try:
                        tables[name] = Table(name, metadata, autoload_with=self.engine)
                    except NoSuchTableError:
                        pass
            except NoSuchTableError as error:
                raise GesComError(f"GesCom table {error} not found: is GESCOM_DATABASE_URL the Sage company database?") from error
            except SQLAlchemyError as error:
                raise GesComError(f"GesCom is unreachable: {reason_of(error)}") from error
            for name, required in (("F_DOCENTETE", HEADER_REQUIRED), ("F_DOCLIGNE", LINE_REQUIRED)):
                missing = [column for column in required if column not in tables[name].c]
                if missing:
                    raise GesComError(f"{name} lacks the Sage columns {', '.join(missing)}")
            self._tables = tables
        return self._tables

    @property
    def catalog(self) -> Catalog:
        """Shadow columns and their definitions, indexes, isolation options (catalog.py), read once."""
        if self._catalog is None:
            tables = self.tables
            try:
                with self.engine.connect() as conn:
                    catalog = read_catalog(conn, tables, self.schema_name)
            except SQLAlchemyError as error:
                raise GesComError(f"GesCom is unreachable: {reason_of(error)}") from error
            for shadow in catalog.shadows.values():
                if not shadow.usable:
                    log.warning("GesCom: %s", shadow.note)
            self._catalog = catalog
        return self._catalog

    def key_rule(self, settings: Settings) -> KeyRule:
        """How shop order keys compare here (the link column's collation): see `KeyRule`."""
        return self.catalog.key_rule(self._header(), settings.link_field)

    def order_key(self, value, settings: Settings) -> str:
        """A shop order key typed by a person or sent by a client, made the way runs make keys (KeyRule);
        with the default rule (SQL Server's French_CI_AS) when GesCom cannot be asked."""
        try:
            return self.key_rule(settings)(value)
        except (GesComError, KeyError):
            return DEFAULT_KEY_RULE(value)

    @reads_gescom
    def schema(self) -> GesComSchema:
        """The header and line columns (free fields marked from cbSysLibre), for validation and field pickers."""
        if self._schema is not None:
            return self._schema
        declared: dict[str, set[str]] = {"F_DOCENTETE": set(), "F_DOCLIGNE": set()}
        syslibre = self.tables.get("cbSysLibre")
        if syslibre is not None and {"CB_File", "CB_Name", "CB_Type"} <= set(syslibre.c.keys()):
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(type_coerce(syslibre.c.CB_File, TextValue()), type_coerce(syslibre.c.CB_Name, TextValue())).where(
                        syslibre.c.CB_File.in_(list(declared)), syslibre.c.CB_Type != 0
                    )  # type 0: deleted
                )
                for table, name in rows:
                    declared[table].add(name)

        def describe(table: Table) -> dict[str, Column]:
            result = {}
            for column in table.columns:
                is_text = isinstance(column.type, String)
                length = getattr(column.type, "length", None) if is_text else None
                result[column.name] = Column(column.name, is_text, length, column.name in declared[table.name])
            return result

        self._schema = GesComSchema(header=describe(self.tables["F_DOCENTETE"]), line=describe(self.tables["F_DOCLIGNE"]))
        return self._schema

    def ping(self) -> None:
        """Raises GesComError when the base cannot be reached. Touches no row: a row a Sage transaction holds
        must not make GesCom look down (nor hang the caller)."""
        _ = self.tables  # reflected once: the Sage tables are there
        try:
            with self.engine.connect() as conn:
                conn.execute(select(literal(1)))
        except SQLAlchemyError as error:
            raise GesComError(f"GesCom is unreachable: {reason_of(error)}") from error

    def connect(self) -> Connection:
        try:
            return self.engine.connect()
        except SQLAlchemyError as error:
            raise GesComError(f"GesCom is unreachable: {reason_of(error)}") from error

    @contextmanager
    def scout(self) -> Iterator[Connection]:
        """A connection for discovery reads, which only nominate shop orders: on SQL Server READ UNCOMMITTED,
        so a scan never waits behind, nor blocks, a Sage user (a half-done transformation seen here is
        harmless: the chain read decides, from committed data)."""
        conn = self.connect()
        try:
            conn = conn.execution_options(gescom_read="discovery")
            if conn.dialect.name == "mssql":
                conn = conn.execution_options(isolation_level="READ UNCOMMITTED")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def reader(self) -> Iterator[Connection]:
        """A connection for the chain reads that decide stages: committed data only. On SQL Server SNAPSHOT
        when the base allows it, else READ COMMITTED; either way a lock timeout, so an order whose documents a
        Sage transaction holds fails fast (GesComBusy) and is retried next run. LOCK_TIMEOUT is put back before
        the connection returns to the pool."""
        conn = self.connect().execution_options(gescom_read="chain")
        mssql = conn.dialect.name == "mssql"
        try:
            if mssql:
                level = "SNAPSHOT" if self.catalog.snapshot_allowed else "READ COMMITTED"
                conn = conn.execution_options(isolation_level=level)
                conn.exec_driver_sql(f"SET LOCK_TIMEOUT {int(self.read_lock_timeout_ms)}")
            yield conn
        finally:
            try:
                if mssql and not conn.invalidated:
                    conn.rollback()
                    conn.exec_driver_sql("SET LOCK_TIMEOUT -1")
                    conn.rollback()
            except SQLAlchemyError:
                pass
            finally:
                conn.close()

    # --- the Sage tables ------------------------------------------------------------------------------------------

    def _header(self):
        return self.tables["F_DOCENTETE"]

    def _line(self):
        return self.tables["F_DOCLIGNE"]

    def _link(self, settings: Settings):
        return self._header().c[settings.link_field]

    def _chains(self, settings: Settings, claims: ShopClaims | None = None) -> ChainReader:
        """The chain reads for these settings and shops (the key rule asked first, as every chain read needs it)."""
        rule = self.key_rule(settings)
        return ChainReader(self.tables, self.catalog, settings, rule, claims)

    # --- discovery and chains (chains.py) -----------------------------------------------------------------------

    @reads_gescom
    def new_rows(self, conn: Connection, settings: Settings, header_marq: int, line_marq: int, claims: ShopClaims | None = None) -> Nominations:
        """Shop orders touched by headers and lines created since the cbMarq high-water marks."""
        return self._chains(settings, claims).new_rows(conn, header_marq, line_marq)

    @reads_gescom
    def modified_rows(self, conn: Connection, settings: Settings, since: datetime, claims: ShopClaims | None = None) -> Nominations:
        """Shop orders touched by rows whose cbModification is `since` or later: the safety net (a scan)."""
        return self._chains(settings, claims).modified_rows(conn, since)

    @reads_gescom
    def resolve(
        self, conn: Connection, settings: Settings, found: Nominations, owners_of: Owners | None = None, claims: ShopClaims | None = None
    ) -> None:
        """Map the BC numbers and orphan documents of `found` to shop orders (added to `found.documents`)."""
        self._chains(settings, claims).resolve(conn, found, owners_of)

    @reads_gescom
    def all_documents(
        self, conn: Connection, settings: Settings, claims: ShopClaims | None = None, unclaimed: set | None = None
    ) -> Iterator[tuple[str, tuple[int, str]]]:
        """Every sales document carrying a link value: (key, (type, piece)), streamed (a full run: one scan); those no
        shop claims go to `unclaimed`."""
        yield from self._chains(settings, claims).all_documents(conn, unclaimed)

    @reads_gescom
    def load(
        self,
        conn: Connection,
        settings: Settings,
        keys: list[str],
        known_pieces: dict[str, set[str]],
        carriers: dict[int, str],
        carriage: set[str],
        owners_of: Owners | None = None,
        known_documents: dict[str, set[tuple[int, str]]] | None = None,
        claims: ShopClaims | None = None,
    ) -> LoadedChains:
        """The document chains of these shop orders (at most CHUNK keys): see `ChainReader.load`."""
        return self._chains(settings, claims).load(conn, keys, known_pieces, carriers, carriage, owners_of, known_documents)

    # --- small reads ------------------------------------------------------------------------------------------

    @reads_gescom
    def now(self, conn: Connection) -> datetime:
        """GesCom's own clock: the one Sage stamps cbModification with (server local time, no zone)."""
        name = conn.dialect.name
        if name == "sqlite":
            expression = func.datetime("now", "localtime")
        elif name == "postgresql":
            expression = func.localtimestamp()
        else:  # SQL Server: CURRENT_TIMESTAMP is GETDATE()
            expression = func.current_timestamp()
        value = conn.execute(select(type_coerce(expression, StampValue()))).scalar()
        if value is None:
            raise GesComError("GesCom did not tell its current time")
        return value

    @reads_gescom
    def max_marqs(self, conn: Connection) -> tuple[int, int]:
        """Current cbMarq high-water marks of headers and lines (a first run starts from them)."""
        h, dl = self._header(), self._line()
        header = conn.execute(select(func.max(h.c.cbMarq))).scalar() or 0
        line = conn.execute(select(func.max(dl.c.cbMarq))).scalar() or 0
        return int(header), int(line)

    @reads_gescom
    def carriers(self, conn: Connection) -> tuple[dict[int, str], set[str]]:
        """Shipping modes (P_EXPEDITION slot -> name) and the articles used for carriage lines."""
        table = self.tables.get("P_EXPEDITION")
        if table is None or "cbIndice" not in table.c or "E_Intitule" not in table.c:
            return {}, set()
        columns = [type_coerce(table.c.cbIndice, IntValue()), type_coerce(table.c.E_Intitule, TextValue())]
        if "AR_Ref" in table.c:
            columns.append(type_coerce(table.c.AR_Ref, TextValue()))
        names, skus = {}, set()
        for row in conn.execute(select(*columns)):
            if isinstance(row[0], int) and row[1]:
                names[row[0]] = row[1]
            if len(row) > 2 and row[2]:
                skus.add(row[2])
        return names, skus

    # --- writing back: the adapter's one write (write.py) ---------------------------------------------------------

    @writes_gescom
    def fill_header_field(self, conn: Connection, doc_type: int, piece: str, marq: int, field: str, value: str) -> int:
        """Write `value` into the header text column `field` of document (doc_type, piece), row `marq`, if it is
        empty, by one guarded UPDATE: 1 when done (committed), else 0 (see `HeaderWriter.fill_header_field`)."""
        return self._writer.fill_header_field(conn, doc_type, piece, marq, field, value)

    @reads_gescom
    def header_field(self, conn: Connection, marq: int, field: str) -> tuple[int, str, str] | None:
        """(type, piece, value of `field`) of the sales header row `marq` as it stands now, or None if it is gone."""
        return self._writer.header_field(conn, marq, field)

    # --- looking an order up ---------------------------------------------------------------------------------

    @reads_gescom
    def keys_by_reference(self, conn: Connection, settings: Settings, reference: str, limit: int = 20, claims: ShopClaims | None = None) -> list[str]:
        """Link values of the sales headers (types 1-7) whose DO_Ref is `reference`: the shop order reference typed
        by a person, mapped to the shop orders we follow. At most `limit`, sorted; [] when the base has no DO_Ref.
        No index exists on the header's DO_Ref in a real base: a scan, asked by a person, never by a run."""
        h = self._header()
        if "DO_Ref" not in h.c or not reference:
            return []
        link = self._link(settings)
        reader = self._chains(settings, claims)
        rows = conn.execute(
            select(type_coerce(link, TextValue()), *reader.rule_selects())
            .where(h.c.DO_Domaine == SALES_DOMAIN, h.c.DO_Type.in_(FOLLOWED_TYPES), h.c.DO_Ref == reference, link.is_not(None), link != "")
            .distinct()
            .limit(limit * 4)
        )
        keys = (reader.key_of(raw_key, tuple(rule_values)) for raw_key, *rule_values in rows)
        return sorted({key for key in keys if key})[:limit]
