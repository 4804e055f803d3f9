"""Idempotency-Key: the same key and body get the same answer; the same key with another body is refused."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import IdempotencyKey, utcnow

# Kept: successes and refusals of the input itself (422), which the same body would get again. Not kept:
# answers that depend on the moment (busy, unavailable, a setting off, a field filled meanwhile): a retry
# with the same key is really tried again.
KEEP_FOR = timedelta(hours=24)


class IdempotencyMismatch(ValueError):
    """The key was used before for a different request body."""


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def replay(session: Session, key: str, endpoint: str, api_key_id: int | None, digest: str) -> tuple[int, dict] | None:
    row = session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.key == key,
            IdempotencyKey.endpoint == endpoint,
            IdempotencyKey.api_key_id == api_key_id,
            IdempotencyKey.created_at >= utcnow() - KEEP_FOR,
        )
    )
    if row is None:
        return None
    if row.body_hash != digest:
        raise IdempotencyMismatch(f"Idempotency-Key {key!r} was used for another request body")
    return row.status, row.response


def keep(session: Session, key: str, endpoint: str, api_key_id: int | None, digest: str, status: int, response: dict) -> None:
    """Record the answer to give a repeat of this request, in the caller's transaction (committed with the work
    it answers for)."""
    if not (200 <= status < 300 or status == 422):
        return
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - KEEP_FOR))
    try:
        with session.begin_nested():
            session.add(IdempotencyKey(key=key, endpoint=endpoint, api_key_id=api_key_id, body_hash=digest, status=status, response=response))
    except IntegrityError:
        pass  # the same request, answered concurrently: the first answer stands (only the savepoint is undone)
