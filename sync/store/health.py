"""Can our store work: read it, and take a write (rolled back), each waiting at most a moment for locks.

Also what a store error means to a caller: `unavailable` tells a store that cannot answer or cannot write (locked,
read-only, unreachable) from a fault in our code, so the API answers 503 store_unavailable rather than 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from models import SyncLock

PROBE_WAIT = 1.0  # seconds a probe waits for another's lock: health answers in bounded time on a locked store
PROBE_ROW = "health-probe"  # no lease has this name: the write probe changes no row, yet needs the write lock
READ_ONLY_SQLSTATE = "25006"  # PostgreSQL: read_only_sql_transaction (a read-only standby or transaction)


@contextmanager
def waits_at_most(conn: Connection, seconds: float) -> Iterator[Connection]:
    """Inside the block, this connection waits at most `seconds` for a lock (PostgreSQL: a statement runs at most
    twice that); the connection's own setting is put back (PostgreSQL: SET LOCAL ends with the transaction)."""
    ms = max(1, int(seconds * 1000))
    if conn.dialect.name == "sqlite":
        previous = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {ms}")
        try:
            yield conn
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(previous or 0)}")
        return
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {ms}")
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {2 * ms}")
    yield conn


def _reason(error: SQLAlchemyError) -> str:
    original = getattr(error, "orig", None)
    lines = str(original if original is not None else error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def check_store(engine: Engine, wait: float = PROBE_WAIT) -> dict:
    """{"ok", "status": ok | degraded | down, "read", "write", "error"}: a read of a real table (SELECT 1 would
    not see a locked file), then a write left uncommitted, so it is rolled back when the connection closes."""
    try:
        with engine.connect() as probe, waits_at_most(probe, wait):
            probe.execute(select(SyncLock.name).limit(1)).all()
    except SQLAlchemyError as error:
        return {"ok": False, "status": "down", "read": False, "write": False, "error": _reason(error)}
    try:
        with engine.connect() as probe, waits_at_most(probe, wait):
            probe.execute(update(SyncLock).where(SyncLock.name == PROBE_ROW).values(holder=None))
    except SQLAlchemyError as error:
        return {"ok": False, "status": "degraded", "read": True, "write": False, "error": _reason(error)}
    return {"ok": True, "status": "ok", "read": True, "write": True}


def mark_store_error(context) -> None:
    """A `handle_error` listener on the store's engine: its errors say they are the store's (GesCom's are not)."""
    if context.sqlalchemy_exception is not None:
        context.sqlalchemy_exception.from_store = True


def unavailable(error: BaseException) -> bool:
    """Whether this error is the store failing to answer or to write (locked, read-only, unreachable, full)."""
    if not isinstance(error, DBAPIError) or not getattr(error, "from_store", False):
        return False
    original = error.orig
    sqlstate = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    return isinstance(error, OperationalError) or sqlstate == READ_ONLY_SQLSTATE or error.connection_invalidated


def bound_waits(engine: Engine, seconds: float) -> None:
    """The store's lock waits end after `seconds`, before the request's own timeout (gunicorn's 60 s): SQLite's busy
    timeout, PostgreSQL's lock_timeout. Its errors are marked as the store's (`unavailable`)."""
    ms = max(1, int(seconds * 1000))

    def on_connect(dbapi_connection, connection_record):
        if engine.dialect.name == "sqlite":
            dbapi_connection.execute(f"PRAGMA busy_timeout = {ms}")
        elif engine.dialect.name == "postgresql":
            autocommit, dbapi_connection.autocommit = dbapi_connection.autocommit, True  # outside a transaction: kept
            dbapi_connection.execute(f"SET lock_timeout = {ms}")
            dbapi_connection.autocommit = autocommit

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "handle_error", mark_store_error)
