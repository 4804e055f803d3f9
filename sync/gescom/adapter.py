"""GesCom adapter: SQLAlchemy Core over the customer's reflected Sage tables (mssql+pyodbc, SQLite, PostgreSQL).

Everything reaching the database is a parameterised statement built from reflected `Table` objects, so a
configured column name is used only if it exists. Values lists are cut in chunks of at most `CHUNK` so a
statement never nears SQL Server's 2100-parameter limit. This module reads, but for one guarded write at its
end (`fill_header_field`: a tracking number into one empty header text field of a BC, PL or BL).
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import MetaData, String, Table, create_engine, func, literal, or_, select, text, type_coerce, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError
from sqlalchemy.types import TypeDecorator

from sync.gescom.catalog import DEFAULT_KEY_RULE, Catalog, KeyRule, read_catalog
from sync.core.sage import FOLLOWED_TYPES, SALES_DOMAIN, DocumentType, as_date, is_technical_column
from sync.core.settings import Column, GesComSchema
from sync.core.stages import Chain, Document, Line

log = logging.getLogger(__name__)

CHUNK = 1000

WRITABLE_TYPES = (DocumentType.BON_DE_COMMANDE, DocumentType.PREPARATION_DE_LIVRAISON, DocumentType.BON_DE_LIVRAISON)
RECORD_LOCK_FUNCTION = "CB_FntIsRecordLock"
LOCK_TIMEOUT_MS = 3000  # the write-back gives up on a locked row after this long
READ_LOCK_TIMEOUT_MS = 2000  # a chain read (SQL Server) waits at most this long behind a Sage transaction
HEADER_REQUIRED = ("DO_Domaine", "DO_Type", "DO_Piece", "DO_Date", "cbMarq", "cbModification")
HEADER_OPTIONAL = ("DO_Provenance", "DO_Expedit", "DO_DateLivrRealisee")
LINE_REQUIRED = ("DO_Domaine", "DO_Type", "DO_Piece", "DL_PieceBC", "AR_Ref", "DL_Qte", "cbMarq", "cbModification")
LINE_OPTIONAL = (
    "DL_Design", "DL_Ligne", "DL_PieceBL", "DL_PiecePL", "DL_DateBL",
    "AR_RefCompose", "DL_TRemPied", "DL_TRemExep", "DL_NonLivre",
)


class GesComError(RuntimeError):
    """GesCom cannot be read as needed (unreachable, table or column missing). The message says why."""


class GesComBusy(GesComError):
    """Rows are held by another transaction (a Sage user, a mass invoicing): the lock timeout ran out, or
    Sage's record lock refused the write. Nothing is wrong: retry later."""


# SQL Server: 1222 lock request time-out, 1205 deadlock victim; Sage's triggers raise its 80003 family when a
# record is locked in Sage. PostgreSQL: 55P03 lock_not_available, 40P01 deadlock. SQLite: database is locked.
_BUSY_CODES = {1222, 1205, 80003}
_BUSY_SQLSTATES = {"55P03", "40P01"}
_BUSY_WORDS = ("lock request time out", "database is locked", "database table is locked", "verrouill", "80003", "deadlock")


def is_busy(error: BaseException) -> bool:
    """Whether a database error says "held by another transaction" rather than "broken"."""
    original = getattr(error, "orig", error)
    if getattr(original, "sqlstate", None) in _BUSY_SQLSTATES or getattr(original, "pgcode", None) in _BUSY_SQLSTATES:
        return True
    for arg in getattr(original, "args", ()):
        if isinstance(arg, int) and arg in _BUSY_CODES:
            return True
    message = str(original).lower()
    return any(word in message for word in _BUSY_WORDS)


class Malformed:
    """A value that could not be read (odd date, NULL where Sage never puts one)."""

    def __init__(self, raw):
        self.raw = raw

    def __repr__(self) -> str:
        return f"Malformed({self.raw!r})"


class _Text(TypeDecorator):
    impl = String
    cache_ok = True

    def process_result_value(self, value, dialect):
        if value is None:
            return ""
        if isinstance(value, bytes):
            value = value.decode("cp1252", "replace")
        return str(value).rstrip()  # char(n) columns come back padded


class _Day(TypeDecorator):
    """A Sage date read leniently: datetime, date or ISO text -> date; sentinels -> None; junk -> Malformed."""

    impl = String
    cache_ok = True

    def process_result_value(self, value, dialect):
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.strip().replace("/", "-"))
            except ValueError:
                return Malformed(value)
        try:
            return as_date(value)
        except ValueError:
            return Malformed(value)


class _Stamp(TypeDecorator):
    """A timestamp (GesCom's clock): datetime or None."""

    impl = String
    cache_ok = True

    def process_result_value(self, value, dialect):
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.strip())
            except ValueError:
                return None
        if isinstance(value, datetime):
            return value.replace(tzinfo=None)
        return None


class _Number(TypeDecorator):
    impl = String
    cache_ok = True

    def process_result_value(self, value, dialect):
        if value is None:
            return Malformed(None)
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return Malformed(value)


class _Int(TypeDecorator):
    impl = String
    cache_ok = True

    def process_result_value(self, value, dialect):
        try:
            return int(value) if value is not None else 0
        except (TypeError, ValueError):
            return Malformed(value)


def _maps_errors(what: str):
    """Database errors inside the adapter become GesComError ("GesCom <what> failed: ..."); the cached
    schema is dropped, since a changed schema is a likely cause."""

    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except SQLAlchemyError as error:
                if is_busy(error):
                    raise GesComBusy(f"GesCom {what} waited too long for rows another transaction holds: {reason_of(error)}") from error
                self.refresh()
                raise GesComError(f"GesCom {what} failed: {reason_of(error)}") from error

        return wrapper

    return decorate


_reads_gescom = _maps_errors("query")
_writes_gescom = _maps_errors("write")


def chunks(values: Iterable, size: int = CHUNK) -> Iterator[list]:
    batch: list = []
    for value in values:
        batch.append(value)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class Nominations:
    """Shop orders a discovery read says may have changed. Discovery only nominates: the chain read decides.

    `documents`: key -> documents carrying that link value; `origins`: BC numbers of touched lines;
    `orphans`: touched documents that showed neither (resolved through their lines and BCs)."""

    documents: dict[str, set[tuple[int, str]]] = field(default_factory=dict)
    origins: set[str] = field(default_factory=set)
    orphans: set[tuple[int, str]] = field(default_factory=set)
    max_header_marq: int = 0
    max_line_marq: int = 0

    def add(self, key: str, doc: tuple[int, str] | None = None) -> None:
        documents = self.documents.setdefault(key, set())
        if doc is not None:
            documents.add(doc)

    def merge(self, other: Nominations) -> None:
        """What another discovery read nominated, added to this one's (the high-water marks stay this one's)."""
        for key, documents in other.documents.items():
            self.documents.setdefault(key, set()).update(documents)
        self.origins |= other.origins
        self.orphans |= other.orphans


@dataclass
class LoadedChains:
    chains: dict[str, Chain] = field(default_factory=dict)
    pieces: dict[str, set[str]] = field(default_factory=dict)  # order key -> its bon de commande numbers
    malformed: dict[str, str] = field(default_factory=dict)  # order key -> what was wrong


def create_gescom_engine(url: str) -> Engine:
    """An engine for the Sage base; pool_pre_ping so a restarted SQL Server does not fail the next run."""
    options: dict = {"pool_pre_ping": True}
    if url.startswith("mssql"):
        options["fast_executemany"] = False
    return create_engine(url, **options)


def parse_document(value: str) -> tuple[int, str] | None:
    """'3:BL00012' (a document's key in the order memory) -> (3, 'BL00012'); None when it is not one."""
    doc_type, _, piece = str(value).partition(":")
    return (int(doc_type), piece) if doc_type.isdigit() and piece else None


class GesCom:
    """Reads a Sage GesCom base. Tables and catalog are read once and cached; `refresh()` reads them again."""

    def __init__(self, engine: Engine, schema: str | None = None):
        self.engine = engine
        self.schema_name = schema
        self._tables: dict[str, Table] | None = None
        self._schema: GesComSchema | None = None
        self._catalog: Catalog | None = None
        self.read_lock_timeout_ms = READ_LOCK_TIMEOUT_MS

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
        """Shadow columns and their definitions, indexes, isolation options (gescom_catalog), read once."""
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

    def key_rule(self, settings: dict) -> KeyRule:
        """How shop order keys compare here (the link column's collation): see `KeyRule`."""
        return self.catalog.key_rule(self._header(), settings["link_field"])

    def order_key(self, value, settings: dict) -> str:
        """A shop order key typed by a person or sent by a client, made the way runs make keys (KeyRule);
        with the default rule (SQL Server's French_CI_AS) when GesCom cannot be asked."""
        try:
            return self.key_rule(settings)(value)
        except (GesComError, KeyError):
            return DEFAULT_KEY_RULE(value)

    @_reads_gescom
    def schema(self) -> GesComSchema:
        """The header and line columns (free fields marked from cbSysLibre), for validation and field pickers."""
        if self._schema is not None:
            return self._schema
        declared: dict[str, set[str]] = {"F_DOCENTETE": set(), "F_DOCLIGNE": set()}
        syslibre = self.tables.get("cbSysLibre")
        if syslibre is not None and {"CB_File", "CB_Name", "CB_Type"} <= set(syslibre.c.keys()):
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(type_coerce(syslibre.c.CB_File, _Text()), type_coerce(syslibre.c.CB_Name, _Text()))
                    .where(syslibre.c.CB_File.in_(list(declared)), syslibre.c.CB_Type != 0)  # type 0: deleted
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
        self.tables  # reflected once: the Sage tables are there
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

    # --- access paths a real base indexes ---------------------------------------------------------------------

    def _header(self):
        return self.tables["F_DOCENTETE"]

    def _line(self):
        return self.tables["F_DOCLIGNE"]

    def _link(self, settings: dict):
        return self._header().c[settings["link_field"]]

    def _matches(self, table: Table, source: str, values: list[str]):
        """`source IN values` through the shadow column's index when its definition is known (exact, binary
        match, as Sage's own look-ups), else on the text column (a scan on a real base, case-insensitive:
        callers keep only exact matches)."""
        shadow = self.catalog.shadow(table.name, source)
        if shadow is not None and shadow.usable:
            return table.c[shadow.column].in_([shadow.convert(value) for value in values])
        return table.c[source].in_(values)

    def _of_documents(self, conn: Connection, table: Table, columns, documents: Iterable[tuple[int, str]]) -> Iterator:
        """Rows of `table` (headers or lines) of these sales documents, by (DO_Domaine, DO_Type, cbDO_Piece):
        IDO_TPIECE on headers, the document/line index on lines. One statement per type and chunk."""
        by_type: dict[int, set[str]] = {}
        for doc_type, piece in documents:
            if piece:
                by_type.setdefault(int(doc_type), set()).add(piece)
        for doc_type, pieces in sorted(by_type.items()):
            for batch in chunks(sorted(pieces)):
                yield from conn.execute(
                    select(*columns).where(table.c.DO_Domaine == SALES_DOMAIN, table.c.DO_Type == doc_type, self._matches(table, "DO_Piece", batch))
                )

    def _link_matches(self, conn: Connection, settings: dict, keys: list[str]):
        """Headers whose link value is one of these keys, compared the way SQL Server does. No index exists on
        any link column of a real base: this is a scan of F_DOCENTETE, used only for orders we know no
        document of (never by a run)."""
        link = self._link(settings)
        if conn.dialect.name == "mssql":
            return link.in_(keys)  # the collation itself ignores trailing spaces and case
        rule = self.key_rule(settings)
        trimmed = func.rtrim(link)
        return (trimmed if rule.case_sensitive else func.upper(trimmed)).in_(keys)

    # --- discovery: which shop orders may have changed (nominations only) ---------------------------------------

    def _nominate(self, conn: Connection, settings: dict, out: Nominations, header_where, line_where) -> None:
        h, l = self._header(), self._line()
        rule = self.key_rule(settings)
        header_rows = conn.execute(
            select(type_coerce(self._link(settings), _Text()), type_coerce(h.c.DO_Type, _Int()), type_coerce(h.c.DO_Piece, _Text()), type_coerce(h.c.cbMarq, _Int()))
            .where(h.c.DO_Domaine == SALES_DOMAIN, h.c.DO_Type.in_(FOLLOWED_TYPES), header_where)
            .execution_options(stream_results=True, yield_per=CHUNK)
        )
        for raw_key, doc_type, piece, marq in header_rows:
            if isinstance(marq, int):
                out.max_header_marq = max(out.max_header_marq, marq)
            if not isinstance(doc_type, int) or not piece:
                continue  # not a document we can follow (its order, if any, is nominated by its lines)
            key = rule(raw_key)
            if key:
                out.add(key, (doc_type, piece))
            else:
                out.orphans.add((doc_type, piece))
        line_rows = conn.execute(
            select(type_coerce(l.c.DO_Type, _Int()), type_coerce(l.c.DO_Piece, _Text()), type_coerce(l.c.DL_PieceBC, _Text()), type_coerce(l.c.cbMarq, _Int()))
            .where(l.c.DO_Domaine == SALES_DOMAIN, l.c.DO_Type.in_(FOLLOWED_TYPES), line_where)
            .execution_options(stream_results=True, yield_per=CHUNK)
        )
        for doc_type, piece, origin, marq in line_rows:
            if isinstance(marq, int):
                out.max_line_marq = max(out.max_line_marq, marq)
            if not isinstance(doc_type, int):
                continue
            origin = piece if doc_type == DocumentType.BON_DE_COMMANDE else origin
            if origin:
                out.origins.add(origin)
            elif piece:
                out.orphans.add((doc_type, piece))

    @_reads_gescom
    def new_rows(self, conn: Connection, settings: dict, header_marq: int, line_marq: int) -> Nominations:
        """Shop orders touched by headers and lines created since the high-water marks: a range of the
        clustered key cbMarq, cheap at any size. (Lines moved by a transformation keep their cbMarq: the new
        header of the target document nominates them.)"""
        h, l = self._header(), self._line()
        out = Nominations(max_header_marq=header_marq, max_line_marq=line_marq)
        self._nominate(conn, settings, out, h.c.cbMarq > header_marq, l.c.cbMarq > line_marq)
        return out

    @_reads_gescom
    def modified_rows(self, conn: Connection, settings: dict, since: datetime) -> Nominations:
        """Shop orders touched by rows whose cbModification is `since` or later: the safety net. No index exists
        on cbModification in a real base: this reads both tables whole, unless a DBA added one."""
        h, l = self._header(), self._line()
        out = Nominations()
        self._nominate(conn, settings, out, h.c.cbModification >= since, l.c.cbModification >= since)
        return out

    @_reads_gescom
    def resolve(self, conn: Connection, settings: dict, found: Nominations, owners_of: Callable[[set[str]], dict[str, str]] | None = None) -> None:
        """Map the BC numbers and orphan documents of `found` to shop orders (added to `found.documents`).

        Orphans: their header's link value, else their lines' BC numbers. BC numbers: the shop order our store
        knows (`owners_of`), else the link value of the BC header. Every read goes through IDO_TPIECE or the
        document/line index."""
        h, l = self._header(), self._line()
        rule = self.key_rule(settings)
        origins: dict[str, set[tuple[int, str]]] = {piece: set() for piece in found.origins}
        if found.orphans:
            columns = [type_coerce(h.c.DO_Type, _Int()), type_coerce(h.c.DO_Piece, _Text()), type_coerce(self._link(settings), _Text())]
            keyless: set[tuple[int, str]] = set()
            for doc_type, piece, raw_key in self._of_documents(conn, h, columns, found.orphans):
                if (doc_type, piece) not in found.orphans:
                    continue
                key = rule(raw_key)
                if key:
                    found.add(key, (doc_type, piece))
                else:
                    keyless.add((doc_type, piece))
            columns = [type_coerce(l.c.DO_Type, _Int()), type_coerce(l.c.DO_Piece, _Text()), type_coerce(l.c.DL_PieceBC, _Text())]
            for doc_type, piece, origin in self._of_documents(conn, l, columns, keyless):
                if origin and (doc_type, piece) in keyless:
                    origins.setdefault(origin, set()).add((doc_type, piece))
        if not origins:
            return

        def claim(key: str, piece: str) -> None:  # the BC, and the documents whose lines came from it
            found.add(key, (int(DocumentType.BON_DE_COMMANDE), piece))
            for doc in origins[piece]:
                found.add(key, doc)

        known = owners_of(set(origins)) if owners_of else {}
        for piece, key in known.items():
            if piece in origins:
                claim(key, piece)
        unknown = [(int(DocumentType.BON_DE_COMMANDE), piece) for piece in origins if piece not in known]
        columns = [type_coerce(h.c.DO_Piece, _Text()), type_coerce(self._link(settings), _Text())]
        for piece, raw_key in self._of_documents(conn, h, columns, unknown):
            key = rule(raw_key)
            if key and piece in origins:
                claim(key, piece)

    @_reads_gescom
    def all_documents(self, conn: Connection, settings: dict) -> Iterator[tuple[str, tuple[int, str]]]:
        """Every sales document carrying a link value: (key, (type, piece)), streamed (a full run: one scan)."""
        h = self._header()
        link = self._link(settings)
        rule = self.key_rule(settings)
        rows = conn.execute(
            select(type_coerce(link, _Text()), type_coerce(h.c.DO_Type, _Int()), type_coerce(h.c.DO_Piece, _Text()))
            .where(h.c.DO_Domaine == SALES_DOMAIN, h.c.DO_Type.in_(FOLLOWED_TYPES), link.is_not(None), link != "")
            .execution_options(stream_results=True, yield_per=CHUNK)
        )
        for raw_key, doc_type, piece in rows:
            key = rule(raw_key)
            if key and isinstance(doc_type, int) and piece:
                yield key, (doc_type, piece)

    @_reads_gescom
    def now(self, conn: Connection) -> datetime:
        """GesCom's own clock: the one Sage stamps cbModification with (server local time, no zone)."""
        name = conn.dialect.name
        if name == "sqlite":
            expression = func.datetime("now", "localtime")
        elif name == "postgresql":
            expression = func.localtimestamp()
        else:  # SQL Server: CURRENT_TIMESTAMP is GETDATE()
            expression = func.current_timestamp()
        value = conn.execute(select(type_coerce(expression, _Stamp()))).scalar()
        if value is None:
            raise GesComError("GesCom did not tell its current time")
        return value

    @_reads_gescom
    def max_marqs(self, conn: Connection) -> tuple[int, int]:
        """Current cbMarq high-water marks of headers and lines (a first run starts from them)."""
        h, l = self._header(), self._line()
        header = conn.execute(select(func.max(h.c.cbMarq))).scalar() or 0
        line = conn.execute(select(func.max(l.c.cbMarq))).scalar() or 0
        return int(header), int(line)

    @_reads_gescom
    def carriers(self, conn: Connection) -> tuple[dict[int, str], set[str]]:
        """Shipping modes (P_EXPEDITION slot -> name) and the articles used for carriage lines."""
        table = self.tables.get("P_EXPEDITION")
        if table is None or "cbIndice" not in table.c or "E_Intitule" not in table.c:
            return {}, set()
        columns = [type_coerce(table.c.cbIndice, _Int()), type_coerce(table.c.E_Intitule, _Text())]
        if "AR_Ref" in table.c:
            columns.append(type_coerce(table.c.AR_Ref, _Text()))
        names, skus = {}, set()
        for row in conn.execute(select(*columns)):
            if isinstance(row[0], int) and row[1]:
                names[row[0]] = row[1]
            if len(row) > 2 and row[2]:
                skus.add(row[2])
        return names, skus

    # --- loading chains -----------------------------------------------------------------------------------

    def _header_columns(self, settings: dict):
        h = self._header()
        columns = {
            "type": type_coerce(h.c.DO_Type, _Int()),
            "piece": type_coerce(h.c.DO_Piece, _Text()),
            "date": type_coerce(h.c.DO_Date, _Day()),
            "marq": type_coerce(h.c.cbMarq, _Int()),
            "key": type_coerce(self._link(settings), _Text()),
        }
        optional = {
            "provenance": ("DO_Provenance", _Int), "expedit": ("DO_Expedit", _Int),
            "delivered_on": ("DO_DateLivrRealisee", _Day), "reference": ("DO_Ref", _Text),
        }
        for label, (name, kind) in optional.items():
            if name in h.c:
                columns[label] = type_coerce(h.c[name], kind())
        if settings["tracking"]["header_field"]:
            columns["tracking"] = type_coerce(h.c[settings["tracking"]["header_field"]], _Text())
        return [column.label(label) for label, column in columns.items()]

    def _line_columns(self, settings: dict):
        l = self._line()
        columns = {
            "type": type_coerce(l.c.DO_Type, _Int()),
            "piece": type_coerce(l.c.DO_Piece, _Text()),
            "origin": type_coerce(l.c.DL_PieceBC, _Text()),
            "sku": type_coerce(l.c.AR_Ref, _Text()),
            "quantity": type_coerce(l.c.DL_Qte, _Number()),
            "marq": type_coerce(l.c.cbMarq, _Int()),
        }
        optional = {
            "name": ("DL_Design", _Text), "position": ("DL_Ligne", _Int), "piece_bl": ("DL_PieceBL", _Text),
            "piece_pl": ("DL_PiecePL", _Text), "date_bl": ("DL_DateBL", _Day), "component_of": ("AR_RefCompose", _Text),
            "rem_pied": ("DL_TRemPied", _Int), "rem_exep": ("DL_TRemExep", _Int), "not_delivered": ("DL_NonLivre", _Int),
            "reference": ("DO_Ref", _Text),
        }
        for label, (name, kind) in optional.items():
            if name in l.c:
                columns[label] = type_coerce(l.c[name], kind())
        if settings["tracking"]["line_field"]:
            columns["tracking"] = type_coerce(l.c[settings["tracking"]["line_field"]], _Text())
        return [column.label(label) for label, column in columns.items()]

    @_reads_gescom
    def load(
        self,
        conn: Connection,
        settings: dict,
        keys: list[str],
        known_pieces: dict[str, set[str]],
        carriers: dict[int, str],
        carriage: set[str],
        owners_of: Callable[[set[str]], dict[str, str]] | None = None,
        known_documents: dict[str, set[tuple[int, str]]] | None = None,
    ) -> LoadedChains:
        """The document chains of these shop orders (at most CHUNK keys), in a handful of batched statements.

        `known_pieces` are the BC numbers we already know per order, `known_documents` the documents known to
        carry (or to have carried) its link value; every read goes through the indexes of a real base: headers by
        IDO_TPIECE, lines by IDL_PIECECOM (cbDL_PieceBC) and the document/line index. Only an order we know no
        document of is looked up by its link value (a scan). `owners_of` tells which shop order (if any) our
        store knows a BC number belongs to, so a grouped invoice is not taken for one order's.
        """
        h, l = self._header(), self._line()
        rule = self.key_rule(settings)
        out = LoadedChains()
        wanted = set(keys)
        known_documents = known_documents or {}
        headers: dict[tuple[int, str], dict] = {}
        owner_of_doc: dict[tuple[int, str], str] = {}
        pieces: dict[str, set[str]] = {key: set(known_pieces.get(key, ())) for key in keys}

        def take_header(row) -> tuple[int, str] | None:
            data = row._asdict()
            if not data["piece"] or not isinstance(data["type"], int):
                return None
            doc = (data["type"], data["piece"])
            headers[doc] = data
            return doc

        # 1. Headers of the documents we know of, and of the BCs; those that carry the order's link value are its.
        candidates = {doc for key in keys for doc in known_documents.get(key, ())}
        candidates |= {(int(DocumentType.BON_DE_COMMANDE), piece) for key in keys for piece in pieces[key]}
        blind = [key for key in keys if not known_documents.get(key) and not pieces[key]]
        rows = list(self._of_documents(conn, h, self._header_columns(settings), candidates))
        for batch in chunks(blind):
            rows.extend(conn.execute(
                select(*self._header_columns(settings)).where(
                    h.c.DO_Domaine == SALES_DOMAIN, h.c.DO_Type.in_(FOLLOWED_TYPES), self._link_matches(conn, settings, batch)
                )
            ))
        for row in rows:
            key = rule(row.key)
            doc = take_header(row)
            if key not in wanted:
                continue  # a known document that no longer carries this order's link value
            if doc is None:
                out.malformed[key] = f"a document header without a number (cbMarq {row.marq})"
                continue
            owner_of_doc[doc] = key
            if doc[0] == DocumentType.BON_DE_COMMANDE:
                pieces[key].add(doc[1])
        owner_of_piece = {piece: key for key, values in pieces.items() for piece in values}

        # 2. Lines that came from the orders' BCs, and lines of the headers found above.
        lines: dict[int, dict] = {}
        line_owner: dict[int, str] = {}

        def lines_from(origins) -> Iterator:
            for batch in chunks(sorted(origins)):
                yield from conn.execute(
                    select(*self._line_columns(settings)).where(l.c.DO_Domaine == SALES_DOMAIN, self._matches(l, "DL_PieceBC", batch))
                )

        def take_line(row, key: str) -> None:
            data = row._asdict()
            if not isinstance(data["marq"], int):
                out.malformed[key] = f"a line with an unreadable cbMarq ({data['marq']!r})"
                return
            lines[data["marq"]] = data
            line_owner[data["marq"]] = key

        for row in lines_from(owner_of_piece):
            key = owner_of_piece.get(row.origin)
            if key is not None:
                take_line(row, key)
        learned: dict[str, str] = {}
        unknown_on_invoice: dict[tuple[int, str], list] = {}
        for row in self._of_documents(conn, l, self._line_columns(settings), owner_of_doc):
            doc = (row.type, row.piece)
            key = owner_of_doc.get(doc)
            if key is None:
                continue
            origin = row.origin
            if doc[0] == DocumentType.BON_DE_COMMANDE or not origin or origin in pieces[key]:
                take_line(row, key)
            elif origin in owner_of_piece:
                continue  # a grouped document: this line belongs to another shop order of the batch
            elif doc[0] in (DocumentType.FACTURE, DocumentType.FACTURE_COMPTABILISEE):
                unknown_on_invoice.setdefault(doc, []).append(row)  # grouped invoice? decided below
            else:
                learned[origin] = key  # a BC we had never seen, gone already: its other lines are ours too
                take_line(row, key)
        if unknown_on_invoice:
            claimed = owners_of({row.origin for rows in unknown_on_invoice.values() for row in rows}) if owners_of else {}
            for doc, rows in unknown_on_invoice.items():
                key = owner_of_doc[doc]
                rows = [row for row in rows if claimed.get(row.origin, key) == key and row.origin not in learned]
                origins = {row.origin for row in rows}
                if len(origins) > 1 and "reference" in headers[doc] and headers[doc]["reference"]:
                    # Several orders invoiced together: a line keeps its order's DO_Ref, the header shows one.
                    matching = {row.origin for row in rows if getattr(row, "reference", "") == headers[doc]["reference"]}
                    origins = matching if len(matching) == 1 else origins
                if len(origins) > 1:
                    out.malformed[key] = (
                        f"invoice {doc[1]} groups lines of several orders we have not seen ({', '.join(sorted(origins))}) "
                        "and nothing tells which are this order's"
                    )
                    continue
                for row in rows:
                    if row.origin in origins:
                        learned[row.origin] = key
                        take_line(row, key)
        for origin, key in learned.items():
            pieces[key].add(origin)
        for row in lines_from(learned):
            key = learned.get(row.origin)
            if key is not None:
                take_line(row, key)

        # 3. Headers of documents the lines are in that were not read above (grouped invoices...).
        missing = {(data["type"], data["piece"]) for data in lines.values() if isinstance(data["type"], int)} - set(headers)
        for row in self._of_documents(conn, h, self._header_columns(settings), missing):
            if (row.type, row.piece) in missing:
                take_header(row)

        # 4. Build one chain per order; an order with an unreadable row is skipped whole, not guessed.
        documents_of: dict[str, set[tuple[int, str]]] = {key: set() for key in keys}
        for doc, key in owner_of_doc.items():
            documents_of[key].add(doc)
        line_rows: dict[str, list[dict]] = {key: [] for key in keys}
        for marq, data in lines.items():
            key = line_owner[marq]
            line_rows[key].append(data)
            documents_of[key].add((data["type"], data["piece"]))
        for key in keys:
            if key in out.malformed:
                continue
            try:
                out.chains[key] = Chain(
                    documents=[_document(headers[doc], carriers) for doc in sorted(documents_of[key]) if doc in headers],
                    lines=[_line(data, carriage) for data in line_rows[key]],
                )
            except (ValueError, TypeError) as error:
                out.malformed[key] = str(error)
                continue
            out.pieces[key] = pieces[key]
        return out

    # --- writing back: the adapter's one write -------------------------------------------------------------
    #
    # A tracking number the shop knows is written into ONE empty header text field of a bon de commande,
    # préparation or bon de livraison, by one guarded UPDATE (Sage reference §8.4). Never an invoice (types 6/7
    # are hashed by the anti-fraud chain), never a `cb…` column (not even cbModification), never a line.

    def _has_record_lock_function(self, conn: Connection) -> bool:
        """Whether Sage's record-lock function exists on this SQL Server base (asked once per adapter)."""
        known = getattr(self, "_record_lock_function", None)
        if known is None:
            name = f"{self.schema_name or 'dbo'}.{RECORD_LOCK_FUNCTION}"
            known = conn.execute(select(func.OBJECT_ID(name))).scalar() is not None
            self._record_lock_function = known
        return known

    @_writes_gescom
    def fill_header_field(self, conn: Connection, doc_type: int, piece: str, marq: int, field: str, value: str) -> int:
        """Write `value` into the header text column `field` of document (doc_type, piece), row `marq`, if it is empty.

        One parameterised UPDATE of one column, in its own transaction on `conn` (which must not be inside one),
        guarded by the row's identity (cbMarq, domain, type, piece), the type (1, 2 or 3 only) and the field being
        empty; on SQL Server also by Sage's record lock (a document open in Sage is not written under the user's
        feet) when the base has `CB_FntIsRecordLock`.

        The outcome is decided by re-reading the row in the same transaction, never by the driver's rowcount
        (Sage's AFTER UPDATE triggers make pyodbc report a wrong one): 1 when the row is the same document and
        its field now holds `value` (committed), else 0, rolled back (field filled, document transformed, deleted
        or locked meanwhile: the caller re-reads to tell which). A lock held too long, or refused by Sage's
        triggers, raises GesComBusy. Raises ValueError for what must never be asked (an invoice, a technical
        column). On SQL Server the session's LOCK_TIMEOUT is put back afterwards (it outlives the statement on a
        pooled connection).
        """
        if isinstance(doc_type, bool) or doc_type not in WRITABLE_TYPES:
            raise ValueError(f"document type {doc_type!r} is never written: only 1 (BC), 2 (PL) and 3 (BL)")
        if is_technical_column(field):
            raise ValueError(f"{field!r} is a technical Sage column: never written")
        h = self._header()
        if field not in h.c or not isinstance(h.c[field].type, String):
            raise ValueError(f"{field!r} is not a text column of F_DOCENTETE")
        column = h.c[field]
        width = getattr(column.type, "length", None)
        if not isinstance(value, str) or not value or (width is not None and len(value) > width):
            raise ValueError(f"{value!r} does not fit {field} ({width or 'unbounded'} characters)")
        if not piece or isinstance(marq, bool) or not isinstance(marq, int):
            raise ValueError("a document number and its cbMarq are needed")
        if conn.in_transaction():
            raise ValueError("fill_header_field runs its own transaction: end the connection's transaction first")

        mssql = conn.dialect.name == "mssql"
        try:
            with conn.begin() as transaction:
                # A row another session holds must not hang the write-back: give up after a few seconds instead.
                if conn.dialect.name == "postgresql":
                    conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'"))
                elif mssql:
                    conn.execute(text(f"SET LOCK_TIMEOUT {LOCK_TIMEOUT_MS}"))
                conditions = [
                    h.c.cbMarq == marq,
                    h.c.DO_Domaine == SALES_DOMAIN,
                    h.c.DO_Type == int(doc_type),
                    h.c.DO_Type.in_([int(t) for t in WRITABLE_TYPES]),
                    h.c.DO_Piece == piece,
                    or_(column.is_(None), column == ""),
                ]
                if mssql and self._has_record_lock_function(conn):
                    lock = getattr(func, self.schema_name or "dbo")
                    conditions.append(getattr(lock, RECORD_LOCK_FUNCTION)(h.name, h.c.cbMarq) == 0)
                # The row as it stands, locked until the end of the transaction (UPDLOCK on SQL Server, FOR UPDATE on
                # PostgreSQL): what we find after the UPDATE is then our doing, not another writer's.
                current = (
                    select(type_coerce(h.c.DO_Domaine, _Int()), type_coerce(h.c.DO_Type, _Int()), type_coerce(h.c.DO_Piece, _Text()), type_coerce(column, _Text()))
                    .where(h.c.cbMarq == marq)  # cbMarq: the clustered key
                )
                identity = (SALES_DOMAIN, int(doc_type), piece)
                before = conn.execute(current.with_hint(h, "WITH (UPDLOCK, ROWLOCK)", "mssql").with_for_update()).first()
                if before is None or tuple(before[:3]) != identity or before[3]:
                    transaction.rollback()  # gone, transformed, or filled already: the caller tells which
                    return 0
                conn.execute(update(h).where(*conditions).values({column: value}))
                # The proof: the row re-read in this transaction, never the driver's rowcount.
                after = conn.execute(current).first()
                if after is None or tuple(after) != (*identity, value):
                    transaction.rollback()
                    return 0
            return 1
        finally:
            if mssql and not conn.invalidated:
                conn.execute(text("SET LOCK_TIMEOUT -1"))
                conn.rollback()

    @_reads_gescom
    def header_field(self, conn: Connection, marq: int, field: str) -> tuple[int, str, str] | None:
        """(type, piece, value of `field`) of the sales header row `marq` as it stands now, or None if it is gone."""
        h = self._header()
        row = conn.execute(
            select(type_coerce(h.c.DO_Type, _Int()), type_coerce(h.c.DO_Piece, _Text()), type_coerce(h.c[field], _Text()))
            .where(h.c.cbMarq == marq, h.c.DO_Domaine == SALES_DOMAIN)
        ).first()
        return None if row is None else (row[0], row[1], row[2])

    # --- looking an order up ---------------------------------------------------------------------------------

    @_reads_gescom
    def keys_by_reference(self, conn: Connection, settings: dict, reference: str, limit: int = 20) -> list[str]:
        """Link values of the sales headers (types 1-7) whose DO_Ref is `reference`: the shop order reference typed
        by a person, mapped to the shop orders we follow. At most `limit`, sorted; [] when the base has no DO_Ref.
        No index exists on the header's DO_Ref in a real base: a scan, asked by a person, never by a run."""
        h = self._header()
        if "DO_Ref" not in h.c or not reference:
            return []
        link = self._link(settings)
        rule = self.key_rule(settings)
        rows = conn.execute(
            select(type_coerce(link, _Text()))
            .where(h.c.DO_Domaine == SALES_DOMAIN, h.c.DO_Type.in_(FOLLOWED_TYPES), h.c.DO_Ref == reference, link.is_not(None), link != "")
            .distinct()
            .limit(limit * 4)
        )
        return sorted({rule(key) for (key,) in rows if rule(key)})[:limit]


def _check(data: dict, what: str, *names: str) -> None:
    for name in names:
        if isinstance(data.get(name), Malformed):
            raise ValueError(f"{what} has an unreadable {name} ({data[name].raw!r})")


def _document(data: dict, carriers: dict[int, str]) -> Document:
    what = f"document {data['type']}:{data['piece']}"
    _check(data, what, "date", "provenance", "expedit", "delivered_on")
    return Document(
        doc_type=data["type"],
        piece=data["piece"],
        date=data["date"],
        marq=data["marq"] if isinstance(data["marq"], int) else 0,
        tracking=data.get("tracking", ""),
        carrier=carriers.get(data.get("expedit")),
        provenance=data.get("provenance", 0),
        delivered_on=data.get("delivered_on"),
    )


def _line(data: dict, carriage: set[str]) -> Line:
    what = f"a line of {data['type']}:{data['piece']} (cbMarq {data['marq']})"
    if not data["piece"] or not isinstance(data["type"], int):
        raise ValueError(f"{what} has no document number")
    _check(data, what, "quantity", "position", "date_bl", "rem_pied", "rem_exep", "not_delivered")
    technical = bool(data.get("component_of")) or any(data.get(name) for name in ("rem_pied", "rem_exep", "not_delivered"))
    return Line(
        doc_type=data["type"],
        piece=data["piece"],
        sku=data["sku"],
        name=data.get("name", ""),
        quantity=data["quantity"],
        origin_piece=data["piece"] if data["type"] == DocumentType.BON_DE_COMMANDE else data["origin"],
        piece_pl=data.get("piece_pl", ""),
        piece_bl=data.get("piece_bl", ""),
        tracking=data.get("tracking", ""),
        date_bl=data.get("date_bl"),
        countable=not technical and data["sku"] not in carriage,
        position=data.get("position", 0),
        marq=data["marq"],
    )


def reason_of(error: SQLAlchemyError) -> str:
    """The first line of what the driver said (no SQL, no parameters): for messages a person reads."""
    original = getattr(error, "orig", None)
    text = str(original if original is not None else error).strip().splitlines()
    return text[0] if text else error.__class__.__name__
