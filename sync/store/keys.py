"""API keys: created with a scope, shown once, stored as a SHA-256 hash, revocable."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from models import ApiKey, utcnow
from sync.store.health import waits_at_most

log = logging.getLogger(__name__)

SCOPES = ("read", "write", "admin")  # each includes the ones before it
KEY_PREFIX = "sgps_"
USE_RECORDED_EVERY = 60  # seconds: last_used_at is written at most this often per key
USE_WAIT = 0.25  # seconds recording a key's use waits for a lock: a locked store slows no answer more


class ApiKeyError(ValueError):
    pass


def hash_key(key: str) -> str:
    # Keys are 256-bit random secrets: a plain SHA-256 is enough (no dictionary to guess from).
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def scope_allows(scope: str, needed: str) -> bool:
    return SCOPES.index(scope) >= SCOPES.index(needed)


def create_key(session: Session, name: str, scope: str = "read") -> tuple[ApiKey, str]:
    """A new key; returns the stored row and the key itself, which is never stored nor shown again."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ApiKeyError("a key needs a name of 1 to 100 characters")
    if scope not in SCOPES:
        raise ApiKeyError(f"scope must be one of {', '.join(SCOPES)}")
    existing = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if existing is not None and existing.revoked_at is None:
        raise ApiKeyError(f"a key named {name!r} exists already (revoke it first, or pick another name)")
    if existing is not None:  # a revoked key keeps its history under another name
        existing.name = f"{name[:80]} (revoked #{existing.id})"
        session.flush()
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, key_hash=hash_key(key), prefix=key[: len(KEY_PREFIX) + 4], scope=scope)
    session.add(row)
    session.flush()
    return row, key


def verify_key(session: Session, key: str) -> ApiKey | None:
    """The active key row for this secret, or None. Only reads: `touch_key` records the use."""
    if not key or len(key) > 200:
        return None
    return session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None)))


@dataclass(frozen=True)
class KeyUse:
    """What `touch_key` needs of a key, taken while the request's session holds its row: recording the use later
    never reloads the row (which a broken store could not)."""

    id: int
    prefix: str
    last_used_at: datetime | None

    @classmethod
    def of(cls, row: ApiKey) -> KeyUse:
        return cls(row.id, row.prefix, row.last_used_at)


def touch_key(engine: Engine, row: ApiKey | KeyUse, wait: float = USE_WAIT) -> None:
    """Record that this key was used now (at most once a minute), in a short transaction of its own that waits at
    most `wait` seconds for a lock: never the request's, nor its failure. A store that cannot take it is logged."""
    now = utcnow()
    if row.last_used_at is not None and (now - row.last_used_at).total_seconds() <= USE_RECORDED_EVERY:
        return
    try:
        with engine.connect() as own, waits_at_most(own, wait):
            own.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
            own.commit()
    except SQLAlchemyError as error:
        log.warning("when API key %s… was last used is not recorded: %s", row.prefix, error)


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(session: Session, name: str) -> ApiKey:
    row = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if row is None:
        raise ApiKeyError(f"no key named {name!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return row
