"""Idempotency-Key: the same key and body get the same answer and the work is done once; another body is refused.

A request claims its key before the work: the key's row is inserted "in progress" in a short session of its own,
committed at once, so that a repeat sent meanwhile sees it and is told to come back (`RequestInProgress`: the
IETF idempotency-key draft's 409). The answer is written onto the claim in the work's own transaction, committed
with the work; an answer that is not kept, or a failure, removes the claim so that a retry really tries again.
A claim still in progress after TAKE_OVER_AFTER (its process died mid-request) is taken over by the next repeat.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from models import IdempotencyKey, utcnow

log = logging.getLogger(__name__)

KEEP_FOR = timedelta(hours=24)
# A request's work takes a second or two (GesCom's write included); a claim this old was left by a dead process.
TAKE_OVER_AFTER = timedelta(seconds=60)
RETRY_AFTER_SECONDS = 1  # what a repeat sent during the work is told to wait
IN_PROGRESS = 0  # the status of a claim whose answer is not known yet (no HTTP status is 0)


class IdempotencyMismatch(ValueError):
    """The key was used before for a different request body."""


class RequestInProgress(RuntimeError):
    """The same request is being worked on by another request right now: come back in `retry_after` seconds."""

    retry_after = RETRY_AFTER_SECONDS


@dataclass(frozen=True)
class Claim:
    """This request does the work: its answer goes onto row `id`, claimed at `claimed_at` (which tells a takeover)."""

    id: int
    claimed_at: datetime


@dataclass(frozen=True)
class Stored:
    """The answer given to the same request before: give it again."""

    status: int
    response: dict


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def kept(status: int) -> bool:
    """Kept: successes and refusals of the input itself (422), which the same body would get again. Not kept: answers
    that depend on the moment (busy, unavailable, a setting off, a field filled meanwhile), tried again on a retry."""
    return 200 <= status < 300 or status == 422


def claim(session: Session, key: str, endpoint: str, api_key_id: int, digest: str) -> Claim | Stored:
    """Claim (key, endpoint, API key) for this request, committed at once on a session of its own; or the answer
    stored for it. Raises IdempotencyMismatch (another body) or RequestInProgress (the same request, being worked on)."""
    match = (IdempotencyKey.key == key, IdempotencyKey.endpoint == endpoint, IdempotencyKey.api_key_id == api_key_id)
    for _ in range(3):  # a claim removed between our insert and our read: claim again
        with Session(session.get_bind()) as own:
            now = utcnow()
            own.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < now - KEEP_FOR))  # forgotten after KEEP_FOR
            row = IdempotencyKey(key=key, endpoint=endpoint, api_key_id=api_key_id, body_hash=digest, status=IN_PROGRESS, response={}, created_at=now)
            try:
                # A concurrent claim of the same key holds the unique key until it commits; then this insert fails.
                with own.begin_nested():
                    own.add(row)
                own.commit()
                return Claim(row.id, now)
            except IntegrityError:
                pass  # claimed before: only the savepoint is undone
            earlier = own.scalar(select(IdempotencyKey).where(*match))
            if earlier is None:
                continue
            if earlier.body_hash != digest:
                raise IdempotencyMismatch(f"Idempotency-Key {key!r} was used for another request body")
            if earlier.status != IN_PROGRESS:
                return Stored(earlier.status, earlier.response)
            if earlier.created_at > now - TAKE_OVER_AFTER or not _take_over(own, earlier, now):
                raise RequestInProgress(f"a request with Idempotency-Key {key!r} is being worked on; send it again in a moment")
            return Claim(earlier.id, now)
    raise RequestInProgress(f"a request with Idempotency-Key {key!r} is being claimed and released; send it again in a moment")


def _take_over(own: Session, earlier: IdempotencyKey, now: datetime) -> bool:
    """Claim a key whose request died mid-work; False when another repeat took it over first."""
    taken = own.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == earlier.id, IdempotencyKey.status == IN_PROGRESS, IdempotencyKey.created_at == earlier.created_at)
        .values(created_at=now)
        .execution_options(synchronize_session=False)
    )
    own.commit()
    return taken.rowcount == 1


def finish(session: Session, claimed: Claim, status: int, response: dict) -> tuple[int, dict]:
    """Write a kept answer onto the claim, in the caller's transaction (committed with the work it answers for).
    Returns the answer to give: this one, or the one a takeover stored first (a request slower than TAKE_OVER_AFTER)."""
    done = session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == claimed.id, IdempotencyKey.status == IN_PROGRESS)
        .values(status=status, response=response)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount == 1:
        return status, response
    first = session.execute(select(IdempotencyKey.status, IdempotencyKey.response).where(IdempotencyKey.id == claimed.id)).first()
    return (first.status, first.response) if first is not None else (status, response)


def release(session: Session, claimed: Claim) -> None:
    """Remove the claim, in a short session of its own (the caller's may be broken): a retry is tried again. A claim
    taken over meanwhile (another `claimed_at`) is the new holder's and stays."""
    try:
        with Session(session.get_bind()) as own:
            own.execute(
                delete(IdempotencyKey).where(
                    IdempotencyKey.id == claimed.id, IdempotencyKey.status == IN_PROGRESS, IdempotencyKey.created_at == claimed.claimed_at
                )
            )
            own.commit()
    except SQLAlchemyError as error:
        # Called while another error is answered: that one is the news. The claim is taken over after TAKE_OVER_AFTER.
        log.warning("Idempotency-Key claim %s is not removed (a retry waits until it is taken over): %s", claimed.id, error)
