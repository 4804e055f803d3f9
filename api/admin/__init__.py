"""The admin web page under /admin: server-rendered (Jinja), French first, behind a session opened with an admin key.

Every endpoint of the blueprint goes through `guard` (default deny): only the login page and the static files
are public. Every POST must carry the session's CSRF token (Flask-WTF's, checked by the guard for this
blueprint only: the JSON API uses bearer keys). The API's key check (api/auth.py) leaves the blueprint's
endpoints to this guard.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

from flask import Blueprint, Flask, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect

from models import db
from sync.store.keys import active_key, scope_allows

from .i18n import DEFAULT_LANGUAGE, LANGUAGES, t

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates", static_folder="static")

PUBLIC_ENDPOINTS = frozenset({"admin.login", "admin.static"})
SESSION_MAX_AGE = 12 * 3600  # seconds a login lasts, however active
SECRET_FILE = "secret_key"

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


def start_session(key_row) -> None:
    """A fresh session for this key: new CSRF token, the language kept."""
    language = session.get("lang")
    session.clear()  # Flask-WTF's raw token ("csrf_token") with it: the next page makes a new one
    g.pop("csrf_token", None)  # and not the signed one it may have made earlier in this request
    session.update(admin_key_id=key_row.id, admin_key_name=key_row.name, admin_since=int(time.time()))
    if language:
        session["lang"] = language


def end_session() -> None:
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language


def _signed_in_key():
    """The admin key of this session while it is valid: not revoked, still admin, login not too old."""
    key_id, since = session.get("admin_key_id"), session.get("admin_since")
    if not isinstance(key_id, int) or not isinstance(since, int) or time.time() - since > SESSION_MAX_AGE:
        return None
    row = active_key(db.session, key_id)
    return row if row is not None and scope_allows(row.scope, "admin") else None


def safe_next(target: str | None) -> str:
    """Where to go after login: a page of the admin only (never another site)."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path.startswith("/admin") and "\\" not in target:
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
            expired = "admin_key_id" in session
            end_session()
            target = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("admin.login", next=target, expired=1 if expired else None), code=303)
    csrf.protect()  # every POST, the login form's too; raises CSRFError
    return None


@bp.errorhandler(CSRFError)
def csrf_refused(error: CSRFError):
    return error_page(400, "error.csrf")


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
    return {
        "_": _,
        "lang": lang(),
        "when": when,
        "day": day,
        "switch_language_url": switch_language_url,
        "LANGUAGES": LANGUAGES,
        "signed_in": getattr(g, "admin_key", None),
    }


def init_admin(app: Flask) -> None:
    """The admin blueprint, and the signed session cookie it needs (SECRET_KEY, else <instance>/secret_key)."""
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = instance_secret_key(app.instance_path)
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if not app.config.get("SESSION_COOKIE_SAMESITE"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    # Checked by `guard`, after the sign-in check, on this blueprint only: not on every view of the app.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    # A form stays valid as long as a login can last (Flask-WTF's default is an hour).
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", SESSION_MAX_AGE)
    csrf.init_app(app)  # also gives templates `csrf_token()`
    from . import views  # noqa: F401  (routes register on bp)

    app.register_blueprint(bp)
