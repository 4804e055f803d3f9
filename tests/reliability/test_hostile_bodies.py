"""Hostile bodies through a real server on loopback: chunked or not, a body is JSON, within 1 MiB, at most 64 levels deep.

Each request goes over a socket, as an attacker sends it, to werkzeug's threaded server around the test's app and,
for the attacks that depend on how the server decodes chunks, to gunicorn started as `make run` starts it.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from werkzeug.serving import make_server

from api.limits import MAX_JSON_DEPTH, json_depth
from sync.store.webhooks import sign
from tests.conftest import bearer

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_c2VjcmV0LWZvci10ZXN0cy1vbmx5LTEyMzQ1Njc4OTA="
NESTED = b"[" * 50_000 + b"]" * 50_000
TEN_MB = b'{"ids": [' + b"1," * 5_000_000 + b"1]}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _url_for_a_process(database) -> str:
    """The database URL another process can use: a PostgreSQL test schema goes in the URL's options."""
    options = database.engine_options.get("connect_args", {}).get("options")
    return f"{database.url}?options={options.replace('=', '%3D')}" if options else database.url


@pytest.fixture
def werkzeug_server(app):
    app.config["TESTING"] = False  # errors answered as in production, not raised into the server
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def gunicorn_server(app, store_db, gescom_db, tmp_path):
    """gunicorn with gunicorn.conf.py and wsgi:app (what `make run` starts), on the test's store and GesCom."""
    port = _free_port()
    env = {
        **os.environ,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": _url_for_a_process(store_db),
        "GESCOM_DATABASE_URL": _url_for_a_process(gescom_db),
        "GESCOM_SCHEMA": "",
        "SECRET_KEY": "test-only-admin-session-secret",
        "WEBHOOK_SECRET": SECRET,
        "SYNC_SCHEDULER": "off",
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
    }
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while _status(port, "GET", "/openapi.json") != 200:
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
            time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(params=["werkzeug", "gunicorn"])
def server(request) -> int:
    """The port of a server of each kind, serving the test's app."""
    return request.getfixturevalue(f"{request.param}_server")


@pytest.fixture
def gescom_ready(app):
    from sync.gescom.demo.schema import create_gescom

    create_gescom(app.extensions["gescom"].engine)


def _status(port: int, method: str, path: str, headers: dict | None = None) -> int | None:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request(method, path, headers=headers or {})
        return connection.getresponse().status
    except OSError:  # not listening yet
        return None


def send(port: int, path: str, body: bytes, headers: dict, *, chunked: bool = True, chunk: int = 64 * 1024) -> tuple[int, dict, float]:
    """POST the body (in chunks, or with its Content-Length) while reading the answer: (status, JSON, milliseconds)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(len(body))}
    head = "".join(f"{name}: {value}\r\n" for name, value in {"Host": "127.0.0.1", **framing, **headers}.items())
    started = time.perf_counter()
    sock.sendall(f"POST {path} HTTP/1.1\r\n{head}\r\n".encode())

    def write():
        try:
            for start in range(0, len(body), chunk):
                part = body[start : start + chunk]
                sock.sendall(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
            sock.sendall(b"0\r\n\r\n" if chunked else b"")
        except OSError:
            pass  # the server answered and closed before reading it all: its answer is what the test reads

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        response = http.client.HTTPResponse(sock)
        response.begin()
        answer = json.loads(response.read() or b"null")
        elapsed = (time.perf_counter() - started) * 1000
        return response.status, answer, elapsed
    finally:
        writer.join(timeout=30)
        sock.close()


def _runs(store_db) -> list[tuple]:
    with store_db.engine.connect() as conn:
        return conn.execute(text("SELECT id, dry_run, status FROM sync_runs ORDER BY id")).all()


def _write(keys, content_type: str = "application/json") -> dict:
    return {**bearer(keys["write"]), "Content-Type": content_type}


def test_a_chunked_text_body_starts_no_run(server, keys, store_db):
    """The attack: a chunked text/plain `{"dry_run": true}` was ignored as a body, and a real run started."""
    status, answer, _ = send(server, "/api/v1/sync/runs", b'{"dry_run": true}', _write(keys, "text/plain"))
    assert (status, answer.get("code")) == (415, "unsupported_media_type")
    assert _runs(store_db) == []


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_50000_nested_brackets_are_invalid_json_not_a_server_error(werkzeug_server, keys, chunked):
    status, answer, _ = send(werkzeug_server, "/api/v1/updates/ack", NESTED, _write(keys), chunked=chunked)
    assert (status, answer["code"]) == (400, "invalid_json")
    assert f"{MAX_JSON_DEPTH} levels" in answer["detail"]


@pytest.mark.parametrize("levels, expected", [(MAX_JSON_DEPTH, (422, "validation_error")), (MAX_JSON_DEPTH + 1, (400, "invalid_json"))])
def test_the_depth_limit_is_64_levels(werkzeug_server, keys, levels, expected):
    body = b'{"ids": [1], "deep": ' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"  # the object is the first level
    status, answer, _ = send(werkzeug_server, "/api/v1/updates/ack", body, _write(keys))
    assert (status, answer["code"]) == expected  # at the limit: parsed, then refused by the schema (an unknown field)


def test_a_chunked_10_mb_body_is_413_and_the_server_goes_on(server, keys):
    status, answer, _ = send(server, "/api/v1/updates/ack", TEN_MB, _write(keys))
    assert (status, answer["code"]) == (413, "payload_too_large")
    assert _status(server, "GET", "/api/v1/updates", bearer(keys["read"])) == 200


def test_an_announced_oversized_body_is_refused_before_it_is_sent(werkzeug_server, keys):
    sock = socket.create_connection(("127.0.0.1", werkzeug_server), timeout=10)
    head = f"POST /api/v1/updates/ack HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer {keys['write']}\r\n"
    sock.sendall(f"{head}Content-Length: {len(TEN_MB)}\r\n\r\n".encode())  # and not one byte of the body
    response = http.client.HTTPResponse(sock)
    response.begin()
    assert response.status == 413 and json.loads(response.read())["code"] == "payload_too_large"
    sock.close()


def test_a_body_shorter_than_its_content_length_is_refused(werkzeug_server, keys, store_db):
    sock = socket.create_connection(("127.0.0.1", werkzeug_server), timeout=10)
    head = f"POST /api/v1/sync/runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer {keys['write']}\r\n"
    sock.sendall(f'{head}Content-Length: 100\r\n\r\n{{"dry_run": true}}'.encode())
    sock.shutdown(socket.SHUT_WR)  # the client goes away mid-body
    response = http.client.HTTPResponse(sock)
    response.begin()
    assert response.status == 400 and json.loads(response.read())["code"] == "bad_request"
    sock.close()
    assert _runs(store_db) == []


def test_a_chunked_json_body_is_read(server, keys, store_db, gescom_ready):
    status, answer, _ = send(server, "/api/v1/sync/runs", b'{"dry_run": true}', _write(keys), chunk=5)
    assert status == 202 and answer["dry_run"] is True
    deadline = time.monotonic() + 60
    while _runs(store_db)[0][2] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)  # the run goes on in the background: the test's databases stay until it ends
    assert [(dry_run, status) for _, dry_run, status in _runs(store_db)] == [(True, "succeeded")]


def test_a_chunked_webhook_is_verified_on_its_exact_bytes(app, server, keys):
    app.config["WEBHOOK_SECRET"] = SECRET
    raw = b'{"type": "order.status_changed",   "data": {"id_order": 4711, "state_id": 4}}'
    for body, expected in ((raw, (200, "ignored")), (raw[:-1] + b', "x": ' + NESTED + b"}", (400, "invalid_json"))):
        timestamp = int(time.time())
        signed = {
            "webhook-id": f"m{len(body)}",
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(SECRET, f"m{len(body)}", timestamp, body),
        }
        status, answer, _ = send(server, "/api/v1/webhooks/prestashop", body, {**_write(keys), **signed}, chunk=7)
        assert (status, answer["code"] if status >= 400 else answer["status"]) == expected


@pytest.mark.parametrize(
    "value",
    [[], {"a": [1, {"b": "]]]"}]}, ["\\", '\\"[[', '"', "[{"], {"k[": {"\\[": [[["x"]]]}}, [[[[["é", "日本"]]]]], "[[[[", 0],
)
def test_json_depth_skips_strings_and_escapes(value):
    def depth(item) -> int:
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        return 0 if children is None else 1 + max(map(depth, children), default=0)

    for ascii_only in (True, False):
        assert json_depth(json.dumps(value, ensure_ascii=ascii_only).encode()) == depth(value)
