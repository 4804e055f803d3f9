"""Fixtures: fresh store and GesCom databases per test, on the backend chosen by TEST_BACKEND.

TEST_BACKEND=sqlite (default) or postgresql. PostgreSQL comes from TEST_POSTGRES_URL; each test gets its
own schema (search_path), dropped afterwards. REQUIRE_POSTGRES=1 (CI) turns a missing server into a failure.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

TEST_BACKEND = os.environ.get("TEST_BACKEND", "sqlite")
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"

if TEST_BACKEND not in ("sqlite", "postgresql"):
    raise pytest.UsageError(f"TEST_BACKEND must be sqlite or postgresql, not {TEST_BACKEND!r}")

_pg_state: dict[str, object] = {}


def postgres_available() -> bool:
    if "ok" not in _pg_state:
        try:
            engine = create_engine(PG_URL)
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            _pg_state["ok"] = True
        except Exception as error:  # any connection error means "not here"
            _pg_state["ok"], _pg_state["why"] = False, str(error).splitlines()[0]
    return bool(_pg_state["ok"])


def need_postgres() -> None:
    if not postgres_available():
        message = f"PostgreSQL not reachable at {PG_URL}: {_pg_state.get('why')}"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)


@dataclass
class Database:
    """A fresh database: an engine, plus what a Flask app config needs to reach the same place."""

    engine: Engine
    url: str
    engine_options: dict


def _sqlite(path: Path) -> Database:
    url = f"sqlite:///{path}"
    return Database(create_engine(url), url, {})


class PostgresSchemas:
    def __init__(self):
        self.created: list[str] = []
        self.engines: list[Engine] = []

    def new(self, prefix: str) -> Database:
        need_postgres()
        schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        self.created.append(schema)
        options = {"connect_args": {"options": f"-csearch_path={schema}"}}
        engine = create_engine(PG_URL, **options)
        self.engines.append(engine)
        return Database(engine, PG_URL, options)

    def drop_all(self) -> None:
        for engine in self.engines:
            engine.dispose()
        if not self.created:
            return
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for schema in self.created:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pg_schemas():
    schemas = PostgresSchemas()
    yield schemas
    schemas.drop_all()


def _database(kind: str, backend: str, tmp_path: Path, pg_schemas: PostgresSchemas) -> Database:
    if backend == "postgresql":
        return pg_schemas.new(kind)
    return _sqlite(tmp_path / f"{kind}.db")


@pytest.fixture(params=[TEST_BACKEND])
def backend(request) -> str:
    return request.param


@pytest.fixture
def store_db(backend, tmp_path, pg_schemas) -> Database:
    from models import db

    database = _database("store", backend, tmp_path, pg_schemas)
    db.metadata.create_all(database.engine)
    yield database
    database.engine.dispose()


@pytest.fixture
def gescom_db(backend, tmp_path, pg_schemas) -> Database:
    database = _database("gescom", backend, tmp_path, pg_schemas)
    yield database
    database.engine.dispose()


@pytest.fixture
def session(store_db) -> Session:
    with Session(store_db.engine) as session:
        yield session


class Clock:
    """The warehouse's clock: starts now (GesCom's clock, as Sage's triggers use), moves on when told."""

    def __init__(self):
        self.now = datetime.now().replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, minutes: float = 1) -> datetime:
        self.now += timedelta(minutes=minutes)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gescom(gescom_db):
    """An empty Sage-shaped GesCom (carriers and free-field definitions only) and its adapter."""
    from sync.gescom.adapter import GesCom
    from sync.gescom.demo.schema import create_gescom

    create_gescom(gescom_db.engine)
    return GesCom(gescom_db.engine)


@pytest.fixture
def warehouse(gescom, gescom_db, clock):
    from sync.gescom.demo.warehouse import Warehouse

    return Warehouse(gescom_db.engine, clock)


def make_test_app(store_db, gescom_db, **config):
    """An app on the test store and GesCom, with these settings besides (the store's tables are shared by all)."""
    from app import create_app

    return create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": store_db.url,
            "SQLALCHEMY_ENGINE_OPTIONS": {**store_db.engine_options, "pool_pre_ping": True},
            "GESCOM_DATABASE_URL": gescom_db.url,
            "SECRET_KEY": "test-only-admin-session-secret",  # the developer's instance/secret_key is never made
            **config,
        }
    )


@pytest.fixture
def app(store_db, gescom_db, tmp_path):
    app = make_test_app(store_db, gescom_db, SYNC_RECHECK_AGE=0)
    if gescom_db.engine_options:
        from sync.gescom.adapter import GesCom

        app.extensions["gescom"] = GesCom(gescom_db.engine)
    yield app


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def client(app):
    return app.test_client()


class Sync:
    """Drives runs against the test GesCom and store, and reads back what they stored."""

    def __init__(self, session, gescom):
        from sync.services.run_config import RunConfig

        self.session = session
        self.gescom = gescom
        self.config = RunConfig(recheck_age=timedelta(0))

    def settings(self, **patch):
        from sync.store.settings import save_settings

        document = {}
        for path, value in patch.items():
            node = document
            *parents, leaf = path.split("__")
            for parent in parents:
                node = node.setdefault(parent, {})
            node[leaf] = value
        saved = save_settings(self.session, document, self.gescom.schema())[0]
        self.session.commit()  # the test is the entry point here
        return saved

    def run(self, **options):
        from sync.services.runs import run_sync
        from sync.services.unit_of_work import UnitOfWork

        result = run_sync(UnitOfWork(self.session), self.gescom, config=options.pop("config", self.config), **options)
        assert result.run.status == "succeeded", result.run.error
        return result

    def updates(self, order_key: str | None = None) -> list[dict]:
        from sqlalchemy import select

        from models import Update

        query = select(Update).order_by(Update.id)
        if order_key is not None:
            query = query.where(Update.order_key == order_key)
        return [update.to_dict() for update in self.session.scalars(query)]

    def new_updates(self, **options) -> list[dict]:
        """Run once; the updates that run stored."""
        before = {u["id"] for u in self.updates()}
        self.run(**options)
        return [u for u in self.updates() if u["id"] not in before]

    def order(self, order_key: str):
        from sqlalchemy import select

        from models import ShopOrder

        self.session.expire_all()
        return self.session.scalars(select(ShopOrder).where(ShopOrder.order_key == order_key)).first()


@pytest.fixture
def sync(session, gescom) -> Sync:
    return Sync(session, gescom)


@pytest.fixture
def keys(app):
    """One API key per scope: {"read": "...", "write": "...", "admin": "..."}."""
    from models import db
    from sync.store.keys import create_key

    with app.app_context():
        keys = {scope: create_key(db.session, f"test-{scope}", scope)[1] for scope in ("read", "write", "admin")}
        db.session.commit()
        return keys


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def shop_key(app, name: str, scope: str, shop_code: str) -> dict:
    """The Authorization header of a new API key bound to the shop `shop_code` (a module installed in that shop)."""
    from models import db
    from sync.store.keys import create_key

    with app.app_context():
        key = create_key(db.session, name, scope, shop_code)[1]
        db.session.commit()
    return bearer(key)
