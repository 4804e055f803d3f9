"""Application factory: configuration from the environment (and .env), store, GesCom adapter, API, CLI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dotenv import load_dotenv
from flask import Flask
from flask_migrate import Migrate
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from werkzeug.middleware.proxy_fix import ProxyFix

from api.observability import LOG_FORMATS, configure_logging
from models import db
from sync.gescom.adapter import GesCom, GesComLimits, create_gescom_engine
from sync.services.run_config import CONFIG_KEYS as RUN_CONFIG_KEYS
from sync.services.run_config import RunConfig
from sync.store.health import bound_waits
from sync.store.keys import CACHE_SECONDS as KEY_CACHE_SECONDS

ROOT = Path(__file__).resolve().parent
migrate = Migrate()


def normalise_database_url(url: str) -> str:
    """Accept the usual spellings: postgres:// and postgresql:// mean psycopg 3 here."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise RuntimeError(f"{name} must be a whole number of seconds or items, not {value!r}") from None


def _env_seconds(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise RuntimeError(f"{name} must be a number of seconds, not {value!r}") from None


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise RuntimeError(f"{name} must be 1 or 0 (true/false, yes/no, on/off), not {value!r}")
    return value in ("1", "true", "yes", "on")


def _env_choice(name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (any case), the first by default."""
    value = os.environ.get(name, "").strip().lower() or choices[0]
    if value not in choices:
        raise RuntimeError(f"{name} must be {' or '.join(choices)}, not {value!r}")
    return value


def load_config(instance_path: str) -> dict:
    """Every setting that comes from the environment, with its default (a run's: see RunConfig)."""
    return {
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(
            os.environ.get("DATABASE_URL") or f"sqlite:///{os.path.join(instance_path, 'middleware.db')}"
        ),
        "GESCOM_DATABASE_URL": normalise_database_url(
            os.environ.get("GESCOM_DATABASE_URL") or f"sqlite:///{os.path.join(instance_path, 'demo-gescom.db')}"
        ),
        "GESCOM_SCHEMA": os.environ.get("GESCOM_SCHEMA") or None,
        # Waiting on others (seconds): GesCom's connect, statement and pool waits, the store's lock waits.
        "GESCOM_CONNECT_TIMEOUT": _env_int("GESCOM_CONNECT_TIMEOUT", 5),
        "GESCOM_QUERY_TIMEOUT": _env_int("GESCOM_QUERY_TIMEOUT", 60),
        "GESCOM_POOL_SIZE": _env_int("GESCOM_POOL_SIZE", 2),
        "GESCOM_MAX_OVERFLOW": _env_int("GESCOM_MAX_OVERFLOW", 1),
        "GESCOM_POOL_TIMEOUT": _env_int("GESCOM_POOL_TIMEOUT", 5),
        "STORE_BUSY_TIMEOUT": _env_int("STORE_BUSY_TIMEOUT", 10),
        "SYNC_INTERVAL": _env_int("SYNC_INTERVAL", 60),
        # How a run reads GesCom: only what the environment sets; RunConfig holds the defaults.
        **{key: _env_int(key, 0) for key in RUN_CONFIG_KEYS if os.environ.get(key, "").strip()},
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "WEBHOOK_SECRET": os.environ.get("WEBHOOK_SECRET") or None,
        "SECRET_KEY": os.environ.get("SECRET_KEY") or None,  # signs the admin page's session; else <instance>/secret_key
        # The admin page's cookie: Secure on every HTTPS request anyway (api/admin), on plain HTTP too with this on.
        "SESSION_COOKIE_SECURE": _env_flag("SESSION_COOKIE_SECURE", False),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "ADMIN_SESSION_HOURS": _env_int("ADMIN_SESSION_HOURS", 12),
        "ADMIN_SESSION_IDLE_MINUTES": _env_int("ADMIN_SESSION_IDLE_MINUTES", 60),
        "ADMIN_LOGIN_LIMIT": os.environ.get("ADMIN_LOGIN_LIMIT") or "10 per minute",
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI") or "memory://",  # per worker process
        "TRUSTED_PROXIES": _env_int("TRUSTED_PROXIES", 0),  # reverse proxies in front, whose X-Forwarded-* are believed
        # Failed API key checks (missing, unknown, revoked) one client address may make before it waits: api/ratelimit.
        "API_AUTH_FAILURE_LIMIT": os.environ.get("API_AUTH_FAILURE_LIMIT") or "30 per minute",
        "CORS_ALLOWED_ORIGINS": os.environ.get("CORS_ALLOWED_ORIGINS", ""),  # comma-separated; empty: no CORS (api/cors)
        "PRESTASHOP_URL": os.environ.get("PRESTASHOP_URL") or None,
        "PRESTASHOP_API_KEY": os.environ.get("PRESTASHOP_API_KEY") or None,
        "API_KEY_CACHE_SECONDS": _env_seconds("API_KEY_CACHE_SECONDS", KEY_CACHE_SECONDS),  # checked in api/auth
        "PRESTASHOP_TIMEOUT": _env_int("PRESTASHOP_TIMEOUT", 30),
        "PRESTASHOP_EMPLOYEE_ID": _env_int("PRESTASHOP_EMPLOYEE_ID", 0) or None,
        "PRESTASHOP_WORKERS": max(1, _env_int("PRESTASHOP_WORKERS", 4)),
        # Webhooks to consumers (sync/services/notifications.py): http to this machine only with ALLOW_HTTP (tests, demo).
        "CONSUMER_WEBHOOK_ALLOW_HTTP": _env_flag("CONSUMER_WEBHOOK_ALLOW_HTTP", False),
        "CONSUMER_WEBHOOK_TIMEOUT": _env_seconds("CONSUMER_WEBHOOK_TIMEOUT", 5),
        "CONSUMER_WEBHOOK_MAX_ATTEMPTS": _env_int("CONSUMER_WEBHOOK_MAX_ATTEMPTS", 12),
        "LOG_FORMAT": _env_choice("LOG_FORMAT", LOG_FORMATS),  # text (one line each, as ever) or json (one object a line)
    }


def store_engine_options(database_url: str, push_workers: int) -> dict:
    """The store engine's options: its pool holds a connection per push worker besides what the rest needs."""
    options: dict = {"pool_pre_ping": True}
    if not database_url.startswith("sqlite"):
        # Each push worker holds a connection for its whole batch (the claim's row locks last until its commit),
        # beside the caller's session, a web request per gunicorn thread (WEB_THREADS, default 4) and the
        # short sessions of locks and key uses: with SQLAlchemy's default 5 + 10, 15 workers or more waited on
        # the pool (and timed out after 30 s). SQLite keeps its default: one process pushes at a time there.
        options["pool_size"] = push_workers + 5
        options["max_overflow"] = 10
    return options


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    # How long each engine waits for another's lock is its own: the store's STORE_BUSY_TIMEOUT, GesCom's connect timeout.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()


def create_app(test_config: dict | None = None) -> Flask:
    load_dotenv(ROOT / ".env")
    app = Flask(__name__, instance_path=os.environ.get("INSTANCE_PATH") or str(ROOT / "instance"))
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(load_config(app.instance_path))
    if test_config:
        app.config.update(test_config)
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", store_engine_options(app.config["SQLALCHEMY_DATABASE_URI"], app.config["PRESTASHOP_WORKERS"]))
    if app.config["TRUSTED_PROXIES"] > 0:
        # Client address, scheme and host as the proxies saw them: rate limits, the Secure cookie and URLs follow.
        proxies = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    configure_logging(app.config["LOG_FORMAT"], os.environ.get("LOG_LEVEL", "INFO"))

    if app.config.get("WEBHOOK_SECRET"):
        from sync.store.webhooks import secret_key

        try:
            secret_key(app.config["WEBHOOK_SECRET"])
        except ValueError as error:
            raise RuntimeError(f"WEBHOOK_SECRET: {error}") from None
    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            bound_waits(engine, app.config["STORE_BUSY_TIMEOUT"])
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    gescom_engine = create_gescom_engine(app.config["GESCOM_DATABASE_URL"], GesComLimits.from_config(app.config))
    app.extensions["gescom"] = GesCom(gescom_engine, app.config["GESCOM_SCHEMA"])
    app.extensions["run_config"] = RunConfig.from_mapping(app.config)
    configure_shop(app)

    from api import init_api

    init_api(app)

    from cli import COMMANDS

    for group in COMMANDS:
        app.cli.add_command(group)
    return app


def configure_shop(app: Flask) -> None:
    """Push mode when PRESTASHOP_URL and PRESTASHOP_API_KEY are set: the client, and the shop's states."""
    from sync.prestashop.connections import Connection, ShopConnections
    from sync.prestashop.states import ShopStates, shop_client

    client = shop_client(app.config)
    app.extensions["shop"] = client
    app.extensions["order_states"] = ShopStates(client) if client is not None else None
    default = Connection(client=client, states=app.extensions["order_states"]) if client is not None else None
    app.extensions["shops"] = ShopConnections(app.config, os.environ, default)


def gescom_of(app: Flask) -> GesCom:
    return app.extensions["gescom"]


def shop_of(app: Flask):
    """The shop's client, or None when no shop is configured."""
    return app.extensions.get("shop")


def run_config_of(app: Flask) -> RunConfig:
    """How runs read GesCom, built once from the configuration."""
    return app.extensions["run_config"]


def push_options_of(app: Flask) -> dict:
    """How the push to the shop works here: `push_pending`'s options."""
    return {"employee_id": app.config["PRESTASHOP_EMPLOYEE_ID"], "workers": app.config["PRESTASHOP_WORKERS"]}


@contextmanager
def session_in(app: Flask) -> Iterator[Session]:
    """The store session of a fresh app context, for work outside a request or command (a thread, a tick); removed after."""
    with app.app_context():
        try:
            yield db.session
        finally:
            db.session.remove()
