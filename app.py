"""Application factory: configuration from the environment (and .env), store, GesCom adapter, API, CLI."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from dotenv import load_dotenv
from flask import Flask
from flask_migrate import Migrate
from sqlalchemy import event
from sqlalchemy.engine import Engine

from models import db
from sync.gescom.adapter import GesCom, create_gescom_engine

ROOT = Path(__file__).resolve().parent
migrate = Migrate()


def normalise_database_url(url: str) -> str:
    """Accept the usual spellings: postgres:// and postgresql:// mean psycopg 3 here."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise RuntimeError(f"{name} must be a whole number of seconds or items, not {value!r}") from None


def load_config(instance_path: str) -> dict:
    """Every setting that comes from the environment, with its default."""
    return {
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(
            os.environ.get("DATABASE_URL") or f"sqlite:///{os.path.join(instance_path, 'middleware.db')}"
        ),
        "GESCOM_DATABASE_URL": normalise_database_url(
            os.environ.get("GESCOM_DATABASE_URL") or f"sqlite:///{os.path.join(instance_path, 'demo-gescom.db')}"
        ),
        "GESCOM_SCHEMA": os.environ.get("GESCOM_SCHEMA") or None,
        "SYNC_INTERVAL": _env_int("SYNC_INTERVAL", 60),
        "SYNC_OVERLAP_SECONDS": _env_int("SYNC_OVERLAP_SECONDS", 120),
        "SYNC_RECHECK_LIMIT": _env_int("SYNC_RECHECK_LIMIT", 1000),
        "SYNC_RECHECK_AGE": _env_int("SYNC_RECHECK_AGE", 600),
        "SYNC_INITIAL_LOOKBACK_DAYS": _env_int("SYNC_INITIAL_LOOKBACK_DAYS", 30),
        "SYNC_FULL_SCAN_INTERVAL": _env_int("SYNC_FULL_SCAN_INTERVAL", 3600),
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "WEBHOOK_SECRET": os.environ.get("WEBHOOK_SECRET") or None,
        "SECRET_KEY": os.environ.get("SECRET_KEY") or None,  # signs the admin page's session; else <instance>/secret_key
        "PRESTASHOP_URL": os.environ.get("PRESTASHOP_URL") or None,
        "PRESTASHOP_API_KEY": os.environ.get("PRESTASHOP_API_KEY") or None,
        "PRESTASHOP_TIMEOUT": _env_int("PRESTASHOP_TIMEOUT", 30),
        "PRESTASHOP_EMPLOYEE_ID": _env_int("PRESTASHOP_EMPLOYEE_ID", 0) or None,
        "PRESTASHOP_WORKERS": max(1, _env_int("PRESTASHOP_WORKERS", 4)),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    }


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    # Several processes share the SQLite files (web workers, scheduler, CLI): wait for locks, don't fail.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()


def create_app(test_config: dict | None = None) -> Flask:
    load_dotenv(ROOT / ".env")
    app = Flask(__name__, instance_path=os.environ.get("INSTANCE_PATH") or str(ROOT / "instance"))
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(load_config(app.instance_path))
    if test_config:
        app.config.update(test_config)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    if app.config.get("WEBHOOK_SECRET"):
        from sync.store.webhooks import secret_key

        try:
            secret_key(app.config["WEBHOOK_SECRET"])
        except ValueError as error:
            raise RuntimeError(f"WEBHOOK_SECRET: {error}") from None
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    app.extensions["gescom"] = GesCom(create_gescom_engine(app.config["GESCOM_DATABASE_URL"]), app.config["GESCOM_SCHEMA"])
    configure_shop(app)

    from api import init_api

    init_api(app)

    from cli import register_commands

    register_commands(app)
    return app


def configure_shop(app: Flask) -> None:
    """Push mode when PRESTASHOP_URL and PRESTASHOP_API_KEY are set: the client, and the shop's states."""
    from sync.prestashop.states import ShopStates, shop_client

    client = shop_client(app.config)
    app.extensions["shop"] = client
    app.extensions["order_states"] = ShopStates(client) if client is not None else None


def gescom_of(app: Flask) -> GesCom:
    return app.extensions["gescom"]
