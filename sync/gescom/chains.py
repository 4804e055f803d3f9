"""Reading shop orders' document chains from GesCom: which orders may have changed (discovery), and their chains.

Every read goes through an access path a real Sage base indexes: the clustered key cbMarq, and the shadow
columns (`cbDO_Piece`, `cbDL_PieceBC`) behind IDO_TPIECE, IDL_PIECECOM and the document/line index. Values lists
are cut in chunks of at most `CHUNK`, so a statement never nears SQL Server's 2100-parameter limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain as joined
from itertools import islice

from sqlalchemy import String, Table, func, select, type_coerce, union_all
from sqlalchemy.engine import Connection

from sync.core.sage import FOLLOWED_TYPES, SALES_DOMAIN, DocumentType
from sync.core.settings import Settings
from sync.core.shops import ShopClaims, order_key_of, split_order_key
from sync.core.stages import Chain, Document, Line
from sync.gescom.catalog import Catalog, KeyRule
from sync.gescom.ownership import UndecidedInvoice, Verdict, invoice_origins, whose_line
from sync.gescom.values import DayValue, IntValue, Malformed, NumberValue, TextValue

CHUNK = 1000

Doc = tuple[int, str]  # (DO_Type, DO_Piece): a document
Owners = Callable[[Iterable[str]], dict[str, str]]  # BC numbers -> the shop order our store knows each belongs to
Look = tuple[Callable[[list, int], object], list]  # an indexed look-up: its condition for some values (the nth of its statement), its values


def chunks(values: Iterable, size: int = CHUNK) -> Iterator[list]:
    """`values` in lists of at most `size`, in order."""
    batch: list = []
    for value in values:
        batch.append(value)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def batched(columns: list, looks: Iterable[Look], size: int = CHUNK) -> Iterator:
    """Statements selecting `columns` through these look-ups, at most `size` values each. The look-ups of one
    statement are joined by UNION ALL: each is planned on its own (its index seek stays one), in one round trip."""
    selects: list = []
    room = size
    for condition, values in looks:
        values = values if isinstance(values, list) else list(values)
        start = 0
        while start < len(values):
            batch = values[start : start + room]  # by index: the values of a first run's look-up are copied once
            start += len(batch)
            selects.append(select(*columns).where(condition(batch, len(selects))))
            room -= len(batch)
            if not room:
                yield selects[0] if len(selects) == 1 else union_all(*selects)
                selects, room = [], size
    if selects:
        yield selects[0] if len(selects) == 1 else union_all(*selects)


def parse_document(value: str) -> Doc | None:
    """'3:BL00012' (a document's key in the order memory) -> (3, 'BL00012'); None when it is not one."""
    doc_type, _, piece = str(value).partition(":")
    return (int(doc_type), piece) if doc_type.isdigit() and piece else None


class Named:
    """Shop orders in the order first named, each with the documents that named it. Compact, as a first or full run
    names every order of the base: an order named by one document keeps the bare pair, a set only when there are more."""

    def __init__(self) -> None:
        self._held: dict[str, Doc | set[Doc] | None] = {}

    def __len__(self) -> int:
        return len(self._held)

    def in_order(self) -> list[str]:
        return list(self._held)

    def take_chunks(self, size: int) -> Iterator[dict[str, set[Doc]]]:
        """The orders in the order named, at most `size` at a time, each with its documents (`take`)."""
        while self._held:
            yield {key: self.take(key) for key in list(islice(self._held, size))}

    def add(self, key: str, docs: Iterable[Doc] = ()) -> None:
        """Name `key` (kept in the order first named), with these documents; an empty key names nothing."""
        if not key:
            return
        held = self._held.setdefault(key, None)
        for doc in docs:
            if held is None:
                held = doc
            elif isinstance(held, set):
                held.add(doc)
            elif held != doc:
                held = {held, doc}
        self._held[key] = held

    def merge(self, other: Named) -> None:
        """Add what `other` names, in its order, emptying it."""
        for key in other.in_order():
            self.add(key, other.take(key))

    def take(self, key: str) -> set[Doc]:
        """The documents that named `key`, forgotten here: a run keeps nothing of an order once its chunk is done."""
        held = self._held.pop(key, None)
        if held is None:
            return set()
        return held if isinstance(held, set) else {held}


@dataclass
class Nominations:
    """Shop orders a discovery read says may have changed. Discovery only nominates: the chain read decides.

    `documents`: the orders, each with the documents carrying its link value; `origins`: BC numbers of touched
    lines; `orphans`: touched documents that showed neither (resolved through their lines and BCs); `unclaimed`:
    documents carrying a link value that no shop's rule claims (ignored, counted on the run)."""

    documents: Named = field(default_factory=Named)
    origins: set[str] = field(default_factory=set)
    orphans: set[Doc] = field(default_factory=set)
    unclaimed: set[Doc] = field(default_factory=set)
    max_header_marq: int = 0
    max_line_marq: int = 0

    def add(self, key: str, doc: Doc | None = None) -> None:
        self.documents.add(key, () if doc is None else (doc,))

    def merge(self, other: Nominations) -> None:
        """What another discovery read nominated, added to this one's (the high-water marks stay this one's); empties `other`."""
        self.documents.merge(other.documents)
        self.origins |= other.origins
        self.orphans |= other.orphans
        self.unclaimed |= other.unclaimed


@dataclass
class LoadedChains:
    """What `ChainReader.load` found: a chain per shop order, or why it was skipped."""

    chains: dict[str, Chain] = field(default_factory=dict)
    pieces: dict[str, set[str]] = field(default_factory=dict)  # order key -> its bon de commande numbers
    malformed: dict[str, str] = field(default_factory=dict)  # order key -> what was wrong
    # order key -> the key its documents now carry (None: no shop's), when they still carry its link value but the
    # shops' rules now give them to another shop (the rules changed): not vanished, moved.
    moved: dict[str, str | None] = field(default_factory=dict)


class ColumnReader:
    """The columns of a chain read, selected as they come (text to the driver: no conversion of its own), and the
    reader of each (sync/gescom/values.py), applied once per column of each statement's rows, not cell by cell."""

    def __init__(self, columns: dict[str, tuple]):
        self.labels = tuple(columns)
        self.columns = [type_coerce(column, String()).label(label) for label, (column, _kind) in columns.items()]
        self.readers = tuple(kind.read_all for _column, kind in columns.values())

    def rows(self, result, seen: set | None = None, known: dict[int, dict] | None = None) -> list[dict]:
        """The rows of `result` as dicts of values read leniently, column by column. With `seen` (cbMarq values already
        read), a row read before is left out before any reading, and each row's cbMarq is added to it. With `known`
        (rows already read, by cbMarq), a row read before is that row, in its place, not read again."""
        raw = result.all()
        if seen is not None:
            at = self.labels.index("marq")
            raw = [row for row in raw if row[at].__class__ is not int or not (row[at] in seen or seen.add(row[at]))]
        if not known:
            return self._read(raw)
        at = self.labels.index("marq")
        fresh = iter(self._read([row for row in raw if row[at].__class__ is not int or row[at] not in known]))
        return [known[row[at]] if row[at].__class__ is int and row[at] in known else next(fresh) for row in raw]

    def _read(self, raw: list) -> list[dict]:
        if not raw:
            return []
        labels = self.labels
        values = [read(column) for read, column in zip(self.readers, zip(*raw, strict=True), strict=True)]
        return [dict(zip(labels, row, strict=True)) for row in zip(*values, strict=True)]


class _Raw:
    """A column read as the driver gives it (a shop rule's column: `ShopClaims` reads numbers and text alike)."""

    read_all = staticmethod(list)


class ChainReader:
    """Discovery and chain reads, as the settings name the link and tracking columns, through the catalog's shadow
    columns, with shop order keys made by the base's key rule and the shops' rules (`claims`; None: one shop, which
    claims every document, its keys the link values). Built by `GesCom` for each call."""

    def __init__(self, tables: dict[str, Table], catalog: Catalog, settings: Settings, rule: KeyRule, claims: ShopClaims | None = None):
        self.header, self.line = tables["F_DOCENTETE"], tables["F_DOCLIGNE"]
        self.catalog = catalog
        self.settings = settings
        self.rule = rule
        self.claims = None if claims is None or claims.kind == "all" else claims
        self.rule_columns = () if self.claims is None else tuple(self.claims.columns)

    # --- shop order keys ----------------------------------------------------------------------------------

    def key_of(self, raw_key, rule_values: tuple = ()) -> str | None:
        """The shop order key of a header whose link value is `raw_key` and whose shop rule columns hold
        `rule_values`: "" when it carries no link value, None when no shop claims it."""
        key = self.rule(raw_key)
        if not key or self.claims is None:
            return key
        claimed = self.claims.claim(dict(zip(self.rule_columns, rule_values, strict=True)), key)
        if claimed is None:
            return None
        return order_key_of(*claimed)

    def key_of_row(self, row: dict) -> str | None:
        """`key_of` for a header read through `header_columns`."""
        return self.key_of(row["key"], tuple(row[f"rule_{index}"] for index in range(len(self.rule_columns))))

    def rule_selects(self) -> list:
        """The shop rule's header columns, to select with the link value (none for a single shop)."""
        return [self.header.c[name] for name in self.rule_columns]

    def lookup_value(self, key: str) -> str:
        """The link value a shop order key is looked up by in GesCom (its shop's prefix put back), as the key rule makes it."""
        if self.claims is None:
            return key
        code, link_value = split_order_key(key, self.claims.codes)
        if self.claims.kind != "prefix":
            return link_value
        shop = self.claims.default if code is None else next(shop for shop in self.claims.shops if shop.code == code)
        return self.rule(shop.rule.values[0] + link_value)

    @property
    def link(self):
        """The header column holding the shop order's key (asked when needed: not every read uses it)."""
        return self.header.c[self.settings.link_field]

    # --- access paths a real base indexes ---------------------------------------------------------------------

    def matches(self, table: Table, source: str, values: list[str], index: int = 0):
        """`source IN values` through the shadow column's index when its definition is known (exact, binary
        match, as Sage's own look-ups), else on the text column (a scan on a real base, case-insensitive:
        callers keep only exact matches). `index`: the look-up's rank in its statement."""
        shadow = self.catalog.shadow(table.name, source)
        if shadow is not None and shadow.usable:
            return shadow.in_(table.c[shadow.column], values, index)
        return table.c[source].in_(values)

    def type_look(self, table: Table, doc_type: int) -> Callable[[list, int], object]:
        """The condition of a look-up of rows of `table` of one document type by (DO_Domaine, DO_Type, cbDO_Piece)."""

        def condition(batch: list, index: int):
            return (table.c.DO_Domaine == SALES_DOMAIN) & (table.c.DO_Type == doc_type) & self.matches(table, "DO_Piece", batch, index)

        return condition

    def document_looks(self, table: Table, documents: Iterable[Doc]) -> list[Look]:
        """Look-ups of rows of `table` by (DO_Domaine, DO_Type, cbDO_Piece), one per document type: IDO_TPIECE on
        headers, the document/line index on lines."""
        by_type: dict[int, set[str]] = {}
        for doc_type, piece in documents:
            if piece:
                by_type.setdefault(int(doc_type), set()).add(piece)
        return [(self.type_look(table, doc_type), sorted(pieces)) for doc_type, pieces in sorted(by_type.items())]

    def origin_look(self, pieces: Iterable[str]) -> Look:
        """The look-up of the lines whose BC number is one of `pieces` (IDL_PIECECOM)."""
        dl = self.line

        def condition(batch: list, index: int):
            return (dl.c.DO_Domaine == SALES_DOMAIN) & self.matches(dl, "DL_PieceBC", batch, index)

        return condition, sorted(pieces)

    def of_documents(self, conn: Connection, table: Table, columns, documents: Iterable[Doc]) -> Iterator:
        """Rows of `table` (headers or lines) of these sales documents, by (DO_Domaine, DO_Type, cbDO_Piece):
        IDO_TPIECE on headers, the document/line index on lines. One statement per chunk of CHUNK documents."""
        for statement in self.documents_statements(table, columns, documents):
            yield from conn.execute(statement)

    def documents_statements(self, table: Table, columns, documents: Iterable[Doc]) -> Iterator:
        """The statements of `of_documents`: one per chunk of CHUNK documents, a look-up per type (UNION ALL)."""
        yield from batched(columns, self.document_looks(table, documents))

    def read_documents(self, conn: Connection, table: Table, reader: ColumnReader, documents: Iterable[Doc]) -> Iterator[dict]:
        """`of_documents` read through `reader`: each row a dict of its values, read leniently."""
        for statement in self.documents_statements(table, reader.columns, documents):
            yield from reader.rows(conn.execute(statement))

    def link_matches(self, conn: Connection, keys: list[str]):
        """Headers whose link value is one of these keys, compared the way SQL Server does. No index exists on
        any link column of a real base: this is a scan of F_DOCENTETE, used only for orders we know no
        document of (never by a run)."""
        link = self.link
        values = sorted({self.lookup_value(key) for key in keys})  # another shop's order with the same link value is left out by its key
        if conn.dialect.name == "mssql":
            return link.in_(values)  # the collation itself ignores trailing spaces and case
        trimmed = func.rtrim(link)
        return (trimmed if self.rule.case_sensitive else func.upper(trimmed)).in_(values)

    # --- discovery: which shop orders may have changed (nominations only) ---------------------------------------

    def nominate(self, conn: Connection, out: Nominations, header_where, line_where) -> None:
        """Nominate into `out` the shop orders of the headers and lines these conditions select."""
        h, dl = self.header, self.line
        header_rows = conn.execute(
            select(
                type_coerce(self.link, TextValue()),
                type_coerce(h.c.DO_Type, IntValue()),
                type_coerce(h.c.DO_Piece, TextValue()),
                type_coerce(h.c.cbMarq, IntValue()),
                *self.rule_selects(),
            )
            .where(h.c.DO_Domaine == SALES_DOMAIN, h.c.DO_Type.in_(FOLLOWED_TYPES), header_where)
            .execution_options(stream_results=True, yield_per=CHUNK)
        )
        for raw_key, doc_type, piece, marq, *rule_values in header_rows:
            if isinstance(marq, int):
                out.max_header_marq = max(out.max_header_marq, marq)
            if not isinstance(doc_type, int) or not piece:
                continue  # not a document we can follow (its order, if any, is nominated by its lines)
            key = self.key_of(raw_key, tuple(rule_values))
            if key:
                out.add(key, (doc_type, piece))
                continue
            if key is None:  # unclaimed, unless its lines come from a bon de commande a shop claims (`resolve`)
                out.unclaimed.add((doc_type, piece))
            out.orphans.add((doc_type, piece))
        line_rows = conn.execute(
            select(
                type_coerce(dl.c.DO_Type, IntValue()),
                type_coerce(dl.c.DO_Piece, TextValue()),
                type_coerce(dl.c.DL_PieceBC, TextValue()),
                type_coerce(dl.c.cbMarq, IntValue()),
            )
            .where(dl.c.DO_Domaine == SALES_DOMAIN, dl.c.DO_Type.in_(FOLLOWED_TYPES), line_where)
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

    def new_rows(self, conn: Connection, header_marq: int, line_marq: int) -> Nominations:
        """Shop orders touched by headers and lines created since the high-water marks: a range of the
        clustered key cbMarq, cheap at any size. (Lines moved by a transformation keep their cbMarq: the new
        header of the target document nominates them.)"""
        out = Nominations(max_header_marq=header_marq, max_line_marq=line_marq)
        self.nominate(conn, out, self.header.c.cbMarq > header_marq, self.line.c.cbMarq > line_marq)
        return out

    def modified_rows(self, conn: Connection, since: datetime) -> Nominations:
        """Shop orders touched by rows whose cbModification is `since` or later: the safety net. No index exists
        on cbModification in a real base: this reads both tables whole, unless a DBA added one."""
        out = Nominations()
        self.nominate(conn, out, self.header.c.cbModification >= since, self.line.c.cbModification >= since)
        return out

    def resolve(self, conn: Connection, found: Nominations, owners_of: Owners | None = None) -> None:
        """Map the BC numbers and orphan documents of `found` to shop orders (added to `found.documents`).

        Orphans: their header's link value, else their lines' BC numbers. BC numbers: the shop order our store
        knows (`owners_of`), else the link value of the BC header. Every read goes through IDO_TPIECE or the
        document/line index."""
        # Only the BCs found through an orphan's lines carry documents: on a first run `found.origins` is every BC
        # number of the base, looked up as it is, without a copy or an entry per number.
        through_lines: dict[str, set[Doc]] = {}
        if found.orphans:
            self._resolve_orphans(conn, found, through_lines)
        pieces = found.origins
        more = [piece for piece in through_lines if piece not in pieces]
        if not pieces and not more:
            return

        def claim(key: str, piece: str) -> None:  # the BC, and the documents whose lines came from it
            found.documents.add(key, ((int(DocumentType.BON_DE_COMMANDE), piece), *through_lines.get(piece, ())))
            found.unclaimed.difference_update(through_lines.get(piece, ()))

        known = owners_of(joined(pieces, more)) if owners_of else {}
        for piece, key in known.items():
            if piece in pieces or piece in through_lines:
                claim(key, piece)
        unknown = sorted(piece for piece in joined(pieces, more) if piece not in known)
        columns = [type_coerce(self.header.c.DO_Piece, TextValue()), type_coerce(self.link, TextValue()), *self.rule_selects()]
        for statement in batched(columns, [(self.type_look(self.header, int(DocumentType.BON_DE_COMMANDE)), unknown)]):
            for piece, raw_key, *rule_values in conn.execute(statement):
                key = self.key_of(raw_key, tuple(rule_values))
                if key and (piece in pieces or piece in through_lines):
                    claim(key, piece)
                elif key is None:
                    found.unclaimed.add((int(DocumentType.BON_DE_COMMANDE), piece))

    def _resolve_orphans(self, conn: Connection, found: Nominations, origins: dict[str, set[Doc]]) -> None:
        """Orphans whose header carries a link value are that order's; the others go to `origins`, under the
        BC numbers of their lines."""
        h, dl = self.header, self.line
        columns = [
            type_coerce(h.c.DO_Type, IntValue()),
            type_coerce(h.c.DO_Piece, TextValue()),
            type_coerce(self.link, TextValue()),
            *self.rule_selects(),
        ]
        keyless: set[Doc] = set()
        for doc_type, piece, raw_key, *rule_values in self.of_documents(conn, h, columns, found.orphans):
            if (doc_type, piece) not in found.orphans:
                continue
            key = self.key_of(raw_key, tuple(rule_values))
            if key:
                found.add(key, (doc_type, piece))
            else:  # no link value, or one no shop claims: its lines may come from a bon de commande a shop claims
                keyless.add((doc_type, piece))
        columns = [type_coerce(dl.c.DO_Type, IntValue()), type_coerce(dl.c.DO_Piece, TextValue()), type_coerce(dl.c.DL_PieceBC, TextValue())]
        for doc_type, piece, origin in self.of_documents(conn, dl, columns, keyless):
            if origin and (doc_type, piece) in keyless:
                origins.setdefault(origin, set()).add((doc_type, piece))

    def all_documents(self, conn: Connection, unclaimed: set[Doc] | None = None) -> Iterator[tuple[str, Doc]]:
        """Every sales document carrying a link value: (key, (type, piece)), streamed (a full run: one scan). Those
        no shop claims are added to `unclaimed`."""
        h, link = self.header, self.link
        rows = conn.execute(
            select(type_coerce(link, TextValue()), type_coerce(h.c.DO_Type, IntValue()), type_coerce(h.c.DO_Piece, TextValue()), *self.rule_selects())
            .where(h.c.DO_Domaine == SALES_DOMAIN, h.c.DO_Type.in_(FOLLOWED_TYPES), link.is_not(None), link != "")
            .execution_options(stream_results=True, yield_per=CHUNK)
        )
        for raw_key, doc_type, piece, *rule_values in rows:
            if not isinstance(doc_type, int) or not piece:
                continue
            key = self.key_of(raw_key, tuple(rule_values))
            if key:
                yield key, (doc_type, piece)
            elif key is None and unclaimed is not None:
                unclaimed.add((doc_type, piece))

    # --- loading chains -----------------------------------------------------------------------------------

    def header_columns(self) -> ColumnReader:
        """What a chain read takes of a header, and how each column is read."""
        h = self.header
        columns = {
            "type": (h.c.DO_Type, IntValue),
            "piece": (h.c.DO_Piece, TextValue),
            "date": (h.c.DO_Date, DayValue),
            "marq": (h.c.cbMarq, IntValue),
            "key": (self.link, TextValue),
        }
        optional = {
            "provenance": ("DO_Provenance", IntValue),
            "expedit": ("DO_Expedit", IntValue),
            "delivered_on": ("DO_DateLivrRealisee", DayValue),
            "reference": ("DO_Ref", TextValue),
        }
        for label, (name, kind) in optional.items():
            if name in h.c:
                columns[label] = (h.c[name], kind)
        if self.settings.tracking.header_field:
            columns["tracking"] = (h.c[self.settings.tracking.header_field], TextValue)
        for index, name in enumerate(self.rule_columns):
            columns[f"rule_{index}"] = (h.c[name], _Raw)
        return ColumnReader(columns)

    def line_columns(self) -> ColumnReader:
        """What a chain read takes of a line, and how each column is read."""
        dl = self.line
        columns = {
            "type": (dl.c.DO_Type, IntValue),
            "piece": (dl.c.DO_Piece, TextValue),
            "origin": (dl.c.DL_PieceBC, TextValue),
            "sku": (dl.c.AR_Ref, TextValue),
            "quantity": (dl.c.DL_Qte, NumberValue),
            "marq": (dl.c.cbMarq, IntValue),
        }
        optional = {
            "name": ("DL_Design", TextValue),
            "position": ("DL_Ligne", IntValue),
            "piece_bl": ("DL_PieceBL", TextValue),
            "piece_pl": ("DL_PiecePL", TextValue),
            "date_bl": ("DL_DateBL", DayValue),
            "component_of": ("AR_RefCompose", TextValue),
            "rem_pied": ("DL_TRemPied", IntValue),
            "rem_exep": ("DL_TRemExep", IntValue),
            "not_delivered": ("DL_NonLivre", IntValue),
            "reference": ("DO_Ref", TextValue),
        }
        for label, (name, kind) in optional.items():
            if name in dl.c:
                columns[label] = (dl.c[name], kind)
        if self.settings.tracking.line_field:
            columns["tracking"] = (dl.c[self.settings.tracking.line_field], TextValue)
        return ColumnReader(columns)

    def load(
        self,
        conn: Connection,
        keys: list[str],
        known_pieces: dict[str, set[str]],
        carriers: dict[int, str],
        carriage: set[str],
        owners_of: Owners | None = None,
        known_documents: dict[str, set[Doc]] | None = None,
    ) -> LoadedChains:
        """The document chains of these shop orders (at most CHUNK keys), in a handful of batched statements.

        `known_pieces` are the BC numbers we already know per order, `known_documents` the documents known to
        carry (or to have carried) its link value; every read goes through the indexes of a real base: headers by
        IDO_TPIECE, lines by IDL_PIECECOM (cbDL_PieceBC) and the document/line index. Only an order we know no
        document of is looked up by its link value (a scan). `owners_of` tells which shop order (if any) our
        store knows a BC number belongs to, so a grouped invoice is not taken for one order's.
        """
        gathered = _Gathered(keys, {key: set(known_pieces.get(key, ())) for key in keys})
        # The steps of docs/concepts.md, "The document chain".
        self._read_owned_headers(conn, gathered, known_documents or {})  # 1
        owner_of_piece = {piece: key for key, values in gathered.pieces.items() for piece in values}
        learned = self._read_lines(conn, gathered, owner_of_piece, owners_of)  # 2, 3 and 4
        for origin, key in learned.items():
            gathered.pieces[key].add(origin)
        self._read_lines_of_bcs(conn, gathered, learned)
        self._read_missing_headers(conn, gathered)  # 5
        return gathered.chains(carriers, carriage)

    def _read_owned_headers(self, conn: Connection, gathered: _Gathered, known_documents: dict[str, set[Doc]]) -> None:
        """Headers of the documents we know of, and of the BCs; those carrying an order's link value are its
        (owned). An order we know nothing of is looked up by its link value."""
        h, keys, pieces = self.header, gathered.keys, gathered.pieces
        candidate_of = {doc: key for key in keys for doc in known_documents.get(key, ())}
        candidate_of |= {(int(DocumentType.BON_DE_COMMANDE), piece): key for key in keys for piece in pieces[key]}
        candidates = set(candidate_of)
        blind = [key for key in keys if not known_documents.get(key) and not pieces[key]]
        reader = self.header_columns()
        rows = list(self.read_documents(conn, h, reader, candidates))
        for batch in chunks(blind):
            where = (h.c.DO_Domaine == SALES_DOMAIN, h.c.DO_Type.in_(FOLLOWED_TYPES), self.link_matches(conn, batch))
            rows.extend(reader.rows(conn.execute(select(*reader.columns).where(*where))))
        wanted = set(keys)
        for row in rows:
            key = self.key_of_row(row)
            doc = gathered.take_header(row)
            if key not in wanted:
                self._note_moved(gathered.out, candidate_of.get(doc), key, row["key"])
                continue  # a known document that no longer carries this order's link value, or not as this shop's
            if doc is None:
                gathered.out.malformed[key] = f"a document header without a number (cbMarq {row['marq']})"
                continue
            gathered.owner_of_doc[doc] = key
            if doc[0] == DocumentType.BON_DE_COMMANDE:
                pieces[key].add(doc[1])

    def _note_moved(self, out: LoadedChains, known_by: str | None, key: str | None, raw_key) -> None:
        """A document known to be order `known_by`'s now reads as `key`: when it still carries that order's link
        value, another shop's rule claims it now (or none does): the order moved, it did not vanish."""
        if known_by is not None and self.claims is not None and key != known_by and self.rule(raw_key) == self.lookup_value(known_by):
            out.moved.setdefault(known_by, key)

    def _read_lines_of_bcs(self, conn: Connection, gathered: _Gathered, owner_of_piece: dict[str, str]) -> None:
        """Every line whose BC number is one of these (IDL_PIECECOM), taken for that BC's order."""
        reader = self.line_columns()
        for statement in batched(reader.columns, [self.origin_look(owner_of_piece)]):
            for row in reader.rows(conn.execute(statement), known=gathered.lines_read):  # most were read by `_read_lines`
                key = owner_of_piece.get(row["origin"])
                if key is not None:
                    gathered.take_line(row, key)

    def _read_lines(self, conn: Connection, gathered: _Gathered, owner_of_piece: dict[str, str], owners_of: Owners | None) -> dict[str, str]:
        """The lines whose BC number is one of these (IDL_PIECECOM), taken for that BC's order, and the lines of the
        owned documents (the document/line index), in the same statements: a line both found is taken once (its
        cbMarq), for its BC's order, then by the ownership rules. Returns the BC numbers learned (`_take_owned_lines`)."""
        reader, owned = self.line_columns(), gathered.owner_of_doc
        looks = [self.origin_look(owner_of_piece), *self.document_looks(self.line, owned)]
        rows_of_owned: list[dict] = []
        seen: set[int] = set()  # a line found by both look-ups is read once
        for statement in batched(reader.columns, looks):
            for row in reader.rows(conn.execute(statement), seen):
                if row["marq"].__class__ is int:
                    gathered.lines_read[row["marq"]] = row
                key = owner_of_piece.get(row["origin"])
                if key is not None:
                    gathered.take_line(row, key)
                if (row["type"], row["piece"]) in owned:
                    rows_of_owned.append(row)
        return self._take_owned_lines(gathered, rows_of_owned, owner_of_piece, owners_of)

    def _take_owned_lines(self, gathered: _Gathered, rows: list[dict], owner_of_piece: dict[str, str], owners_of: Owners | None) -> dict[str, str]:
        """Lines of the owned documents, each taken or left by the ownership rules (`whose_line`, then
        `invoice_origins` on an invoice). Returns the BC numbers learned on the way: BC number -> order key."""
        learned: dict[str, str] = {}
        undecided: dict[Doc, list] = {}
        for row in rows:
            doc = (row["type"], row["piece"])
            key = gathered.owner_of_doc[doc]
            verdict = whose_line(doc[0], row["origin"], gathered.pieces[key], owner_of_piece)
            if verdict is Verdict.UNDECIDED:
                undecided.setdefault(doc, []).append(row)
                continue
            if verdict is Verdict.LEARNED:
                learned[row["origin"]] = key
            if verdict is not Verdict.ANOTHER_ORDER:
                gathered.take_line(row, key)
        if undecided:
            claimed = owners_of({row["origin"] for rows in undecided.values() for row in rows}) if owners_of else {}
            for doc, rows in undecided.items():
                gathered.settle_invoice(doc, rows, claimed, learned)
        return learned

    def _read_missing_headers(self, conn: Connection, gathered: _Gathered) -> None:
        """Headers of documents the lines are in that were not read above (grouped invoices...)."""
        missing = {(data["type"], data["piece"]) for data in gathered.lines.values() if isinstance(data["type"], int)} - set(gathered.headers)
        for row in self.read_documents(conn, self.header, self.header_columns(), missing):
            if (row["type"], row["piece"]) in missing:
                gathered.take_header(row)


class _Gathered:
    """What one load has read so far, and whose it is."""

    def __init__(self, keys: list[str], pieces: dict[str, set[str]]):
        self.keys = keys
        self.pieces = pieces  # order key -> its BC numbers
        self.out = LoadedChains()
        self.headers: dict[Doc, dict] = {}
        self.owner_of_doc: dict[Doc, str] = {}  # documents carrying an order's link value
        self.lines: dict[int, dict] = {}  # cbMarq -> line
        self.line_owner: dict[int, str] = {}  # cbMarq -> order key
        self.lines_read: dict[int, dict] = {}  # cbMarq -> line, every line read, taken or not

    def take_header(self, data: dict) -> Doc | None:
        if not data["piece"] or not isinstance(data["type"], int):
            return None
        doc = (data["type"], data["piece"])
        self.headers[doc] = data
        return doc

    def take_line(self, data: dict, key: str) -> None:
        if not isinstance(data["marq"], int):
            self.out.malformed[key] = f"a line with an unreadable cbMarq ({data['marq']!r})"
            return
        self.lines[data["marq"]] = data
        self.line_owner[data["marq"]] = key

    def settle_invoice(self, doc: Doc, rows: list, claimed: dict[str, str], learned: dict[str, str]) -> None:
        """The undecided lines of an owned invoice: the owner's by `invoice_origins`, or the owner is malformed."""
        key = self.owner_of_doc[doc]
        lines = [(row["origin"], row.get("reference", "")) for row in rows]
        try:
            origins = invoice_origins(key, doc[1], lines, self.headers[doc].get("reference", ""), claimed, learned)
        except UndecidedInvoice as error:
            self.out.malformed[key] = str(error)
            return
        for row in rows:
            if row["origin"] in origins:
                learned[row["origin"]] = key
                self.take_line(row, key)

    def chains(self, carriers: dict[int, str], carriage: set[str]) -> LoadedChains:
        """One chain per order; an order with an unreadable row is skipped whole, not guessed."""
        out = self.out
        documents_of: dict[str, set[Doc]] = {key: set() for key in self.keys}
        for doc, key in self.owner_of_doc.items():
            documents_of[key].add(doc)
        line_rows: dict[str, list[dict]] = {key: [] for key in self.keys}
        for marq, data in self.lines.items():
            key = self.line_owner[marq]
            line_rows[key].append(data)
            documents_of[key].add((data["type"], data["piece"]))
        for key in self.keys:
            if key in out.malformed:
                continue
            try:
                out.chains[key] = Chain(
                    documents=[_document(self.headers[doc], carriers) for doc in sorted(documents_of[key]) if doc in self.headers],
                    lines=[_line(data, carriage) for data in line_rows[key]],
                )
            except (ValueError, TypeError) as error:
                out.malformed[key] = str(error)
                continue
            out.pieces[key] = self.pieces[key]
        return out


_DOCUMENT_CHECKED = ("date", "provenance", "expedit", "delivered_on")
_LINE_CHECKED = ("quantity", "position", "date_bl", "rem_pied", "rem_exep", "not_delivered")


def _check(data: dict, what: Callable[[dict], str], names: tuple[str, ...]) -> None:
    """Raise ValueError on the first of these values that could not be read (`what(data)` names the row, asked only then)."""
    get = data.get
    for name in names:
        value = get(name)
        if value.__class__ is Malformed:
            raise ValueError(f"{what(data)} has an unreadable {name} ({value.raw!r})")


def _document_name(data: dict) -> str:
    return f"document {data['type']}:{data['piece']}"


def _line_name(data: dict) -> str:
    return f"a line of {data['type']}:{data['piece']} (cbMarq {data['marq']})"


def _document(data: dict, carriers: dict[int, str]) -> Document:
    _check(data, _document_name, _DOCUMENT_CHECKED)
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
    if not data["piece"] or not isinstance(data["type"], int):
        raise ValueError(f"{_line_name(data)} has no document number")
    _check(data, _line_name, _LINE_CHECKED)
    get = data.get
    technical = bool(get("component_of") or get("rem_pied") or get("rem_exep") or get("not_delivered"))
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
