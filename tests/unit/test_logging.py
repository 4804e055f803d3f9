"""LOG_FORMAT (text or json), the request id of every answer, and keys that never reach the logs."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from api.observability import JsonFormatter, log_handler
from app import load_config
from tests.conftest import bearer


def record(message: str, *args, **extra) -> logging.LogRecord:
    made = logging.LogRecord("sync.services.runs", logging.WARNING, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def test_json_lines_carry_time_level_logger_message_and_run_id():
    line = JsonFormatter().format(record("run %s: %s orders", 7, 3, run_id=7))
    event = json.loads(line)
    assert "\n" not in line
    assert event["level"] == "WARNING" and event["logger"] == "sync.services.runs" and event["message"] == "run 7: 3 orders"
    assert event["run_id"] == 7 and "request_id" not in event
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["time"])


def test_json_lines_keep_the_exception_on_one_line():
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        made = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), __import__("sys").exc_info())
    line = JsonFormatter().format(made)
    assert "\n" not in line and "ValueError: boom" in json.loads(line)["exception"]


def test_text_stays_the_format_of_old():
    handler = log_handler("text")
    assert handler.formatter._fmt == "%(asctime)s %(levelname)s %(name)s: %(message)s"


@pytest.mark.parametrize(("value", "expected"), [(None, "text"), ("", "text"), ("json", "json"), (" JSON ", "json"), ("text", "text")])
def test_log_format_setting(monkeypatch, tmp_path, value, expected):
    if value is None:
        monkeypatch.delenv("LOG_FORMAT", raising=False)
    else:
        monkeypatch.setenv("LOG_FORMAT", value)
    assert load_config(str(tmp_path))["LOG_FORMAT"] == expected


def test_a_wrong_log_format_stops_the_start(monkeypatch, store_db, gescom_db):
    from app import create_app

    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(RuntimeError, match=r"LOG_FORMAT must be text or json, not 'xml'"):
        create_app({"SQLALCHEMY_DATABASE_URI": store_db.url, "GESCOM_DATABASE_URL": gescom_db.url})


@pytest.fixture
def json_logs():
    """Everything logged, DEBUG and up (SQL statements with their parameters too), as JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root, sql = logging.getLogger(), logging.getLogger("sqlalchemy.engine")
    levels = root.level, sql.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    sql.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(levels[0])
    sql.setLevel(levels[1])


def test_a_request_with_a_key_logs_its_request_id_and_never_the_key(client, keys, json_logs):
    key = keys["admin"]
    answers = [
        client.get("/api/v1/updates", headers={**bearer(key), "X-Request-Id": "scrape-42.a_b"}),
        client.get("/api/v1/updates", headers={"X-Api-Key": key}),
        client.get("/api/v1/updates", headers=bearer(key + "x")),
        client.get("/metrics", headers=bearer(key)),
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 401, 200]
    events = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    assert any("api_keys" in event["message"] for event in events)  # the key lookups were logged, parameters too
    for secret in (key, key[5:], key + "x"):
        assert secret not in json_logs.getvalue()
    assert answers[0].headers["X-Request-Id"] == "scrape-42.a_b"
    ids = {answer.headers["X-Request-Id"] for answer in answers}
    assert len(ids) == 4
    seen = {event.get("request_id") for event in events}
    assert ids <= seen  # every request's records carry its id


@pytest.mark.parametrize("offered", ["", "x" * 65, "a b", "a/b", "é", "a\\r\\nX-Evil: 1"])
def test_a_request_id_that_is_not_a_sane_token_is_replaced(client, offered):
    answer = client.get("/api/v1/health", headers={"X-Request-Id": offered})
    given = answer.headers["X-Request-Id"]
    assert given != offered and re.fullmatch(r"[0-9a-f]{32}", given)


def test_every_answer_has_a_request_id(client):
    for path in ("/api/v1/health", "/api/v1/updates", "/nowhere", "/openapi.json"):
        assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", client.get(path).headers.get("X-Request-Id", "")), path
    assert client.get("/api/v1/health", headers={"X-Request-Id": "x" * 64}).headers["X-Request-Id"] == "x" * 64
