"""Webhooks to consumers: after a run has committed its updates, each consumer with an endpoint is sent one signed
`updates.available` event (Standard Webhooks, signed as inbound webhooks are checked: sync/store/webhooks.py).

At most one attempt is in flight per consumer (a lease on its row, across processes); a newer head while one is
pending or retrying only changes the pending event's head; failures are retried with exponential backoff at the
next ticks once due, and given up on after `max_attempts` (the pull feed is always there: polling still works).
Delivery runs in a thread of its own, never in the run's transaction nor in an API request.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests

from models import utcnow
from sync.services.unit_of_work import UnitOfWork
from sync.store.notifications import Event, Outcome, claim_endpoint, due_endpoints, event_to_send, queue_events, record_attempt
from sync.store.webhooks import sign

log = logging.getLogger(__name__)

USER_AGENT = "sage-prestashop-middleware/webhooks"


@dataclass(frozen=True)
class DeliveryOptions:
    """How events are delivered (CONSUMER_WEBHOOK_* settings)."""

    timeout: float = 5.0
    allow_http: bool = False  # http to this machine (tests, the demo); else https only
    first_retry: timedelta = timedelta(seconds=30)
    last_retry: timedelta = timedelta(hours=1)
    max_attempts: int = 12

    @classmethod
    def from_mapping(cls, config: Mapping) -> DeliveryOptions:
        return cls(
            timeout=float(config.get("CONSUMER_WEBHOOK_TIMEOUT", 5)),
            allow_http=bool(config.get("CONSUMER_WEBHOOK_ALLOW_HTTP", False)),
            max_attempts=max(1, int(config.get("CONSUMER_WEBHOOK_MAX_ATTEMPTS", 12))),
        )

    @property
    def lease(self) -> timedelta:
        """How long a claimed attempt holds its consumer: past it (a process killed mid-send), another may retry."""
        return timedelta(seconds=self.timeout * 2 + 30)

    def retry_in(self, attempts: int) -> timedelta | None:
        """The wait before the next try after `attempts` failed ones (doubling, ±25 %), None once given up."""
        if attempts >= self.max_attempts:
            return None
        base = min(self.first_retry * (2 ** max(attempts - 1, 0)), self.last_retry)
        return base * (0.75 + random.random() / 2)


Sender = Callable[[str, dict, bytes, float], Outcome]


def post_event(url: str, headers: dict, body: bytes, timeout: float) -> Outcome:
    """POST the event; 2xx is delivered. Redirects are not followed (the endpoint registered is the one we sign for)."""
    started = time.monotonic()
    try:
        with requests.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False, stream=True) as answer:
            status = answer.status_code
    except requests.RequestException as error:
        return Outcome(None, f"{type(error).__name__}: {error}"[:500], _ms_since(started))
    return Outcome(status, None if 200 <= status < 300 else f"HTTP {status}", _ms_since(started))


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def signed_headers(event: Event, sent_at: int) -> dict:
    """Standard Webhooks headers for this event, signed with the consumer's secret (never logged)."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": event.event_id,
        "webhook-timestamp": str(sent_at),
        "webhook-signature": sign(event.secret, event.event_id, sent_at, event.body.encode("utf-8")),
    }


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    given_up: int = 0
    lost: int = 0  # attempts whose lease was gone when their outcome came back
    details: list[str] = field(default_factory=list)


def deliver_due(
    uow: UnitOfWork,
    options: DeliveryOptions,
    *,
    send: Sender = post_event,
    clock: Callable[[], datetime] = utcnow,
    holder: str | None = None,
) -> DeliveryReport:
    """Send each due pending event once: claim the consumer (committed), send outside any transaction, record the
    attempt (committed). Consumers claimed by another process or thread are left to it."""
    holder = holder or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"
    report = DeliveryReport()
    for key_id in due_endpoints(uow.session, clock()):
        now = clock()
        if not claim_endpoint(uow.session, key_id, holder, now, options.lease):
            uow.rollback()
            continue
        event = event_to_send(uow.session, key_id, now)
        uow.commit()  # the lease and the event stand before anything is sent
        outcome = send(event.url, signed_headers(event, int(time.time())), event.body.encode("utf-8"), options.timeout)
        retry_in = None if outcome.delivered else options.retry_in(event.attempt)
        if not record_attempt(uow.session, event, holder, outcome, clock(), retry_in):
            uow.rollback()
            report.lost += 1
            continue
        uow.commit()
        _tally(report, event, outcome, retry_in)
    return report


def _tally(report: DeliveryReport, event: Event, outcome: Outcome, retry_in: timedelta | None) -> None:
    if outcome.delivered:
        report.delivered += 1
        return
    report.failed += 1
    if retry_in is None:
        report.given_up += 1
    # The URL is the consumer's own and holds no secret of ours; the body and signature are not logged.
    report.details.append(f"consumer #{event.key_id}: event {event.event_id} attempt {event.attempt} failed: {outcome.error}")
    log.warning(
        "webhook to consumer #%s: attempt %s failed (%s)%s", event.key_id, event.attempt, outcome.error, "; given up" if retry_in is None else ""
    )


def notify_consumers(uow: UnitOfWork, options: DeliveryOptions, *, send: Sender = post_event) -> threading.Thread:
    """Queue the events the committed updates call for and deliver what is due, in a daemon thread with a unit of
    work of its own: the caller (a scheduler tick, after its run) is never held up by an endpoint."""
    mine = uow.another()  # made here: the caller's session may be bound to this thread's context

    def target() -> None:  # the thread's entry point: it owns its unit of work
        with mine as uow:
            try:
                queue_events(uow.session)
                uow.commit()
                report = deliver_due(uow, options, send=send)
            except Exception:  # a thread of its own: nothing above it would log it
                log.exception("webhooks to consumers failed this time; the next tick tries again")
                return
            if report.delivered or report.failed:
                log.info("webhooks to consumers: %s delivered, %s failed, %s given up", report.delivered, report.failed, report.given_up)

    thread = threading.Thread(target=target, name="consumer-webhooks", daemon=True)
    thread.start()
    return thread
