"""The admin web page under /admin: server-rendered (Jinja), French first, behind a session opened with an admin key.

Every endpoint of the blueprint goes through `guard` (default deny): only the login page and the static files
are public. A session is a row of our store (sync/store/admin_sessions.py); the signed cookie holds only its
random token, the CSRF token and the language, so logging out or revoking the key ends it for every copy of the
cookie. Every POST must carry the session's CSRF token (Flask-WTF's, checked by the guard for this blueprint
only: the JSON API uses bearer keys). The API's key check (api/auth.py) leaves the blueprint's endpoints to
this guard.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
import time
from datetime import datetime, timedelta, timezone

from flask import Blueprint, Flask, current_app, g, has_request_context, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import RateLimitExceeded
from flask_wtf.csrf import CSRFError, CSRFProtect
from limits import parse_many
from sqlalchemy.exc import SQLAlchemyError

from api.ratelimit import limiter
from models import db
from sync.services.unit_of_work import UnitOfWork
from sync.store import admin_sessions as stored
from sync.store.keys import scope_allows
from sync.store.shops import list_shops

from .i18n import DEFAULT_LANGUAGE, LANGUAGES, t

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates", static_folder="static")

PUBLIC_ENDPOINTS = frozenset({"admin.login", "admin.static"})
SESSION_TOKEN = "admin_session"  # the cookie's entry holding the session's random token
SHOP_CHOICE = "shop"  # the cookie's entry holding the code of the shop the pages show (`?shop=CODE` changes it)
SESSION_HOURS = 12  # a login lasts this long at most, however active (ADMIN_SESSION_HOURS)
SESSION_IDLE_MINUTES = 60  # and ends sooner after this long without a request (ADMIN_SESSION_IDLE_MINUTES; 0: never)
LOGIN_LIMIT = "10 per minute"  # failed logins per client address (ADMIN_LOGIN_LIMIT)
SECRET_FILE = "secret_key"
# `next` after login: a path of the admin, in printable ASCII but the backslash (browsers read "\" as "/").
LOCAL_ADMIN_PATH = re.compile(r"/admin(?:[/?#][\x21-\x5b\x5d-\x7e]*)?")

csrf = CSRFProtect()


# --- the secret that signs the session cookie --------------------------------------------------------------


def instance_secret_key(instance_path: str) -> str:
    """The key kept in <instance>/secret_key, made once (mode 0600) when missing.

    Several gunicorn workers may start at once: the file appears whole (written aside, then hard-linked into
    place), and whoever comes second reads the first one's key, so every worker signs with the same key.
    """
    path = os.path.join(instance_path, SECRET_FILE)
    if not os.path.exists(path):
        fd, scratch = tempfile.mkstemp(dir=instance_path, prefix=".secret_key.")  # mode 0600
        try:
            os.write(fd, (secrets.token_hex(32) + "\n").encode("ascii"))
            os.fsync(fd)
            os.close(fd)
            try:
                os.link(scratch, path)
            except FileExistsError:
                pass  # another worker was first: use its key
        finally:
            os.unlink(scratch)
    with open(path, encoding="ascii") as handle:
        key = handle.read().strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no usable secret: delete it to have a new one made, or set SECRET_KEY")
    return key


# --- language, CSRF, the signed-in key -----------------------------------------------------------------------


def lang() -> str:
    return session.get("lang") if session.get("lang") in LANGUAGES else DEFAULT_LANGUAGE


def _(key: str, /, **values) -> str:
    return t(key, lang(), **values)


class SessionCookie(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure on every HTTPS request (as ProxyFix shows it behind a trusted proxy),
    and on every request with SESSION_COOKIE_SECURE."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(super().get_cookie_secure(app) or (has_request_context() and request.is_secure))

    def open_session(self, app: Flask, request):
        # No cookie (every API call): an empty session without building the signer, a tenth of a feed poll's CPU.
        if app.secret_key and self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def session_lifetime() -> stored.Lifetime:
    config = current_app.config
    idle = config["ADMIN_SESSION_IDLE_MINUTES"]
    return stored.Lifetime(timedelta(hours=config["ADMIN_SESSION_HOURS"]), timedelta(minutes=idle) if idle > 0 else None)


def _fresh_cookie(token: str | None) -> None:
    """A new cookie: the session's token (or none), a new CSRF token, the language kept."""
    language = session.get("lang")
    session.clear()  # Flask-WTF's raw token ("csrf_token") with it: the next page makes a new one
    g.pop("csrf_token", None)  # and not the signed one it may have made earlier in this request
    if token:
        session[SESSION_TOKEN] = token
    if language:
        session["lang"] = language


def start_session(key_row) -> None:
    """Sign this key in: a session row in the store, its token in a fresh cookie."""
    with UnitOfWork(db.session) as uow:
        token = stored.open_session(uow.session, key_row.id, session_lifetime())
        uow.commit()
    _fresh_cookie(token)


def end_session() -> None:
    """Sign out: the session's row ended (every copy of the cookie with it), the cookie emptied."""
    if SESSION_TOKEN in session:
        with UnitOfWork(db.session) as uow:
            stored.end_session(uow.session, session.get(SESSION_TOKEN))
            uow.commit()
    _fresh_cookie(None)


def _record_seen(session_id: str) -> None:
    # Apart from the request's transaction: a store that cannot take the write (read-only, locked) still shows the page.
    try:
        with UnitOfWork(db.session).another() as uow:
            stored.mark_seen(uow.session, session_id)
            uow.commit()
    except SQLAlchemyError as error:
        current_app.logger.warning("the admin session's last request is not recorded: %s", error)


def _signed_in_key():
    """The admin key of this cookie's session while the session holds (see sync/store/admin_sessions.py)."""
    found = stored.live_session(db.session, session.get(SESSION_TOKEN), session_lifetime())
    if found is None or not scope_allows(found[1].scope, "admin"):
        return None
    if stored.needs_seen(found[0]):
        _record_seen(found[0].id)
    return found[1]


# --- the shop the pages show (issue 16) ------------------------------------------------------------------------


def admin_shops() -> list:
    """Every shop, the default one first (read once per request)."""
    if "admin_shops" not in g:
        g.admin_shops = list_shops(db.session)
    return g.admin_shops


def selected_shop():
    """The shop the pages show: the one chosen in this session (`?shop=CODE`), else the default shop."""
    shops = admin_shops()
    chosen = session.get(SHOP_CHOICE)
    return next((shop for shop in shops if shop.code == chosen), None) or next((shop for shop in shops if shop.is_default), shops[0])


def _keep_shop_choice() -> None:
    """`?shop=CODE` of an existing shop is kept in the session; any other code is ignored."""
    wanted = request.args.get(SHOP_CHOICE)
    if wanted and any(shop.code == wanted for shop in admin_shops()):
        session[SHOP_CHOICE] = wanted


def shop_choice_url() -> str:
    """Where the shop selector sends the browser: this page again (GET), or the dashboard after a form's POST."""
    if request.method != "GET" or request.endpoint is None:
        return url_for("admin.dashboard")
    return url_for(request.endpoint, **(request.view_args or {}))


def safe_next(target: str | None) -> str:
    """Where to go after login: a page of the admin only; anything else (another site, CR/LF, a backslash) goes to the dashboard."""
    if isinstance(target, str) and LOCAL_ADMIN_PATH.fullmatch(target):
        return target
    return url_for("admin.dashboard")


def error_page(status: int, message_key: str):
    return render_template("admin/error.html", status=status, message=_(message_key)), status


@bp.before_request
def guard():
    """Language switch, then: signed in (else to the login page), then the CSRF token on every POST."""
    wanted = request.args.get("lang")
    if wanted in LANGUAGES:
        session["lang"] = wanted
    if request.endpoint not in PUBLIC_ENDPOINTS:
        g.admin_key = _signed_in_key()
        if g.admin_key is None:
            expired = SESSION_TOKEN in session
            _fresh_cookie(None)
            target = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("admin.login", next=target, expired=1 if expired else None), code=303)
        _keep_shop_choice()
    csrf.protect()  # every POST, the login form's too; raises CSRFError
    return None


@bp.errorhandler(CSRFError)
def csrf_refused(error: CSRFError):
    return error_page(400, "error.csrf")


@bp.errorhandler(RateLimitExceeded)
def too_many_logins(error: RateLimitExceeded):
    """429 on the page's own error page, saying when to try again (Retry-After too)."""
    current = limiter.current_limit
    wait = max(1, int(current.reset_at - time.time())) if current is not None else 60
    page = render_template("admin/error.html", status=429, message=_("error.too_many", seconds=wait))
    return page, 429, {"Retry-After": str(wait)}


@bp.after_request
def no_store(response):
    # Pages show settings and orders: keep them out of shared caches and the back-forward cache of another user.
    if request.endpoint != "admin.static":
        response.headers["Cache-Control"] = "no-store"
        response.headers.setdefault("X-Frame-Options", "DENY")
        # Only our own stylesheet and script, no inline code: an injected tag could not run.
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
        )
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


# --- template helpers --------------------------------------------------------------------------------------------


def _as_datetime(value):
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.rstrip("Z"))
        except ValueError:
            return value
    return value


def when(value, utc: bool = True) -> str:
    """A UTC timestamp from our store, shown in the server's local time; one by GesCom's own clock (utc=False,
    no time zone) as it is."""
    value = _as_datetime(value)
    if not isinstance(value, datetime):
        return "—" if value is None else str(value)
    if utc:
        value = value.replace(tzinfo=timezone.utc).astimezone()
    return value.strftime("%d/%m/%Y %H:%M:%S" if lang() == "fr" else "%Y-%m-%d %H:%M:%S")


def day(value) -> str:
    """A date (ISO text or date) as the page's language writes it."""
    if not value:
        return "—"
    text = str(value)[:10]
    try:
        parsed = datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        return str(value)
    return parsed.strftime("%d/%m/%Y") if lang() == "fr" else text


def switch_language_url(language: str) -> str:
    args = {**request.args.to_dict(), "lang": language}
    if request.method != "GET" or request.endpoint is None:
        return url_for("admin.dashboard", lang=language)
    return url_for(request.endpoint, **(request.view_args or {}), **args)


@bp.context_processor
def helpers() -> dict:
    signed_in = getattr(g, "admin_key", None)
    try:
        shops = admin_shops() if signed_in is not None else []
    except SQLAlchemyError:  # an error page about the store itself still shows
        shops = []
    return {
        "_": _,
        "lang": lang(),
        "shops": shops,
        "many_shops": len(shops) > 1,
        "selected_shop": selected_shop() if shops else None,
        "shop_choice_url": shop_choice_url,
        "when": when,
        "day": day,
        "switch_language_url": switch_language_url,
        "LANGUAGES": LANGUAGES,
        "signed_in": signed_in,
    }


def init_admin(app: Flask) -> None:
    """The admin blueprint, and the signed session cookie it needs (SECRET_KEY, else <instance>/secret_key)."""
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = instance_secret_key(app.instance_path)
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if not app.config.get("SESSION_COOKIE_SAMESITE"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.session_interface = SessionCookie()
    app.config.setdefault("ADMIN_SESSION_HOURS", SESSION_HOURS)
    app.config.setdefault("ADMIN_SESSION_IDLE_MINUTES", SESSION_IDLE_MINUTES)
    app.config.setdefault("ADMIN_LOGIN_LIMIT", LOGIN_LIMIT)
    if app.config["ADMIN_SESSION_HOURS"] < 1 or app.config["ADMIN_SESSION_IDLE_MINUTES"] < 0:
        raise RuntimeError("ADMIN_SESSION_HOURS must be at least 1, ADMIN_SESSION_IDLE_MINUTES at least 0")
    try:
        parse_many(app.config["ADMIN_LOGIN_LIMIT"])
    except ValueError:
        raise RuntimeError(f"ADMIN_LOGIN_LIMIT must read like '10 per minute', not {app.config['ADMIN_LOGIN_LIMIT']!r}") from None
    # Checked by `guard`, after the sign-in check, on this blueprint only: not on every view of the app.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    # A form stays valid as long as a login can last (Flask-WTF's default is an hour).
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", app.config["ADMIN_SESSION_HOURS"] * 3600)
    csrf.init_app(app)  # also gives templates `csrf_token()`
    from . import shop_views, views  # noqa: F401  (routes register on bp)

    app.register_blueprint(bp)
