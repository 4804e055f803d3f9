"""Waiting on others (issue 13, items 3 and 4): a GesCom that accepts connections and never answers, a store that
is locked or read-only. Through a real server on loopback whose request threads are few, as gunicorn's gthread
worker's are (gunicorn.conf.py: 4 threads): a call that waits too long takes a thread every other call needs.

WAITING_REPORT=1 prints the measured times (docs/reliability.md quotes them).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import sys
import threading
import time
import types
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from unittest import mock

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from werkzeug.serving import BaseWSGIServer

from models import db
from sync.gescom.adapter import GesCom
from sync.gescom.engine import Breaker, GesComLimits, connect_args, create_gescom_engine
from sync.store.keys import create_key

THREADS = 4  # request threads of one gunicorn worker (gunicorn.conf.py, WEB_THREADS)


def _report(what: str, seconds: float) -> None:
    if os.environ.get("WAITING_REPORT"):
        print(f"\n[waiting] {what}: {seconds:.2f} s", file=sys.stderr)


# --- a GesCom that never answers, a server with few threads, HTTP calls -----------------------------------------


class NeverAnswers:
    """A loopback listener that accepts every connection and never sends a byte."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                self.held.append(self.sock.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    def close(self) -> None:
        """Ends every connection: whatever still waits on it (without the fix: forever) gets an error and stops."""
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()
        for conn in self.held:
            conn.close()


class FewThreadsServer(BaseWSGIServer):
    """werkzeug's server with a fixed pool of request threads: calls beyond it wait in line, as in gunicorn."""

    def __init__(self, app, threads: int = THREADS):
        super().__init__("127.0.0.1", 0, app)
        self.workers = ThreadPoolExecutor(threads, thread_name_prefix="request")

    def process_request(self, request, client_address):
        self.workers.submit(self._handle, request, client_address)

    def _handle(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


@contextmanager
def served(app):
    server = FewThreadsServer(app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        server.workers.shutdown(wait=False, cancel_futures=True)


@dataclass
class Answer:
    status: int
    body: dict | None
    headers: dict
    elapsed: float


def call(base: str, path: str, key: str | None = None, body: dict | None = None, timeout: float = 20) -> Answer:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    request = urllib.request.Request(base + path, data=data, headers=headers, method="POST" if data else "GET")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, answer_headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, answer_headers, raw = error.code, dict(error.headers), error.read()
    return Answer(status, json.loads(raw) if raw else None, answer_headers, time.monotonic() - started)


def make_app(store_db, gescom_url: str, **config):
    from app import create_app

    return create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": store_db.url,
            "SQLALCHEMY_ENGINE_OPTIONS": {**store_db.engine_options, "pool_pre_ping": True},
            "GESCOM_DATABASE_URL": gescom_url,
            "SECRET_KEY": "test-only-admin-session-secret",
            **config,
        }
    )


def make_keys(app) -> dict[str, str]:
    with app.app_context():
        keys = {scope: create_key(db.session, f"test-{scope}", scope)[1] for scope in ("read", "write")}
        db.session.commit()
        db.session.remove()
    return keys


@pytest.fixture
def hanging(store_db):
    """The API served with a GesCom that never answers (a PostgreSQL URL to the silent listener), and its keys."""
    listener = NeverAnswers()
    app = make_app(store_db, f"postgresql+psycopg://sage@127.0.0.1:{listener.port}/sage")
    keys = make_keys(app)
    try:
        with served(app) as base:
            yield types.SimpleNamespace(base=base, keys=keys, app=app)
    finally:
        listener.close()


# --- item 3: a GesCom that never answers --------------------------------------------------------------------------


def test_health_answers_within_3_s_when_gescom_never_answers(hanging):
    answer = call(hanging.base, "/api/v1/health")
    _report("health, GesCom never answers", answer.elapsed)
    assert answer.status == 503 and answer.elapsed < 3.5, answer
    assert answer.body["status"] == "unavailable"
    assert answer.body["checks"]["gescom"]["ok"] is False and "did not answer" in answer.body["checks"]["gescom"]["error"]
    assert answer.body["checks"]["store"] == {"ok": True, "status": "ok", "read": True, "write": True}


def test_the_feed_answers_while_ten_calls_wait_on_gescom(hanging):
    """Ten calls that need GesCom arrive first and take every request thread; the feed, which needs only the store,
    still answers within a GesCom connect timeout and a pool wait (5 + 5 s; about 5 s measured), not after minutes."""
    barrier = threading.Barrier(11)
    answers: list[Answer] = []

    def gescom_call(path: str, key: str | None) -> None:
        barrier.wait()
        answers.append(call(hanging.base, path, key, timeout=60))
        _report(f"  {path} answered {answers[-1].status} after", answers[-1].elapsed)

    calls = [("/api/v1/health", None)] * 5 + [("/api/v1/gescom/fields", hanging.keys["read"])] * 5
    threads = [threading.Thread(target=gescom_call, args=args) for args in calls]
    for thread in threads:
        thread.start()
    barrier.wait()
    time.sleep(0.3)  # the ten are in line first
    feed = call(hanging.base, "/api/v1/updates", hanging.keys["read"], timeout=30)
    for thread in threads:
        thread.join(60)
    _report("feed while 10 GesCom calls hang", feed.elapsed)
    _report("slowest of the 10 GesCom calls", max(answer.elapsed for answer in answers))
    assert feed.status == 200 and feed.elapsed < 10, feed
    assert len(answers) == 10 and all(answer.status == 503 for answer in answers), [(a.status, a.body) for a in answers]
    assert {answer.body.get("code") for answer in answers if answer.body.get("code")} == {"gescom_unavailable"}
    assert max(answer.elapsed for answer in answers) < 15


def test_once_gescom_was_found_unreachable_the_next_calls_fail_at_once(hanging):
    first = call(hanging.base, "/api/v1/gescom/fields", hanging.keys["read"])
    second = call(hanging.base, "/api/v1/gescom/fields", hanging.keys["read"])
    _report("first GesCom call (connect timeout)", first.elapsed)
    _report("next GesCom call (breaker open)", second.elapsed)
    assert first.status == 503 and first.body["code"] == "gescom_unavailable" and first.elapsed < 7, first
    assert second.status == 503 and second.elapsed < 0.5 and "not tried again" in second.body["detail"], second
    health = call(hanging.base, "/api/v1/health")
    assert health.status == 503 and health.elapsed < 0.5 and "not tried again" in health.body["checks"]["gescom"]["error"]


def test_the_breaker_lets_one_attempt_try_gescom_again_after_its_window():
    dbapi = types.SimpleNamespace(OperationalError=RuntimeError)
    breaker = Breaker(window=0.2)
    breaker.check(dbapi)
    breaker.check(dbapi)  # closed: every attempt goes
    breaker.failed(TimeoutError("connection timeout expired"))
    with pytest.raises(RuntimeError, match="connection timeout expired.*not tried again"):
        breaker.check(dbapi)
    time.sleep(0.25)
    breaker.check(dbapi)  # one attempt tries GesCom again...
    with pytest.raises(RuntimeError, match="being tried again"):
        breaker.check(dbapi)  # ... while the others still fail at once, not each waiting the connect timeout
    breaker.failed(TimeoutError("still down"))
    with pytest.raises(RuntimeError, match="still down.*not tried again"):
        breaker.check(dbapi)
    time.sleep(0.25)
    breaker.check(dbapi)
    breaker.succeeded()  # GesCom is back: everyone connects again
    breaker.check(dbapi)
    breaker.check(dbapi)


def test_a_gescom_statement_longer_than_the_query_timeout_is_stopped(backend, gescom_db):
    engine = create_gescom_engine(gescom_db.url, GesComLimits(query_timeout=1))
    slow = (
        "SELECT pg_sleep(5)"
        if backend == "postgresql"
        else "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 200000000) SELECT count(*) FROM n"
    )
    started = time.monotonic()
    try:
        with pytest.raises(OperationalError), engine.connect() as conn:
            conn.execute(text(slow))
        elapsed = time.monotonic() - started
        with engine.connect() as conn:  # the connection is usable again, and a quick statement is not stopped
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
    _report(f"slow GesCom statement stopped ({backend})", elapsed)
    assert elapsed < 3


def _fake_pyodbc(connect) -> types.ModuleType:
    """Enough of pyodbc for SQLAlchemy's mssql+pyodbc dialect (no ODBC driver nor SQL Server here)."""
    module = types.ModuleType("pyodbc")
    module.Error = type("Error", (Exception,), {})
    for name in ("InterfaceError", "DatabaseError", "OperationalError", "ProgrammingError", "IntegrityError", "DataError", "NotSupportedError"):
        setattr(module, name, type(name, (module.Error,), {}))
    module.Cursor = type("Cursor", (), {"nextset": lambda self: None})
    module.version, module.paramstyle, module.pooling, module.connect = "5.5.0", "qmark", True, connect
    return module


def test_sql_server_gets_a_login_timeout_a_query_timeout_and_a_small_pool(monkeypatch):
    attempts = []

    def login_times_out(*args, **kwargs):
        attempts.append(kwargs)
        raise fake.OperationalError("HYT00", "[HYT00] [Microsoft][ODBC Driver 18 for SQL Server]Login timeout expired")

    fake = _fake_pyodbc(login_times_out)
    monkeypatch.setitem(sys.modules, "pyodbc", fake)
    url = "mssql+pyodbc://sync:secret@sage-sql.example.lan:1433/SOCIETE?driver=ODBC+Driver+18+for+SQL+Server"
    engine = create_gescom_engine(url, GesComLimits())
    assert (engine.pool.size(), engine.pool._max_overflow, engine.pool._timeout) == (2, 1, 5)
    gescom = GesCom(engine)
    for _ in range(3):
        with pytest.raises(Exception, match="Login timeout expired"):
            gescom.ping()
    assert attempts == [{"timeout": 5}]  # pyodbc's login timeout; then the breaker answers without trying
    dbapi_connection = types.SimpleNamespace()
    ours = [listener for listener in engine.pool.dispatch.connect if listener.__module__ == "sync.gescom.engine"]
    for listener in ours:
        listener(dbapi_connection, mock.MagicMock())
    assert dbapi_connection.timeout == 60  # pyodbc's query timeout (SQL_ATTR_QUERY_TIMEOUT), set on every connection


def test_postgresql_and_sqlite_timeouts_keep_the_urls_own_options():
    limits = GesComLimits(connect_timeout=5, query_timeout=60)
    assert connect_args("postgresql+psycopg://sage@host/sage?options=-csearch_path%3Dsage", limits) == {
        "connect_timeout": 5,
        "options": "-csearch_path=sage -c statement_timeout=60000",
    }
    assert connect_args("postgresql+psycopg://sage@host/sage", limits)["options"] == "-c statement_timeout=60000"
    assert connect_args("sqlite:///gescom.db", limits) == {"timeout": 5}


# --- item 4: a store that is locked or read-only ------------------------------------------------------------------


@pytest.fixture
def store_app(store_db, gescom, gescom_db):
    """Build the API on the store (read-only or not), with a GesCom that answers; keys made beforehand."""
    keys = make_keys(make_app(store_db, gescom_db.url))

    def build(**config):
        app = make_app(store_db, gescom_db.url, **config)
        app.extensions["gescom"] = gescom  # on PostgreSQL, its engine carries the test's search_path
        return app, keys

    return build


def _read_only(store_db, backend) -> dict:
    if backend == "postgresql":  # this engine's sessions only: the database and the other tests are untouched
        options = store_db.engine_options["connect_args"]["options"] + " -c default_transaction_read_only=on"
        return {"SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"options": options}, "pool_pre_ping": True}}
    path = store_db.url.removeprefix("sqlite:///")
    return {"SQLALCHEMY_DATABASE_URI": f"sqlite:///file:{path}?mode=ro&uri=true"}


@contextmanager
def write_locked(store_db, backend):
    """Another holds the store's write lock: reads go on, writes wait (SQLite: RESERVED; PostgreSQL: EXCLUSIVE)."""
    if backend == "postgresql":
        holder = store_db.engine.connect()
        holder.exec_driver_sql("LOCK TABLE sync_locks, api_keys, updates IN EXCLUSIVE MODE")
    else:
        holder = sqlite3.connect(store_db.url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.rollback()
        holder.close()


def _reads_work_and_writes_are_503(base: str, keys: dict[str, str], what: str) -> None:
    health = call(base, "/api/v1/health")
    _report(f"health, store {what}", health.elapsed)
    assert health.status == 503 and health.elapsed < 3.5, health
    assert health.body["status"] == "degraded" and health.body["checks"]["gescom"]["ok"] is True
    store = health.body["checks"]["store"]
    assert (store["ok"], store["status"], store["read"], store["write"]) == (False, "degraded", True, False) and store["error"]
    for path in ("/api/v1/updates", "/api/v1/settings", "/api/v1/sync/runs"):
        answer = call(base, path, keys["read"])
        _report(f"keyed GET {path}, store {what}", answer.elapsed)
        assert answer.status == 200 and answer.elapsed < 1.5, (path, answer)
    write = call(base, "/api/v1/updates/ack", keys["write"], body={"up_to": 1000})
    _report(f"a write, store {what}", write.elapsed)
    assert write.status == 503 and write.body["code"] == "store_unavailable" and write.headers["Retry-After"].isdigit(), write
    assert write.elapsed < 3.5


def test_a_read_only_store_serves_reads_and_answers_writes_503(backend, store_db, store_app):
    app, keys = store_app(**_read_only(store_db, backend))
    with served(app) as base:
        _reads_work_and_writes_are_503(base, keys, "read-only")


def test_a_write_locked_store_serves_reads_and_answers_writes_503(backend, store_db, store_app):
    app, keys = store_app(STORE_BUSY_TIMEOUT=1)
    with served(app) as base, write_locked(store_db, backend):
        _reads_work_and_writes_are_503(base, keys, "write-locked")
    assert call_after_release(app, keys)


def call_after_release(app, keys) -> bool:
    """Once the lock is gone, everything works again: health 200, the write goes through."""
    with served(app) as base:
        health = call(base, "/api/v1/health")
        write = call(base, "/api/v1/updates/ack", keys["write"], body={"up_to": 1000})
    assert health.status == 200 and health.body["status"] == "ok", health
    # The write is answered again (no 503): it takes the consumer's row, then refuses an ack of nothing it was served.
    assert write.status == 422 and write.body["code"] == "ack_beyond_served", write
    return True
