"""The engine for the Sage base: bounded waits on GesCom, whatever its state.

A GesCom that accepts connections but never answers must not hold the API: connecting and each statement have a
timeout (by dialect), the pool is small and its checkout bounded, and once a connection attempt failed, the next
ones fail at once for `BREAKER_WINDOW` seconds instead of each waiting the connect timeout again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url

BREAKER_WINDOW = 10.0  # seconds during which connections fail at once after GesCom could not be reached
SQLITE_CHECK_EVERY = 10_000  # SQLite virtual machine steps between two looks at the statement's deadline
SQLITE_CACHED_STATEMENTS = 16  # prepared statements sqlite3 keeps per GesCom connection (a demo or test base)


@dataclass(frozen=True)
class GesComLimits:
    """How long we wait on GesCom: connecting, one statement, a free connection of the pool (seconds), and the pool's size."""

    connect_timeout: float = 5
    query_timeout: float = 60
    pool_size: int = 2
    max_overflow: int = 1
    pool_timeout: float = 5

    @classmethod
    def from_config(cls, config) -> GesComLimits:
        return cls(
            connect_timeout=config["GESCOM_CONNECT_TIMEOUT"],
            query_timeout=config["GESCOM_QUERY_TIMEOUT"],
            pool_size=config["GESCOM_POOL_SIZE"],
            max_overflow=config["GESCOM_MAX_OVERFLOW"],
            pool_timeout=config["GESCOM_POOL_TIMEOUT"],
        )


class Breaker:
    """Fail fast while GesCom is known to be unreachable: after a failed connection attempt, the attempts of the
    next `window` seconds fail at once with the same reason; then one attempt tries GesCom again while the others
    still fail at once, and its success closes the breaker."""

    def __init__(self, window: float = BREAKER_WINDOW):
        self.window = window
        self._lock = threading.Lock()
        self._failed_at: float | None = None
        self._reason = ""
        self._trying = False

    def check(self, dbapi) -> None:
        """Raises the driver's OperationalError (so callers handle it as any connection failure) while open."""
        with self._lock:
            if self._failed_at is None:
                return
            ago = time.monotonic() - self._failed_at
            if ago < self.window:
                raise dbapi.OperationalError(f"{self._reason} ({ago:.1f} s ago; not tried again for {self.window - ago:.1f} s)")
            if self._trying:
                raise dbapi.OperationalError(f"{self._reason} ({ago:.1f} s ago; being tried again)")
            self._trying = True

    def failed(self, error: BaseException) -> None:
        lines = str(error).strip().splitlines()
        with self._lock:
            self._failed_at, self._reason, self._trying = time.monotonic(), lines[0] if lines else type(error).__name__, False

    def succeeded(self) -> None:
        with self._lock:
            self._failed_at, self._trying = None, False


def connect_args(url: str, limits: GesComLimits) -> dict:
    """The driver's own connect and statement timeouts: pyodbc's login timeout, libpq's connect_timeout and the
    server's statement_timeout, sqlite3's lock wait."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "mssql":
        return {"timeout": max(1, round(limits.connect_timeout))}  # pyodbc: the login timeout, whole seconds
    if backend == "postgresql":
        extra = f"-c statement_timeout={int(limits.query_timeout * 1000)}"
        options = parsed.query.get("options")  # connect_args replace the URL's own: keep them
        options = " ".join(options) if isinstance(options, tuple) else options
        return {"connect_timeout": max(2, round(limits.connect_timeout)), "options": f"{options} {extra}" if options else extra}
    if backend == "sqlite":
        return {"timeout": limits.connect_timeout}
    return {}


def _in_memory(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and (parsed.database in (None, "", ":memory:") or "mode=memory" in str(parsed))


def create_gescom_engine(url: str, limits: GesComLimits | None = None) -> Engine:
    """An engine for the Sage base with bounded waits (see the module); pool_pre_ping so a restarted SQL Server
    does not fail the next run."""
    limits = limits or GesComLimits()
    options: dict = {"pool_pre_ping": True, "connect_args": connect_args(url, limits)}
    if url.startswith("mssql"):
        options["fast_executemany"] = False
    if make_url(url).get_backend_name() == "sqlite":
        # Chain reads' IN lists come in many lengths, and sqlite3 keeps a prepared statement for each (128 per
        # connection by default): RSS crept by tens of MB while following. A few cover the repeated statements.
        options["connect_args"]["cached_statements"] = SQLITE_CACHED_STATEMENTS
    if not _in_memory(url):  # an in-memory SQLite base has one connection per thread, no pool to size
        options.update(pool_size=limits.pool_size, max_overflow=limits.max_overflow, pool_timeout=limits.pool_timeout)
    engine = create_engine(url, **options)
    watch_connections(engine, limits, Breaker())
    return engine


def watch_connections(engine: Engine, limits: GesComLimits, breaker: Breaker) -> None:
    """The breaker around each connection attempt, and the statement timeout the driver cannot take as a connect argument."""

    @event.listens_for(engine, "do_connect")
    def connect(dialect, connection_record, cargs, cparams):
        breaker.check(dialect.loaded_dbapi)
        try:
            connection = dialect.connect(*cargs, **cparams)
        except BaseException as error:  # whatever ended the attempt: a trial must never stay "in progress"
            breaker.failed(error)
            raise
        breaker.succeeded()
        return connection

    backend = engine.dialect.name
    if backend == "mssql":

        @event.listens_for(engine, "connect")
        def query_timeout(dbapi_connection, connection_record):
            dbapi_connection.timeout = max(1, round(limits.query_timeout))  # pyodbc: SQL_ATTR_QUERY_TIMEOUT, client side

    elif backend == "sqlite":
        _sqlite_deadlines(engine, limits.query_timeout)


def _sqlite_deadlines(engine: Engine, seconds: float) -> None:
    """SQLite has no statement timeout: a progress handler interrupts a statement running longer than `seconds`."""

    @event.listens_for(engine, "connect")
    def watch(dbapi_connection, connection_record):
        deadline = connection_record.info["gescom_deadline"] = [None]
        dbapi_connection.set_progress_handler(lambda: deadline[0] is not None and time.monotonic() > deadline[0], SQLITE_CHECK_EVERY)

    @event.listens_for(engine, "before_cursor_execute")
    def start(conn, cursor, statement, parameters, context, executemany):
        deadline = conn.info.get("gescom_deadline")
        if deadline is not None:
            deadline[0] = time.monotonic() + seconds

    @event.listens_for(engine, "after_cursor_execute")
    def done(conn, cursor, statement, parameters, context, executemany):
        deadline = conn.info.get("gescom_deadline")
        if deadline is not None:
            deadline[0] = None
