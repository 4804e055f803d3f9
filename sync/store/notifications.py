"""Webhooks to consumers, in the store: each consumer's endpoint and secret, its one pending `updates.available` event
(coalesced), the lease of the attempt in flight (one per consumer, across processes), and the attempts made.

Every function works in the caller's session and never commits (the service steps commit through the unit of work).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from models import ApiKey, UpdateAck, utcnow
from models import Update as UpdateRow
from models.notifications import ConsumerWebhook, WebhookDelivery
from sync.store.feed import head_id
from sync.store.keys import SCOPES, is_consumer

EVENT_TYPE = "updates.available"
MAX_URL = 2000
LOOPBACK_NAMES = ("localhost", "localhost.localdomain")
KEEP_ATTEMPTS = 100  # attempts kept per consumer, the latest


class EndpointError(ValueError):
    """The endpoint cannot be registered; `field` names the input at fault."""

    def __init__(self, message: str, field: str = "url"):
        super().__init__(message)
        self.field = field


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def checked_url(url: str, *, allow_http: bool = False) -> str:
    """The endpoint URL if we may post to it: https, or http to this machine only when `allow_http` (tests, the demo)."""
    url = (url or "").strip()
    if not url or len(url) > MAX_URL or any(character.isspace() for character in url):
        raise EndpointError(f"url must be an https URL of at most {MAX_URL} characters, without spaces")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018  (a port that is not a number raises here)
    except ValueError:
        raise EndpointError("url is not a valid URL") from None
    if not host:
        raise EndpointError("url needs a host name")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and allow_http and _is_loopback(host):
        return url
    if parts.scheme == "http" and _is_loopback(host):
        raise EndpointError("url must be https (http to this machine only when CONSUMER_WEBHOOK_ALLOW_HTTP is on)")
    raise EndpointError("url must be https")


def new_secret() -> str:
    """A Standard Webhooks secret: whsec_ and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def endpoint_of(session: Session, key_id: int) -> ConsumerWebhook | None:
    return session.get(ConsumerWebhook, key_id)


def register_endpoint(session: Session, key_id: int, url: str, *, allow_http: bool = False) -> tuple[ConsumerWebhook, str | None]:
    """Register or change this consumer's endpoint; the secret is returned when one is made (creation), else None."""
    url = checked_url(url, allow_http=allow_http)
    row = endpoint_of(session, key_id)
    if row is not None:
        row.url, row.updated_at = url, utcnow()
        if row.pending_head is not None:  # a fixed URL is tried at once, not after the backoff of the broken one
            row.attempts, row.next_attempt_at = 0, row.updated_at
        session.flush()
        return row, None
    secret = new_secret()
    row = ConsumerWebhook(key_id=key_id, url=url, secret=secret)
    session.add(row)
    session.flush()
    return row, secret


def rotate_secret(session: Session, key_id: int) -> str | None:
    """A new secret for this consumer's endpoint (returned once), or None when it has none."""
    row = endpoint_of(session, key_id)
    if row is None:
        return None
    row.secret, row.updated_at = new_secret(), utcnow()
    # The pending event is signed afresh at its next attempt: same id and body, the new secret.
    session.flush()
    return row.secret


def remove_endpoint(session: Session, key_id: int) -> bool:
    """Forget this consumer's endpoint and its attempts; whether there was one."""
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.key_id == key_id))
    return session.execute(delete(ConsumerWebhook).where(ConsumerWebhook.key_id == key_id)).rowcount > 0


def recent_deliveries(session: Session, key_id: int, limit: int = 20) -> list[WebhookDelivery]:
    """The latest attempts to deliver to this consumer, newest first."""
    query = select(WebhookDelivery).where(WebhookDelivery.key_id == key_id).order_by(WebhookDelivery.id.desc()).limit(limit)
    return list(session.scalars(query))


def list_endpoints(session: Session) -> list[tuple[ConsumerWebhook, ApiKey]]:
    """Every registered endpoint with its consumer's key, oldest key first."""
    return list(session.execute(select(ConsumerWebhook, ApiKey).join(ApiKey, ApiKey.id == ConsumerWebhook.key_id).order_by(ApiKey.id)).all())


_CONSUMER_SCOPES = [scope for scope in SCOPES if is_consumer(scope)]
_ACTIVE_CONSUMER = exists().where(ApiKey.id == ConsumerWebhook.key_id, ApiKey.revoked_at.is_(None), ApiKey.scope.in_(_CONSUMER_SCOPES))


def _unacked_after(key_id: int, after: int):
    """Updates after `after` this consumer has not acknowledged."""
    acked = exists().where(UpdateAck.key_id == key_id, UpdateAck.update_id == UpdateRow.id)
    return select(UpdateRow.id).where(UpdateRow.id > after, ~acked)


def waiting_for(session: Session, key_id: int) -> int:
    """How many updates this consumer has not acknowledged."""
    return session.scalar(select(func.count()).select_from(_unacked_after(key_id, 0).subquery()))


def queue_events(session: Session, now: datetime | None = None) -> int:
    """Make an event pending for each consumer with an endpoint and updates it has not acknowledged beyond the head
    it was last told of; a consumer whose event is pending gets the newer head on it (no second event). How many
    endpoints changed."""
    now = now or utcnow()
    head = head_id(session)
    changed = 0
    rows = session.execute(
        select(ConsumerWebhook.key_id, ConsumerWebhook.notified_head, ConsumerWebhook.pending_head).where(
            _ACTIVE_CONSUMER, ConsumerWebhook.notified_head < head, or_(ConsumerWebhook.pending_head.is_(None), ConsumerWebhook.pending_head < head)
        )
    ).all()
    for key_id, notified, pending in rows:
        if session.scalar(_unacked_after(key_id, max(notified, pending or 0)).limit(1)) is None:
            if pending is None:  # all acknowledged up to the head (by polling): nothing to tell, nor to look at again
                _told_up_to(session, key_id, head)
            continue
        fresh = ConsumerWebhook.pending_head.is_(None)
        values = {"pending_head": head}
        if pending is None:
            values.update(pending_since=now, attempts=0, next_attempt_at=now)
        # Conditional: another process queueing the same head at once changes nothing more.
        still = fresh if pending is None else ConsumerWebhook.pending_head == pending
        result = session.execute(
            update(ConsumerWebhook).where(ConsumerWebhook.key_id == key_id, still).values(**values).execution_options(synchronize_session=False)
        )
        changed += result.rowcount
    return changed


def _told_up_to(session: Session, key_id: int, head: int) -> None:
    quiet = (ConsumerWebhook.key_id == key_id) & ConsumerWebhook.pending_head.is_(None) & (ConsumerWebhook.notified_head < head)
    session.execute(update(ConsumerWebhook).where(quiet).values(notified_head=head).execution_options(synchronize_session=False))


def _due(now: datetime):
    return and_(
        ConsumerWebhook.pending_head.is_not(None),
        ConsumerWebhook.next_attempt_at <= now,
        or_(ConsumerWebhook.lease_until.is_(None), ConsumerWebhook.lease_until < now),
        _ACTIVE_CONSUMER,
    )


def due_endpoints(session: Session, now: datetime, limit: int = 100) -> list[int]:
    """The consumers whose pending event is due and not in flight, the longest waiting first."""
    return list(session.scalars(select(ConsumerWebhook.key_id).where(_due(now)).order_by(ConsumerWebhook.next_attempt_at).limit(limit)))


def claim_endpoint(session: Session, key_id: int, holder: str, now: datetime, lease: timedelta) -> bool:
    """Take the lease of this consumer's next attempt (atomic: of two claimers, one only gets it)."""
    claimed = update(ConsumerWebhook).where(ConsumerWebhook.key_id == key_id, _due(now)).values(lease_holder=holder, lease_until=now + lease)
    return session.execute(claimed.execution_options(synchronize_session=False)).rowcount == 1


@dataclass(frozen=True)
class Event:
    """An event to send, as claimed: where, signed with what, its id, head and exact body."""

    key_id: int
    url: str
    secret: str
    event_id: str
    head: int
    body: str
    attempt: int


def event_to_send(session: Session, key_id: int, now: datetime) -> Event:
    """The claimed consumer's event: the one already made for its pending head (a retry: same id, same body), or a
    new one when the head changed (a new id: the receiver may take a repeated id as already handled)."""
    row = session.get(ConsumerWebhook, key_id, populate_existing=True)
    if row.event_id is None or row.event_head != row.pending_head:
        data = {"head": row.pending_head, "waiting": waiting_for(session, key_id)}
        row.event_body = json.dumps({"type": EVENT_TYPE, "timestamp": now.isoformat(timespec="seconds") + "Z", "data": data}, separators=(",", ":"))
        row.event_id, row.event_head = f"msg_{uuid.uuid4().hex}", row.pending_head
        session.flush()
    return Event(key_id, row.url, row.secret, row.event_id, row.event_head, row.event_body, row.attempts + 1)


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: the answer's status, or the error (no answer), and how long it took."""

    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _keep_latest_attempts(session: Session, key_id: int) -> None:
    """Forget a consumer's attempts beyond the latest KEEP_ATTEMPTS: an endpoint told every minute makes many."""
    mine = select(WebhookDelivery.id).where(WebhookDelivery.key_id == key_id)
    oldest_kept = mine.order_by(WebhookDelivery.id.desc()).offset(KEEP_ATTEMPTS - 1).limit(1).scalar_subquery()
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.key_id == key_id, WebhookDelivery.id < oldest_kept))


def record_attempt(session: Session, event: Event, holder: str, outcome: Outcome, now: datetime, retry_in: timedelta | None) -> bool:
    """Record the attempt and give the lease back. Delivered: the head counts as told (a newer head queued meanwhile
    stays pending, due now). Failed: retried in `retry_in`, or given up on when None. False when the lease was lost
    (the endpoint removed, or the lease expired and taken by another)."""
    row = session.get(ConsumerWebhook, event.key_id, populate_existing=True, with_for_update=True)
    if row is None or row.lease_holder != holder:
        return False
    session.add(
        WebhookDelivery(
            key_id=event.key_id,
            event_id=event.event_id,
            head=event.head,
            url=event.url,
            attempt=event.attempt,
            attempted_at=now,
            status_code=outcome.status_code,
            error=(outcome.error or None) and outcome.error[:500],
            duration_ms=outcome.duration_ms,
            delivered=outcome.delivered,
        )
    )
    session.flush()
    _keep_latest_attempts(session, event.key_id)
    row.lease_holder, row.lease_until = None, None
    if outcome.delivered or retry_in is None:
        row.notified_head = max(row.notified_head, event.head)
        newer = row.pending_head is not None and row.pending_head > event.head
        row.pending_head, row.attempts = (row.pending_head if newer else None), 0
        row.pending_since, row.next_attempt_at = (now if newer else None), (now if newer else None)
    else:
        row.attempts += 1
        row.next_attempt_at = now + retry_in
    session.flush()
    return True
