"""What warehouse staff do in Sage, done to a generated base the way Sage does it (Sage reference §6).

A transformation creates the target header, *moves* the source lines (their DO_Type/DO_Piece are rewritten,
provenance columns filled), splits partly taken lines, and deletes the source header once it has no line
left (or flags it DO_Reliquat = 1). Only DO_Ref, DO_NoWeb, customer, carrier are copied to the new header:
whether Sage copies Entête 1-4 is not established, so we assume the worst for the middleware: it does not.
Every write stamps cbModification like Sage's smalldatetime (rounded to the nearest minute). Each numbering
series (DO_Souche) has its own current numbers in F_DOCCURRENTPIECE, and a transformed document stays in its
source's series, so two shops' pieces never share a number (BC00042 in souche 0, BCP00042 in souche 1).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import MetaData, Table, delete, func, insert, select, update
from sqlalchemy.engine import Engine

from sync.core.sage import DocumentType

PREFIXES = {0: "DE", 1: "BC", 2: "PL", 3: "BL", 4: "BR", 5: "BA", 6: "FA", 7: "FA"}
SERIES_MARKS = {0: "", 1: "P"}  # what a souche's pieces carry after the type's letters: BC00042, BCP00042
COPIED_HEADER_FIELDS = ("DO_Ref", "DO_NoWeb", "DO_Tiers", "DO_Expedit", "DO_RefExterne", "LI_No", "DE_No", "DO_Souche")
EMPTY_DATE = datetime(1753, 1, 1)


def souche_number(value) -> int:
    """A header's DO_Souche as a number (0 for a base made before the demo had series, where it was text)."""
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isdigit() else 0


def smalldatetime(moment: datetime) -> datetime:
    """SQL Server smalldatetime: rounded to the nearest minute (10:14:45 is stored as 10:15)."""
    return (moment + timedelta(seconds=30)).replace(second=0, microsecond=0)


class Warehouse:
    def __init__(self, engine: Engine, clock: Callable[[], datetime] = datetime.now):
        self.engine = engine
        self.clock = clock
        metadata = MetaData()
        self.h = Table("F_DOCENTETE", metadata, autoload_with=engine)
        self.l = Table("F_DOCLIGNE", metadata, autoload_with=engine)
        self.current = Table("F_DOCCURRENTPIECE", metadata, autoload_with=engine)
        self.carriage = {}
        expedition = Table("P_EXPEDITION", metadata, autoload_with=engine)
        with engine.connect() as conn:
            self.carriage = {row.cbIndice: row.AR_Ref for row in conn.execute(select(expedition.c.cbIndice, expedition.c.AR_Ref))}

    # --- helpers -----------------------------------------------------------------------------------------

    def stamp(self) -> datetime:
        return smalldatetime(self.clock())

    def _next_piece(self, conn, doc_type: int, souche: int = 0) -> str:
        """The next number of this type in this souche, as Sage takes it from F_DOCCURRENTPIECE (the digits at the end
        go up by one)."""
        column = 7 if doc_type == 6 else doc_type  # posted invoices keep their number: one series for 6 and 7
        current = self.current.c
        row = conn.execute(select(self.current).where(current.DC_Domaine == 0, current.DC_IdCol == column, current.DC_Souche == souche)).first()
        number = int(re.search(r"\d*$", row.DC_Piece).group() or 0) + 1 if row else 1
        piece = f"{PREFIXES[doc_type]}{SERIES_MARKS.get(souche, f'S{souche}')}{number:05d}"
        if row:
            conn.execute(update(self.current).where(current.cbMarq == row.cbMarq).values(DC_Piece=piece))
        else:
            conn.execute(insert(self.current).values(DC_Domaine=0, DC_IdCol=column, DC_Souche=souche, DC_Piece=piece))
        return piece

    def _next_line_no(self, conn) -> int:
        return (conn.execute(select(func.max(self.l.c.DL_No))).scalar() or 0) + 1

    def _header(self, conn, doc_type: int, piece: str):
        return conn.execute(select(self.h).where(self.h.c.DO_Domaine == 0, self.h.c.DO_Type == doc_type, self.h.c.DO_Piece == piece)).first()

    def _lines(self, conn, doc_type: int, piece: str):
        return conn.execute(
            select(self.l).where(self.l.c.DO_Domaine == 0, self.l.c.DO_Type == doc_type, self.l.c.DO_Piece == piece).order_by(self.l.c.DL_Ligne)
        ).all()

    # --- what the warehouse does -------------------------------------------------------------------------

    def create_order(
        self,
        key: str,
        lines: Iterable[tuple[str, str, float | int]],
        *,
        reference: str = "",
        carrier: int = 2,
        comment: str | None = "Commande web",
        header: dict | None = None,
        when: datetime | None = None,
        customer: str = "CWEB",
        souche: int = 0,
    ) -> str:
        """A bon de commande as a connector imports it: DO_NoWeb = key, DL_PieceBC left empty, a carriage line; numbered
        in the shop's numbering series (`souche`), for the shop's customer account."""
        when = when or self.clock()
        stamp = self.stamp()
        with self.engine.begin() as conn:
            piece = self._next_piece(conn, DocumentType.BON_DE_COMMANDE, souche)
            values = {
                "DO_Domaine": 0,
                "DO_Type": 1,
                "DO_Piece": piece,
                "DO_Date": when.replace(hour=0, minute=0, second=0, microsecond=0),
                "DO_Ref": reference[:17],
                "DO_Tiers": customer,
                "DO_Souche": souche,
                "DO_NoWeb": key,
                "DO_Expedit": carrier,
                "DO_Statut": 2,
                "DO_Heure": when.strftime("000%H%M%S"),
                "DO_DateLivr": EMPTY_DATE,
                "DO_DateLivrRealisee": EMPTY_DATE,
                "DO_DateExpedition": EMPTY_DATE,
                "cbCreateur": "WEB ",
                "cbModification": stamp,
                "cbCreation": when,
                **(header or {}),
            }
            conn.execute(insert(self.h).values(**{k: v for k, v in values.items() if k in self.h.c}))
            rows = [(sku, name, quantity) for sku, name, quantity in lines]
            if carrier in self.carriage and self.carriage[carrier]:
                rows.append((self.carriage[carrier], "Frais de port", 1))
            if comment:
                rows.append(("", comment, 0))
            self._insert_order_lines(conn, piece, values["DO_Date"], rows, reference=reference, stamp=stamp, when=when, customer=customer)
        return piece

    def _insert_order_lines(self, conn, piece: str, day: datetime, rows: list, *, reference: str, stamp, when: datetime, customer: str) -> None:
        """The bon de commande's lines, numbered as Sage does (DL_Ligne by 1000, DL_No across the base)."""
        number = self._next_line_no(conn)
        for position, (sku, name, quantity) in enumerate(rows, start=1):
            conn.execute(
                insert(self.l).values(
                    DO_Domaine=0,
                    DO_Type=1,
                    DO_Piece=piece,
                    CT_Num=customer,
                    DL_Ligne=position * 1000,
                    DO_Date=day,
                    DO_Ref=reference[:17],
                    AR_Ref=sku,
                    DL_Design=name[:69],
                    DL_Qte=Decimal(str(quantity)),
                    DL_QteBC=Decimal(str(quantity)),
                    DL_DateBC=day,
                    DL_DateBL=EMPTY_DATE,
                    DL_DatePL=EMPTY_DATE,
                    DL_No=number,
                    cbCreateur="WEB ",
                    cbModification=stamp,
                    cbCreation=when,
                )
            )
            number += 1

    def transform(
        self,
        sources: tuple[int, str] | list[tuple[int, str]],
        target_type: int,
        *,
        take: dict[str, float | int] | None = None,
        reliquat: bool = True,
        header: dict | None = None,
        line_values: dict[str, dict] | None = None,
        when: datetime | None = None,
    ) -> str:
        """Transform one document (or group several, e.g. BLs into one invoice) into a new one of `target_type`.

        `take` limits the quantities moved per article (a partial delivery); what is not taken stays in the
        source as a reliquat, or is dropped with `reliquat=False`. `header` values are set on the new header
        (e.g. {"DO_Coord01": "6A12345678901"}), `line_values` on moved lines per article (e.g. DL_NoColis).
        """
        sources = [sources] if isinstance(sources, tuple) else list(sources)
        when = when or self.clock()
        stamp = self.stamp()
        with self.engine.begin() as conn:
            first = self._header(conn, *sources[0])
            if first is None:
                raise LookupError(f"no document {sources[0]}")
            piece = self._next_piece(conn, target_type, souche_number(getattr(first, "DO_Souche", 0)))
            day = when.replace(hour=0, minute=0, second=0, microsecond=0)
            values = {name: getattr(first, name) for name in COPIED_HEADER_FIELDS if name in self.h.c}
            values.update(
                DO_Domaine=0,
                DO_Type=target_type,
                DO_Piece=piece,
                DO_Date=day,
                DO_Statut=2,
                DO_Heure=when.strftime("000%H%M%S"),
                DO_DateLivr=EMPTY_DATE,
                DO_DateLivrRealisee=EMPTY_DATE,
                DO_DateExpedition=EMPTY_DATE,
                cbCreateur="USR1",
                cbModification=stamp,
                cbCreation=when,
                **(header or {}),
            )
            conn.execute(insert(self.h).values(**{k: v for k, v in values.items() if k in self.h.c}))
            number = self._next_line_no(conn)
            for doc_type, source_piece in sources:
                number = self._move_lines(conn, doc_type, source_piece, target_type, piece, day, stamp, take, reliquat, line_values or {}, number)
        return piece

    def _move_lines(self, conn, doc_type, source_piece, target_type, piece, day, stamp, take, reliquat, line_values, number) -> int:
        source = self._header(conn, doc_type, source_piece)
        if source is None:
            raise LookupError(f"no document {(doc_type, source_piece)}")
        lines = self._lines(conn, doc_type, source_piece)
        goods = [line for line in lines if line.AR_Ref and line.AR_Ref not in self.carriage.values()]
        if take is None:
            wanted = {line.cbMarq: line.DL_Qte for line in goods}
        else:  # a quantity asked for one article is shared among its lines, in order
            left = {sku: Decimal(str(quantity)) for sku, quantity in take.items()}
            wanted = {}
            for line in goods:
                wanted[line.cbMarq] = min(line.DL_Qte, left.get(line.AR_Ref, Decimal(0)))
                if line.AR_Ref in left:
                    left[line.AR_Ref] -= wanted[line.cbMarq]
        emptied = all(wanted[line.cbMarq] >= line.DL_Qte for line in goods)
        provenance = {}
        if doc_type == DocumentType.BON_DE_COMMANDE:
            provenance = {"DL_DateBC": source.DO_Date}
        elif doc_type == DocumentType.PREPARATION_DE_LIVRAISON:
            provenance = {"DL_PiecePL": source_piece, "DL_DatePL": source.DO_Date}
        elif doc_type == DocumentType.BON_DE_LIVRAISON:
            provenance = {"DL_PieceBL": source_piece, "DL_DateBL": source.DO_Date}
        for line in lines:
            is_goods = line.cbMarq in wanted
            moved = wanted[line.cbMarq] if is_goods else (line.DL_Qte if emptied or not reliquat else Decimal(0))
            target_values = {
                "DO_Type": target_type,
                "DO_Piece": piece,
                "DO_Date": day,
                "cbModification": stamp,
                **provenance,
                **({"DL_PieceBC": source_piece} if doc_type == DocumentType.BON_DE_COMMANDE and not line.DL_PieceBC else {}),
                **line_values.get(line.AR_Ref, {}),
            }
            target_values = {k: v for k, v in target_values.items() if k in self.l.c}
            if (is_goods and moved >= line.DL_Qte and moved > 0) or (not is_goods and (emptied or not reliquat)):
                conn.execute(update(self.l).where(self.l.c.cbMarq == line.cbMarq).values(**target_values))
            elif moved > 0:
                copy = {k: v for k, v in line._asdict().items() if k != "cbMarq" and self.l.c[k].computed is None}
                copy.update(target_values, DL_Qte=moved, DL_No=number)
                number += 1
                conn.execute(insert(self.l).values(**copy))
                if reliquat:
                    conn.execute(update(self.l).where(self.l.c.cbMarq == line.cbMarq).values(DL_Qte=line.DL_Qte - moved, cbModification=stamp))
                else:
                    conn.execute(delete(self.l).where(self.l.c.cbMarq == line.cbMarq))
            elif not reliquat:
                conn.execute(delete(self.l).where(self.l.c.cbMarq == line.cbMarq))
        left = conn.execute(
            select(func.count()).select_from(self.l).where(self.l.c.DO_Domaine == 0, self.l.c.DO_Type == doc_type, self.l.c.DO_Piece == source_piece)
        ).scalar()
        where = (self.h.c.DO_Domaine == 0, self.h.c.DO_Type == doc_type, self.h.c.DO_Piece == source_piece)
        if left:
            conn.execute(update(self.h).where(*where).values(DO_Reliquat=1, cbModification=stamp))
        else:
            conn.execute(delete(self.h).where(*where))
        return number

    def post(self, piece: str) -> None:
        """Mise à jour comptable: the invoice goes from type 6 to 7, header and lines."""
        stamp = self.stamp()
        with self.engine.begin() as conn:
            for table in (self.h, self.l):
                conn.execute(
                    update(table)
                    .where(table.c.DO_Domaine == 0, table.c.DO_Type == 6, table.c.DO_Piece == piece)
                    .values(DO_Type=7, cbModification=stamp)
                )

    def delete(self, doc_type: int, piece: str) -> None:
        """A document deleted in Sage (cancelled order, BL removed): no trace is left."""
        with self.engine.begin() as conn:
            for table in (self.l, self.h):
                conn.execute(delete(table).where(table.c.DO_Domaine == 0, table.c.DO_Type == doc_type, table.c.DO_Piece == piece))

    def set_header(self, doc_type: int, piece: str, **values) -> None:
        """Type something into a header field (Entête 1, a free field...)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(self.h)
                .where(self.h.c.DO_Domaine == 0, self.h.c.DO_Type == doc_type, self.h.c.DO_Piece == piece)
                .values(cbModification=self.stamp(), **values)
            )

    def set_lines(self, doc_type: int, piece: str, sku: str | None = None, **values) -> None:
        """Type something into line fields (N° colis...) of a document, optionally of one article only."""
        with self.engine.begin() as conn:
            where = [self.l.c.DO_Domaine == 0, self.l.c.DO_Type == doc_type, self.l.c.DO_Piece == piece]
            if sku is not None:
                where.append(self.l.c.AR_Ref == sku)
            conn.execute(update(self.l).where(*where).values(cbModification=self.stamp(), **values))

    def goods_of(self, doc_type: int, piece: str) -> list[str]:
        """Articles still on a document (comment and carriage lines left out), in line order."""
        with self.engine.connect() as conn:
            return [line.AR_Ref for line in self._lines(conn, doc_type, piece) if line.AR_Ref and line.AR_Ref not in self.carriage.values()]

    def documents(self, key: str) -> list[tuple[int, str]]:
        """Headers carrying this shop order (DO_NoWeb), oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(self.h.c.DO_Type, self.h.c.DO_Piece).where(self.h.c.DO_NoWeb == key).order_by(self.h.c.cbMarq))
            return [(row.DO_Type, row.DO_Piece) for row in rows]
