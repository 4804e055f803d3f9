"""The admin page's sessions: a random token in the browser's cookie, its SHA-256 in `admin_sessions`.

A session holds while its row is not ended, not past its absolute end, not idle too long and its key not revoked:
logging out ends the row, so a copy of the cookie taken before opens nothing afterwards.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from models import AdminSession, ApiKey, utcnow

TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 100  # token_urlsafe(32) is 43 characters: anything longer is not ours
SEEN_RECORDED_EVERY = timedelta(seconds=60)  # last_seen_at is written at most this often per session
KEPT_AFTER_END = timedelta(days=30)  # ended and expired rows stay this long (who was signed in when), then go


@dataclass(frozen=True)
class Lifetime:
    """How long a session lasts: `absolute` after the login whatever happens, `idle` after its last request (None: no limit)."""

    absolute: timedelta
    idle: timedelta | None = None


def hash_token(token: str) -> str:
    # 256-bit random tokens: a plain SHA-256 is enough, and a copy of the table opens no session.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_session(session: Session, api_key_id: int, lifetime: Lifetime) -> str:
    """A new session for this key; returns the token for the cookie (never stored). Old rows are cleared on the way."""
    now = utcnow()
    session.execute(
        delete(AdminSession)
        .where(or_(AdminSession.expires_at < now - KEPT_AFTER_END, AdminSession.ended_at < now - KEPT_AFTER_END))
        .execution_options(synchronize_session=False)
    )
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(AdminSession(id=hash_token(token), api_key_id=api_key_id, created_at=now, last_seen_at=now, expires_at=now + lifetime.absolute))
    session.flush()
    return token


def live_session(session: Session, token: object, lifetime: Lifetime) -> tuple[AdminSession, ApiKey] | None:
    """The session of this token and its key while it holds (not ended, expired, idle too long, nor its key revoked)."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    now = utcnow()
    query = (
        select(AdminSession, ApiKey)
        .join(ApiKey, ApiKey.id == AdminSession.api_key_id)
        .where(AdminSession.id == hash_token(token), AdminSession.ended_at.is_(None), AdminSession.expires_at > now, ApiKey.revoked_at.is_(None))
    )
    if lifetime.idle is not None:
        query = query.where(AdminSession.last_seen_at > now - lifetime.idle)
    found = session.execute(query).first()
    return (found[0], found[1]) if found is not None else None


def needs_seen(admin_session: AdminSession) -> bool:
    """Whether this request should be recorded as the session's last one (at most once a minute)."""
    return utcnow() - admin_session.last_seen_at >= SEEN_RECORDED_EVERY


def mark_seen(session: Session, session_id: str) -> None:
    """The session was used now: its idle time starts again."""
    session.execute(
        update(AdminSession)
        .where(AdminSession.id == session_id, AdminSession.ended_at.is_(None))
        .values(last_seen_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def end_session(session: Session, token: object) -> bool:
    """End the session of this token (logging out); True when one was open."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        return False
    result = session.execute(
        update(AdminSession)
        .where(AdminSession.id == hash_token(token), AdminSession.ended_at.is_(None))
        .values(ended_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1
