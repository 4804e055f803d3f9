"""GesCom adapter: SQLAlchemy Core over the customer's reflected Sage tables (mssql+pyodbc, SQLite, PostgreSQL).

Everything reaching the database is a parameterised statement built from reflected `Table` objects, so a
configured column name is used only if it exists. Values lists are cut in chunks of at most `CHUNK` so a
statement never nears SQL Server's 2100-parameter limit. This module reads, but for one guarded write at its
end (`fill_header_field`: a tracking number into one empty header text field of a BC, PL or BL).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import MetaData, String, Table, create_engine, func, or_, select, text, type_coerce, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError
from sqlalchemy.types import TypeDecorator

from .sage import FOLLOWED_TYPES, SALES_DOMAIN, DocumentType, as_date, is_technical_column
from .settings import Column, GesComSchema
from .stages import Chain, Document, Line

CHUNK = 1000

WRITABLE_TYPES = (DocumentType.BON_DE_COMMANDE, DocumentType.PREPARATION_DE_LIVRAISON, DocumentType.BON_DE_LIVRAISON)
RECORD_LOCK_FUNCTION = "CB_FntIsRecordLock"
LOCK_TIMEOUT_MS = 3000
HEADER_REQUIRED = ("DO_Domaine", "DO_Type", "DO_Piece", "DO_Date", "cbMarq", "cbModification")
HEADER_OPTIONAL = ("DO_Provenance", "DO_Expedit", "DO_DateLivrRealisee")
LINE_REQUIRED = ("DO_Domaine", "DO_Type", "DO_Piece", "DL_PieceBC", "AR_Ref", "DL_Qte", "cbMarq", "cbModification")
LINE_OPTIONAL = (
    "DL_Design", "DL_Ligne", "DL_PieceBL", "DL_PiecePL", "DL_DateBL",
    "AR_RefCompose", "DL_TRemPied", "DL_TRemExep", "DL_NonLivre",
)


class GesComError(RuntimeError):
    """GesCom cannot be read as needed (unreachable, table or column missing). The message says why."""


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
                self.refresh()
                raise GesComError(f"GesCom {what} failed: {_reason(error)}") from error

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
class Changes:
    """What changed in GesCom in a window: the shop orders it touches, and the new high-water marks."""

    keys: set[str] = field(default_factory=set)
    origin_pieces: set[str] = field(default_factory=set)  # BC numbers of changed lines, to map to orders
    documents: set[tuple[int, str]] = field(default_factory=set)  # documents of changed lines without origin
    max_header_marq: int = 0
    max_line_marq: int = 0


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


class GesCom:
    """Reads a Sage GesCom base. Tables are reflected once and cached; `refresh()` re-reads them."""

    def __init__(self, engine: Engine, schema: str | None = None):
        self.engine = engine
        self.schema_name = schema
        self._tables: dict[str, Table] | None = None
        self._schema: GesComSchema | None = None

    # --- schema -------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        self._tables = None
        self._schema = None

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
                raise GesComError(f"GesCom is unreachable: {_reason(error)}") from error
            for name, required in (("F_DOCENTETE", HEADER_REQUIRED), ("F_DOCLIGNE", LINE_REQUIRED)):
                missing = [column for column in required if column not in tables[name].c]
                if missing:
                    raise GesComError(f"{name} lacks the Sage columns {', '.join(missing)}")
            self._tables = tables
        return self._tables

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
        """Raises GesComError when the base cannot be reached."""
        try:
            with self.engine.connect() as conn:
                conn.execute(select(self.tables["F_DOCENTETE"].c.cbMarq).limit(1))
        except SQLAlchemyError as error:
            raise GesComError(f"GesCom is unreachable: {_reason(error)}") from error

    def connect(self) -> Connection:
        try:
            return self.engine.connect()
        except SQLAlchemyError as error:
            raise GesComError(f"GesCom is unreachable: {_reason(error)}") from error

    # --- reading changes ----------------------------------------------------------------------------------

    def _header(self):
        return self.tables["F_DOCENTETE"]

    def _line(self):
        return self.tables["F_DOCLIGNE"]

    def _link(self, settings: dict):
        return self._header().c[settings["link_field"]]

    @_reads_gescom
    def changes(self, conn: Connection, settings: dict, since: datetime, header_marq: int | None, line_marq: int | None) -> Changes:
        """Shop orders touched since `since` (cbModification) or by rows past the cbMarq high-water marks."""
        h, l = self._header(), self._line()
        link = self._link(settings)
        result = Changes(max_header_marq=header_marq or 0, max_line_marq=line_marq or 0)

        def window(table, marq):
            modified = table.c.cbModification >= since
            return or_(modified, table.c.cbMarq > marq) if marq is not None else modified

        header_rows = conn.execute(
            select(type_coerce(link, _Text()), type_coerce(h.c.cbMarq, _Int()))
            .where(h.c.DO_Domaine == SALES_DOMAIN, h.c.DO_Type.in_(FOLLOWED_TYPES), window(h, header_marq))
            .execution_options(stream_results=True, yield_per=CHUNK)
        )
        for key, marq in header_rows:
            if key:
                result.keys.add(key)
            result.max_header_marq = max(result.max_header_marq, marq if isinstance(marq, int) else 0)
        line_rows = conn.execute(
            select(
                type_coerce(l.c.DO_Type, _Int()), type_coerce(l.c.DO_Piece, _Text()), type_coerce(l.c.DL_PieceBC, _Text()),
                type_coerce(l.c.cbMarq, _Int()),
            )
            .where(l.c.DO_Domaine == SALES_DOMAIN, l.c.DO_Type.in_(FOLLOWED_TYPES), window(l, line_marq))
            .execution_options(stream_results=True, yield_per=CHUNK)
        )
        for doc_type, piece, origin, marq in line_rows:
            origin = piece if doc_type == DocumentType.BON_DE_COMMANDE else origin
            if origin:
                result.origin_pieces.add(origin)
            elif piece and isinstance(doc_type, int):
                result.documents.add((doc_type, piece))
            result.max_line_marq = max(result.max_line_marq, marq if isinstance(marq, int) else 0)
        return result

    @_reads_gescom
    def keys_of(self, conn: Connection, settings: dict, origin_pieces: Iterable[str], documents: Iterable[tuple[int, str]]) -> dict[tuple[int, str], str]:
        """Link values of bons de commande (by number) and of other documents still present: (type, piece) -> key."""
        h = self._header()
        wanted = {(int(DocumentType.BON_DE_COMMANDE), piece) for piece in origin_pieces} | set(documents)
        found: dict[tuple[int, str], str] = {}
        for batch in chunks(sorted({piece for _, piece in wanted})):
            rows = conn.execute(
                select(type_coerce(h.c.DO_Type, _Int()), type_coerce(h.c.DO_Piece, _Text()), type_coerce(self._link(settings), _Text()))
                .where(h.c.DO_Domaine == SALES_DOMAIN, h.c.DO_Piece.in_(batch))
            )
            for doc_type, piece, key in rows:
                if (doc_type, piece) in wanted and key:
                    found[(doc_type, piece)] = key
        return found

    @_reads_gescom
    def all_keys(self, conn: Connection, settings: dict) -> Iterator[str]:
        """Every shop order found in GesCom headers (for a full run), streamed."""
        h = self._header()
        link = self._link(settings)
        rows = conn.execute(
            select(type_coerce(link, _Text()))
            .where(h.c.DO_Domaine == SALES_DOMAIN, h.c.DO_Type.in_(FOLLOWED_TYPES), link.is_not(None), link != "")
            .distinct()
            .execution_options(stream_results=True, yield_per=CHUNK)
        )
        for (key,) in rows:
            if key:
                yield key

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
    ) -> LoadedChains:
        """The document chains of these shop orders (at most CHUNK keys), in a handful of batched statements.

        `known_pieces` are the BC numbers we already know per order; `owners_of` tells which shop order
        (if any) our store knows a BC number belongs to, so a grouped invoice is not taken for one order's.
        """
        h, l = self._header(), self._line()
        out = LoadedChains()
        wanted = set(keys)
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

        # 1. Headers carrying the link value.
        for batch in chunks(keys):
            for row in conn.execute(
                select(*self._header_columns(settings)).where(
                    h.c.DO_Domaine == SALES_DOMAIN, h.c.DO_Type.in_(FOLLOWED_TYPES), self._link(settings).in_(batch)
                )
            ):
                doc = take_header(row)
                if doc is None:
                    if row.key in wanted:
                        out.malformed[row.key] = f"a document header without a number (cbMarq {row.marq})"
                    continue
                owner_of_doc[doc] = row.key
                if doc[0] == DocumentType.BON_DE_COMMANDE:
                    pieces[row.key].add(doc[1])
        owner_of_piece = {piece: key for key, values in pieces.items() for piece in values}

        # 2. Lines that came from the orders' BCs, and lines of the headers found above.
        lines: dict[int, dict] = {}
        line_owner: dict[int, str] = {}

        def read_lines(condition_for_batch, values) -> list:
            rows = []
            for batch in chunks(sorted(values)):
                rows.extend(conn.execute(select(*self._line_columns(settings)).where(l.c.DO_Domaine == SALES_DOMAIN, condition_for_batch(batch))))
            return rows

        def take_line(row, key: str) -> None:
            data = row._asdict()
            if not isinstance(data["marq"], int):
                out.malformed[key] = f"a line with an unreadable cbMarq ({data['marq']!r})"
                return
            lines[data["marq"]] = data
            line_owner[data["marq"]] = key

        for row in read_lines(lambda batch: l.c.DL_PieceBC.in_(batch), owner_of_piece):
            take_line(row, owner_of_piece[row.origin])
        learned: dict[str, str] = {}
        unknown_on_invoice: dict[tuple[int, str], list] = {}
        for row in read_lines(lambda batch: l.c.DO_Piece.in_(batch), {piece for _, piece in owner_of_doc}):
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
        for row in read_lines(lambda batch: l.c.DL_PieceBC.in_(batch), learned):
            take_line(row, learned[row.origin])

        # 3. Headers of documents the lines are in that were not found by link value (grouped invoices...).
        missing = {(data["type"], data["piece"]) for data in lines.values() if isinstance(data["type"], int)} - set(headers)
        for batch in chunks(sorted({piece for _, piece in missing})):
            for row in conn.execute(select(*self._header_columns(settings)).where(h.c.DO_Domaine == SALES_DOMAIN, h.c.DO_Piece.in_(batch))):
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
            except ValueError as error:
                out.malformed[key] = str(error)
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
        feet) when the base has `CB_FntIsRecordLock`. Returns the rows changed: 1, or 0 when the guard held (field
        filled, document transformed/deleted/locked meanwhile: the caller re-reads to tell which). More than one
        row is never committed. Raises ValueError for what must never be asked (an invoice, a technical column).
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

        with conn.begin() as transaction:
            # A row another session holds must not hang the write-back: give up after a few seconds instead.
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'"))
            elif conn.dialect.name == "mssql":
                conn.execute(text(f"SET LOCK_TIMEOUT {LOCK_TIMEOUT_MS}"))
            conditions = [
                h.c.cbMarq == marq,
                h.c.DO_Domaine == SALES_DOMAIN,
                h.c.DO_Type == int(doc_type),
                h.c.DO_Type.in_([int(t) for t in WRITABLE_TYPES]),
                h.c.DO_Piece == piece,
                or_(column.is_(None), column == ""),
            ]
            if conn.dialect.name == "mssql" and self._has_record_lock_function(conn):
                lock = getattr(func, self.schema_name or "dbo")
                conditions.append(getattr(lock, RECORD_LOCK_FUNCTION)(h.name, h.c.cbMarq) == 0)
            changed = conn.execute(update(h).where(*conditions).values({column: value})).rowcount
            if changed > 1:
                raise GesComError(f"writing {field} of {doc_type}:{piece} would change {changed} rows: rolled back")
            if changed != 1:
                transaction.rollback()
                return 0
        return 1

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
        by a person, mapped to the shop orders we follow. At most `limit`, sorted; [] when the base has no DO_Ref."""
        h = self._header()
        if "DO_Ref" not in h.c or not reference:
            return []
        link = self._link(settings)
        rows = conn.execute(
            select(type_coerce(link, _Text()))
            .where(h.c.DO_Domaine == SALES_DOMAIN, h.c.DO_Type.in_(FOLLOWED_TYPES), h.c.DO_Ref == reference, link.is_not(None), link != "")
            .distinct()
            .order_by(type_coerce(link, _Text()))
            .limit(limit)
        )
        return [key for (key,) in rows if key]


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


def _reason(error: SQLAlchemyError) -> str:
    original = getattr(error, "orig", None)
    text = str(original if original is not None else error).strip().splitlines()
    return text[0] if text else error.__class__.__name__
