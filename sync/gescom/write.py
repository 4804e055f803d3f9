"""The adapter's one write: a tracking number the shop knows, into ONE empty header text field of a bon de
commande, préparation or bon de livraison, by one guarded UPDATE (Sage reference §8.4).

Never an invoice (types 6/7 are hashed by the anti-fraud chain), never a `cb…` column (not even
cbModification), never a line. The outcome is the row re-read in the same transaction, never the driver's
rowcount (Sage's AFTER UPDATE triggers make pyodbc report a wrong one).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import String, Table, func, or_, select, text, type_coerce, update
from sqlalchemy.engine import Connection

from sync.core.sage import SALES_DOMAIN, DocumentType, is_technical_column
from sync.gescom.values import IntValue, TextValue

WRITABLE_TYPES = (DocumentType.BON_DE_COMMANDE, DocumentType.PREPARATION_DE_LIVRAISON, DocumentType.BON_DE_LIVRAISON)
RECORD_LOCK_FUNCTION = "CB_FntIsRecordLock"
LOCK_TIMEOUT_MS = 3000  # the write-back gives up on a locked row after this long


class HeaderWriter:
    """Writes into F_DOCENTETE (`header()`, the reflected table) of one base (`schema_name`); knows, once asked,
    whether Sage's record lock is there."""

    def __init__(self, schema_name: str | None, header: Callable[[], Table]):
        self.schema_name = schema_name
        self.header = header
        self._record_lock_function: bool | None = None

    def has_record_lock_function(self, conn: Connection) -> bool:
        """Whether Sage's record-lock function exists on this SQL Server base (asked once)."""
        if self._record_lock_function is None:
            name = f"{self.schema_name or 'dbo'}.{RECORD_LOCK_FUNCTION}"
            self._record_lock_function = conn.execute(select(func.OBJECT_ID(name))).scalar() is not None
        return self._record_lock_function

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
        refuse_unwritable(doc_type, field)
        h = self.header()
        column = text_column(h, field, value)
        if not piece or isinstance(marq, bool) or not isinstance(marq, int):
            raise ValueError("a document number and its cbMarq are needed")
        if conn.in_transaction():
            raise ValueError("fill_header_field runs its own transaction: end the connection's transaction first")
        mssql = conn.dialect.name == "mssql"
        try:
            with conn.begin() as transaction:
                _give_up_on_locks(conn)
                conditions = self._guard(conn, h, column, doc_type, piece, marq)
                # The row as it stands, locked until the end of the transaction (UPDLOCK on SQL Server, FOR UPDATE on
                # PostgreSQL): what we find after the UPDATE is then our doing, not another writer's.
                current = select(
                    type_coerce(h.c.DO_Domaine, IntValue()),
                    type_coerce(h.c.DO_Type, IntValue()),
                    type_coerce(h.c.DO_Piece, TextValue()),
                    type_coerce(column, TextValue()),
                ).where(h.c.cbMarq == marq)  # cbMarq: the clustered key
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

    def _guard(self, conn: Connection, h: Table, column, doc_type: int, piece: str, marq: int) -> list:
        """The UPDATE's conditions: the row's identity, a writable type, the field empty; on SQL Server, not
        locked by Sage when the base has CB_FntIsRecordLock."""
        conditions = [
            h.c.cbMarq == marq,
            h.c.DO_Domaine == SALES_DOMAIN,
            h.c.DO_Type == int(doc_type),
            h.c.DO_Type.in_([int(t) for t in WRITABLE_TYPES]),
            h.c.DO_Piece == piece,
            or_(column.is_(None), column == ""),
        ]
        if conn.dialect.name == "mssql" and self.has_record_lock_function(conn):
            lock = getattr(func, self.schema_name or "dbo")
            conditions.append(getattr(lock, RECORD_LOCK_FUNCTION)(h.name, h.c.cbMarq) == 0)
        return conditions

    def header_field(self, conn: Connection, marq: int, field: str) -> tuple[int, str, str] | None:
        """(type, piece, value of `field`) of the sales header row `marq` as it stands now, or None if it is gone."""
        h = self.header()
        row = conn.execute(
            select(type_coerce(h.c.DO_Type, IntValue()), type_coerce(h.c.DO_Piece, TextValue()), type_coerce(h.c[field], TextValue())).where(
                h.c.cbMarq == marq, h.c.DO_Domaine == SALES_DOMAIN
            )
        ).first()
        return None if row is None else (row[0], row[1], row[2])


def refuse_unwritable(doc_type: int, field: str) -> None:
    """Raises ValueError for what must never be asked: a document other than a BC, PL or BL, a technical column."""
    if isinstance(doc_type, bool) or doc_type not in WRITABLE_TYPES:
        raise ValueError(f"document type {doc_type!r} is never written: only 1 (BC), 2 (PL) and 3 (BL)")
    if is_technical_column(field):
        raise ValueError(f"{field!r} is a technical Sage column: never written")


def text_column(h: Table, field: str, value: str):
    """The text column `field` of F_DOCENTETE, if `value` fits it; else ValueError."""
    if field not in h.c or not isinstance(h.c[field].type, String):
        raise ValueError(f"{field!r} is not a text column of F_DOCENTETE")
    column = h.c[field]
    width = getattr(column.type, "length", None)
    if not isinstance(value, str) or not value or (width is not None and len(value) > width):
        raise ValueError(f"{value!r} does not fit {field} ({width or 'unbounded'} characters)")
    return column


def _give_up_on_locks(conn: Connection) -> None:
    """A row another session holds must not hang the write-back: give up after a few seconds instead."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'"))
    elif conn.dialect.name == "mssql":
        conn.execute(text(f"SET LOCK_TIMEOUT {LOCK_TIMEOUT_MS}"))
