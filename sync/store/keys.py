"""API keys: created with a scope, shown once, stored as a SHA-256 hash, revocable."""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from models import ApiKey, utcnow
from sync.store.health import waits_at_most
from sync.store.shops import default_shop, get_shop

log = logging.getLogger(__name__)

SCOPES = ("read", "write", "admin")  # each includes the ones before it
KEY_PREFIX = "sgps_"
USE_RECORDED_EVERY = 60  # seconds: last_used_at is written at most this often per key
USE_WAIT = 0.25  # seconds recording a key's use waits for a lock: a locked store slows no answer more
CACHE_SECONDS = 10  # API_KEY_CACHE_SECONDS's default: a key revoked elsewhere is refused at most this much later
CACHE_SIZE = 1000  # active keys remembered per process at most (a shop has a handful)


class ApiKeyError(ValueError):
    pass


class KeyShopError(ApiKeyError):
    """The shop asked for a new key does not exist, or is given to an admin key (which sees every shop)."""


def hash_key(key: str) -> str:
    # Keys are 256-bit random secrets: a plain SHA-256 is enough (no dictionary to guess from).
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def scope_allows(scope: str, needed: str) -> bool:
    return SCOPES.index(scope) >= SCOPES.index(needed)


def is_consumer(scope: str) -> bool:
    """A key that may write is a consumer of the pull feed: it acknowledges updates for itself (read keys only read)."""
    return scope_allows(scope, "write")


def list_consumers(session: Session) -> list[ApiKey]:
    """The active keys that consume the pull feed, oldest first."""
    scopes = [scope for scope in SCOPES if is_consumer(scope)]
    return list(session.scalars(select(ApiKey).where(ApiKey.scope.in_(scopes), ApiKey.revoked_at.is_(None)).order_by(ApiKey.id)))


def create_key(session: Session, name: str, scope: str = "read", shop_code: str | None = None) -> tuple[ApiKey, str]:
    """A new key; returns the stored row and the key itself, which is never stored nor shown again. Read and write
    keys are bound to one shop (`shop_code`, by default the default shop); admin keys see every shop."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ApiKeyError("a key needs a name of 1 to 100 characters")
    if scope not in SCOPES:
        raise ApiKeyError(f"scope must be one of {', '.join(SCOPES)}")
    shop_id = _key_shop_id(session, scope, shop_code)
    existing = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if existing is not None and existing.revoked_at is None:
        raise ApiKeyError(f"a key named {name!r} exists already (revoke it first, or pick another name)")
    if existing is not None:  # a revoked key keeps its history under another name
        existing.name = f"{name[:80]} (revoked #{existing.id})"
        session.flush()
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, key_hash=hash_key(key), prefix=key[: len(KEY_PREFIX) + 4], scope=scope, shop_id=shop_id)
    session.add(row)
    session.flush()
    return row, key


def _key_shop_id(session: Session, scope: str, shop_code: str | None) -> int | None:
    """The shop a new key is bound to: none for admin keys (they see every shop), else the named or the default shop."""
    if scope == "admin":
        if shop_code is not None:
            raise KeyShopError("admin keys see every shop: create a read or write key to bind it to one shop")
        return None
    if shop_code is None:
        return default_shop(session).id
    shop = get_shop(session, shop_code)
    if shop is None:
        raise KeyShopError(f"no shop has the code {shop_code[:20]!r}")
    return shop.id


def verify_key(session: Session, key: str) -> ApiKey | None:
    """The active key row for this secret, or None. Only reads: `touch_key` records the use."""
    if not key or len(key) > 200:
        return None
    return session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None)))


@dataclass(frozen=True)
class KeyGrant:
    """What a checked key may do, as the API needs it per request (cached by `KeyCache`); a plain value, so
    recording its use after the view never reloads the row (which a broken store could not)."""

    id: int
    scope: str
    prefix: str
    last_used_at: datetime | None
    shop_id: int | None = None  # the one shop the key sees; None: every shop (admin keys)


# The key check of every API request, built once: the statement is the same each time.
_ACTIVE_KEY = select(ApiKey.id, ApiKey.scope, ApiKey.prefix, ApiKey.last_used_at, ApiKey.shop_id).where(
    ApiKey.key_hash == bindparam("key_hash"), ApiKey.revoked_at.is_(None)
)


class KeyCache:
    """Active keys checked lately, per process: key hash -> `KeyGrant` for `seconds`, at most `size` of them.
    A key revoked in this process is forgotten at once (`revoke_key`); elsewhere within `seconds`."""

    _all: weakref.WeakSet[KeyCache] = weakref.WeakSet()  # every cache of the process, for revoke_key

    def __init__(self, seconds: float = CACHE_SECONDS, size: int = CACHE_SIZE, clock: Callable[[], float] = time.monotonic):
        self.seconds, self.size, self.clock = seconds, size, clock
        self._grants: dict[str, tuple[float, KeyGrant]] = {}  # key hash -> (expiry by `clock`, grant)
        self._lock = threading.Lock()
        KeyCache._all.add(self)

    def get(self, key_hash: str) -> KeyGrant | None:
        with self._lock:
            entry = self._grants.get(key_hash)
            if entry is None:
                return None
            if entry[0] <= self.clock():
                del self._grants[key_hash]
                return None
            return entry[1]

    def put(self, key_hash: str, grant: KeyGrant, read_at: float) -> None:
        """Remember a grant read from the store at `read_at` (taken before the read: the bound holds from there)."""
        if self.seconds <= 0:
            return
        with self._lock:
            if len(self._grants) >= self.size and key_hash not in self._grants:
                now = self.clock()
                for stale in [h for h, (expiry, _) in self._grants.items() if expiry <= now] or [next(iter(self._grants))]:
                    del self._grants[stale]
            self._grants[key_hash] = (read_at + self.seconds, grant)

    def used(self, key_hash: str, when: datetime) -> None:
        """The key's use was recorded at `when`: the next requests need not record it again for a minute."""
        with self._lock:
            entry = self._grants.get(key_hash)
            if entry is not None:
                self._grants[key_hash] = (entry[0], replace(entry[1], last_used_at=when))

    def forget(self, key_hash: str) -> None:
        with self._lock:
            self._grants.pop(key_hash, None)

    @classmethod
    def forget_everywhere(cls, key_hash: str) -> None:
        for cache in list(cls._all):
            cache.forget(key_hash)


def check_key(session: Session, key: str, cache: KeyCache) -> tuple[str, KeyGrant] | None:
    """The key's hash and what it may do, from the cache or else the store; None for an unknown or revoked key.
    Only reads; unknown keys are not cached (a key just created works at once)."""
    if not key or len(key) > 200:
        return None
    key_hash = hash_key(key)
    grant = cache.get(key_hash)
    if grant is None:
        read_at = cache.clock()
        row = session.execute(_ACTIVE_KEY, {"key_hash": key_hash}).first()
        if row is None:
            return None
        grant = KeyGrant(*row)
        cache.put(key_hash, grant, read_at)
    return key_hash, grant


def touch_key(engine: Engine, row: ApiKey | KeyGrant, wait: float = USE_WAIT) -> datetime | None:
    """Record that this key was used now (at most once a minute), in a short transaction of its own that waits at
    most `wait` seconds for a lock: never the request's, nor its failure. A store that cannot take it is logged.
    Returns when the use was recorded, None when it was not (not due, or failed)."""
    now = utcnow()
    if row.last_used_at is not None and (now - row.last_used_at).total_seconds() <= USE_RECORDED_EVERY:
        return None
    try:
        with engine.connect() as own, waits_at_most(own, wait):
            own.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
            own.commit()
    except SQLAlchemyError as error:
        log.warning("when API key %s… was last used is not recorded: %s", row.prefix, error)
        return None
    return now


def record_served(engine: Engine, key_id: int, up_to: int, wait: float = USE_WAIT) -> bool:
    """Remember that the feed served this consumer updates up to `up_to` (what it may acknowledge; never lowered), in
    a short transaction of its own like `touch_key`: a store that cannot take it still serves the page (logged), and
    the consumer's acknowledgement beyond it is refused until a pull is recorded. Returns whether it was recorded."""
    try:
        with engine.connect() as own, waits_at_most(own, wait):
            own.execute(update(ApiKey).where(ApiKey.id == key_id, ApiKey.served_up_to < up_to).values(served_up_to=up_to))
            own.commit()
    except SQLAlchemyError as error:
        log.warning("how far the feed served API key #%s is not recorded (it may be asked to pull again): %s", key_id, error)
        return False
    return True


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(session: Session, name: str) -> ApiKey:
    row = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if row is None:
        raise ApiKeyError(f"no key named {name!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    KeyCache.forget_everywhere(row.key_hash)  # this process's requests refuse it at once; other processes within their cache's time
    return row
