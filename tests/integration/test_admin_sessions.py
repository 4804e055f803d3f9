"""Admin sessions that really end, the cookie's flags, login throttling and the `next` parameter (issue 13, item 8).

Through the Flask test client on the selected backend. A copied cookie is the raw `session` cookie value set in
a second client; addresses and proxies are the WSGI environ's REMOTE_ADDR and X-Forwarded-* headers.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from html import unescape

import pytest
from flask import redirect, url_for
from sqlalchemy import select, update

from models import AdminSession, db, utcnow
from sync.store.admin_sessions import hash_token
from sync.store.keys import revoke_key
from tests.conftest import bearer, make_test_app

COOKIE = "session"
WRONG_KEY = "sgps_" + "x" * 43


def csrf_of(client, **kwargs) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/login", **kwargs).text).group(1)


def login(client, key: str, headers: dict | None = None, **environ):
    """POST the login form as a browser would: the page first (its CSRF token), then the form, from one address."""
    extra = {"headers": headers or {}, "environ_base": environ}
    return client.post("/admin/login", data={"key": key, "csrf_token": csrf_of(client, **extra)}, **extra)


def copy_of_cookie(app, client):
    """A second browser holding the same cookie value (as stolen, or copied from the developer tools)."""
    other = app.test_client()
    other.set_cookie(COOKIE, client.get_cookie(COOKIE).value)
    return other


# --- sessions that end -----------------------------------------------------------------------------------------------


def test_a_copied_cookie_is_refused_after_logout(app, client, keys):
    assert login(client, keys["admin"]).status_code == 303
    copy = copy_of_cookie(app, client)
    assert copy.get("/admin/").status_code == 200  # the copy works while the session holds

    assert client.post("/admin/logout", data={"csrf_token": csrf_of(client)}).status_code == 303
    answer = copy.get("/admin/")
    assert answer.status_code == 303 and answer.headers["Location"].startswith("/admin/login?next=/admin/&expired=1")
    assert copy.post("/admin/runs").status_code == 303  # nor any other page
    with app.app_context():
        assert db.session.scalars(select(AdminSession.ended_at)).one() is not None


def test_the_cookie_holds_only_a_token_whose_hash_is_stored(app, client, keys):
    login(client, keys["admin"])
    with client.session_transaction() as cookie:
        assert set(cookie) == {"admin_session"}  # no key id, name or time: the store's row says those
        token = cookie["admin_session"]
    with app.app_context():
        row = db.session.scalars(select(AdminSession)).one()
        assert row.id == hash_token(token) != token and row.ended_at is None
        assert row.expires_at - row.created_at == timedelta(hours=12)


def test_a_revoked_keys_session_is_refused_even_from_a_copy(app, client, keys):
    login(client, keys["admin"])
    copy = copy_of_cookie(app, client)
    with app.app_context():
        revoke_key(db.session, "test-admin")
        db.session.commit()
    for browser in (client, copy):
        answer = browser.get("/admin/settings")
        assert answer.status_code == 303 and "expired=1" in answer.headers["Location"]


def test_a_session_left_idle_ends_and_a_used_one_lasts(app, client, keys):
    login(client, keys["admin"])
    with app.app_context():
        db.session.execute(update(AdminSession).values(last_seen_at=utcnow() - timedelta(minutes=30)))
        db.session.commit()
    assert client.get("/admin/").status_code == 200  # within the hour: used now, so its idle time starts again
    with app.app_context():
        assert utcnow() - db.session.scalars(select(AdminSession.last_seen_at)).one() < timedelta(minutes=1)
        db.session.execute(update(AdminSession).values(last_seen_at=utcnow() - timedelta(minutes=61)))
        db.session.commit()
    assert client.get("/admin/").status_code == 303


def test_a_forged_or_unknown_token_opens_nothing(app, client, keys):
    login(client, keys["admin"])
    for forged in ("", "x" * 43, "y" * 5000, 7, None):
        with client.session_transaction() as cookie:
            cookie["admin_session"] = forged
        assert client.get("/admin/").status_code == 303, forged


# --- throttling ----------------------------------------------------------------------------------------------------------


def test_two_hundred_wrong_keys_are_throttled_after_ten(app, client, keys):
    token = csrf_of(client)  # an attacker reads the form once, then tries keys
    started = time.perf_counter()
    answers = [client.post("/admin/login", data={"key": f"{WRONG_KEY}{n}", "csrf_token": token}) for n in range(200)]
    elapsed = time.perf_counter() - started
    statuses = [answer.status_code for answer in answers]
    assert statuses == [401] * 10 + [429] * 190, statuses
    refused = answers[-1]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "Trop de tentatives de connexion" in unescape(refused.text) and refused.mimetype == "text/html"
    print(f"200 wrong keys: {statuses.count(401)} x 401, {statuses.count(429)} x 429 in {elapsed:.2f} s")

    # The right key from that address waits too; another address is not held up by this one.
    assert client.post("/admin/login", data={"key": keys["admin"], "csrf_token": token}).status_code == 429
    assert login(app.test_client(), keys["admin"], REMOTE_ADDR="192.0.2.20").status_code == 303
    english = client.post("/admin/login?lang=en", data={"key": WRONG_KEY, "csrf_token": csrf_of(client)})
    assert english.status_code == 429 and "Too many sign-in attempts" in english.text


def test_good_logins_are_not_counted(client, keys):
    for _ in range(15):
        assert login(client, keys["admin"]).status_code == 303


# --- where `next` may send ---------------------------------------------------------------------------------------------------

HOSTILE_NEXT = [
    "/admin/\r\nSet-Cookie: session=stolen",
    "/admin\r\n",
    "/admin/\nX-Evil: 1",
    "/admin/\x00",
    "//evil.example",
    "//evil.example/admin",
    "https://evil.example",
    "https://evil.example/admin/",
    "/\t/evil.example",
    "/admin\\@evil.example",
    "\\\\evil.example",
    "/admin/\u2028",
    "javascript:alert(1)",
]


@pytest.mark.parametrize("target", HOSTILE_NEXT, ids=range(len(HOSTILE_NEXT)))
def test_a_hostile_next_goes_to_the_dashboard_never_500(client, keys, target):
    assert client.get("/admin/login", query_string={"next": target}).status_code == 200
    answer = client.post("/admin/login", data={"key": keys["admin"], "csrf_token": csrf_of(client), "next": target})
    assert answer.status_code == 303 and answer.headers["Location"] == "/admin/"


def test_a_page_of_the_admin_is_kept_as_next(client, keys):
    answer = client.post("/admin/login", data={"key": keys["admin"], "csrf_token": csrf_of(client), "next": "/admin/orders?q=4711%0d%0a"})
    assert answer.status_code == 303 and answer.headers["Location"] == "/admin/orders?q=4711%0d%0a"


# --- the cookie's flags, behind a proxy ------------------------------------------------------------------------------------------


def test_the_cookie_is_secure_when_asked(store_db, gescom_db, keys, monkeypatch):
    plain = make_test_app(store_db, gescom_db)
    cookie = login(plain.test_client(), keys["admin"]).headers["Set-Cookie"]
    assert "Secure" not in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie  # `make run` on http://localhost

    monkeypatch.setenv("SESSION_COOKIE_SECURE", "1")
    secure = make_test_app(store_db, gescom_db)
    assert secure.config["SESSION_COOKIE_SECURE"] is True
    cookie = login(secure.test_client(), keys["admin"]).headers["Set-Cookie"]
    assert "; Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def _behind_proxy(app):
    @app.get("/test-only/where")
    def where():  # an absolute redirect, as url_for(_external=True) makes them
        return redirect(url_for("admin.dashboard", _external=True))

    return app.test_client()


def _absolute_redirect(client, key: str, headers: dict) -> str:
    return client.get("/test-only/where", headers={**headers, **bearer(key)}).headers["Location"]


PROXY = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "admin.example", "X-Forwarded-For": "203.0.113.7"}


def test_behind_a_trusted_proxy_the_app_sees_https_and_the_clients_address(store_db, gescom_db, keys):
    client = _behind_proxy(make_test_app(store_db, gescom_db, TRUSTED_PROXIES=1))
    assert _absolute_redirect(client, keys["read"], PROXY) == "https://admin.example/admin/"
    # HTTPS as the browser sees it: a Secure cookie, and Flask-WTF's same-origin check of the Referer.
    answer = login(client, keys["admin"], headers={**PROXY, "Referer": "https://admin.example/admin/login"})
    assert answer.status_code == 303 and "; Secure" in answer.headers["Set-Cookie"]
    foreign = login(client, keys["admin"], headers={**PROXY, "Referer": "https://evil.example/"})
    assert foreign.status_code == 400

    # The limit counts the client's address the proxy forwarded, not the proxy's own.
    for n, expected in enumerate([401] * 10 + [429]):
        headers = {**PROXY, "Referer": "https://admin.example/admin/login"}
        assert login(client, WRONG_KEY, headers=headers).status_code == expected, n
    other = {**PROXY, "X-Forwarded-For": "203.0.113.8", "Referer": "https://admin.example/admin/login"}
    assert login(client, WRONG_KEY, headers=other).status_code == 401


def test_without_trusted_proxies_forwarded_headers_are_ignored(store_db, gescom_db, keys):
    client = _behind_proxy(make_test_app(store_db, gescom_db))
    assert _absolute_redirect(client, keys["read"], PROXY) == "http://localhost/admin/"
    answer = login(client, keys["admin"], headers=PROXY)
    assert answer.status_code == 303 and "Secure" not in answer.headers["Set-Cookie"]
    # A forged X-Forwarded-For per try does not escape the limit.
    statuses = [login(client, WRONG_KEY, headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code for n in range(12)]
    assert statuses == [401] * 10 + [429] * 2


@pytest.mark.parametrize(
    "name, value",
    [("SESSION_COOKIE_SECURE", "maybe"), ("ADMIN_LOGIN_LIMIT", "lots"), ("ADMIN_SESSION_HOURS", "0"), ("TRUSTED_PROXIES", "one")],
)
def test_a_bad_setting_stops_the_start_with_its_name(store_db, gescom_db, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(RuntimeError, match=name):
        make_test_app(store_db, gescom_db)
