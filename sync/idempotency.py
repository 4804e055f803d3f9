"""Idempotency-Key: the same key and body get the same answer; the same key with another body is refused."""
from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import IdempotencyKey

# Answers that say "try again later" are not kept: the retry must really be tried again.
TRANSIENT_CODES = frozenset({"document_busy", "gescom_unavailable", "run_in_progress"})


class IdempotencyMismatch(ValueError):
    """The key was used before for a different request body."""


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def replay(session: Session, key: str, endpoint: str, api_key_id: int | None, digest: str) -> tuple[int, dict] | None:
    row = session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.key == key, IdempotencyKey.endpoint == endpoint, IdempotencyKey.api_key_id == api_key_id)
    )
    if row is None:
        return None
    if row.body_hash != digest:
        raise IdempotencyMismatch(f"Idempotency-Key {key!r} was used for another request body")
    return row.status, row.response


def keep(session: Session, key: str, endpoint: str, api_key_id: int | None, digest: str, status: int, response: dict) -> None:
    if status >= 500 or response.get("code") in TRANSIENT_CODES:
        return
    try:
        with session.begin_nested():
            session.add(IdempotencyKey(key=key, endpoint=endpoint, api_key_id=api_key_id, body_hash=digest, status=status, response=response))
        session.commit()
    except IntegrityError:
        session.rollback()  # the same request, answered concurrently: the first answer stands
