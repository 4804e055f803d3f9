"""Inbound webhooks: Standard Webhooks signatures (`webhook-signature: v1,<base64 HMAC-SHA256(secret,
id.timestamp.body)>`), and the webhook messages already handled (by webhook-id: a repeat is a no-op).

The signing and the check are the reference library's (`standardwebhooks`); around it we keep our secret rule
and our error codes, and hand it only headers it can read.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping
from datetime import datetime, timezone

from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from models import WebhookEvent

TOLERANCE_SECONDS = 5 * 60  # the library's tolerance too, both ways


class WebhookRejected(ValueError):
    """The webhook message cannot be trusted; `code` says why."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


def secret_key(secret: str) -> bytes:
    """`whsec_<base64>` secrets (Standard Webhooks' form) are decoded; any other string is used as UTF-8 bytes."""
    # Decoded here, not by the library: it would base64-decode a plain secret too, and it skips characters
    # that are not base64 where we want a mistyped secret to stop the start.
    if secret.startswith("whsec_"):
        try:
            key = base64.b64decode(secret[len("whsec_") :], validate=True)
        except binascii.Error as error:
            raise ValueError("WEBHOOK_SECRET starts with whsec_ but the rest is not base64") from error
        if not key:
            raise ValueError("WEBHOOK_SECRET is whsec_ with nothing after it")
        return key
    return secret.encode("utf-8")


def sign(secret: str, message_id: str, timestamp: int | str, body: bytes) -> str:
    """The `webhook-signature` header value for this webhook message (what a sender computes)."""
    sent_at = datetime.fromtimestamp(int(timestamp), tz=timezone.utc)
    return Webhook(secret_key(secret)).sign(message_id, sent_at, body.decode("utf-8"))


def _signatures(header: str) -> str:
    """The `v1,<base64>` candidates only: the library stops with ValueError at the first other one (no comma,
    two spaces, bad padding) where a later one could still match; other versions are skipped as before."""
    kept = []
    for candidate in header.split():
        version, _, value = candidate.partition(",")
        try:
            if version == "v1" and base64.b64decode(value, validate=True):
                kept.append(candidate)
        except binascii.Error:
            continue
    return " ".join(kept)


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> str:
    """Check the webhook message's signature on the raw body before anything parses it. Returns the webhook-id."""
    message_id = headers.get("webhook-id", "").strip()
    timestamp = headers.get("webhook-timestamp", "").strip()
    signatures = headers.get("webhook-signature", "").strip()
    if not message_id or not timestamp or not signatures:
        raise WebhookRejected("webhook_signature_missing", "webhook-id, webhook-timestamp and webhook-signature headers are required")
    if len(message_id) > 200:
        raise WebhookRejected("webhook_id_invalid", "webhook-id is longer than 200 characters")
    # The library says only "invalid" or "too old": these two checks come first to answer our own codes.
    try:
        sent_at = int(timestamp)  # the library would take "1.7e9" too
    except ValueError:
        raise WebhookRejected("webhook_timestamp_invalid", "webhook-timestamp must be Unix seconds") from None
    if abs(time.time() - sent_at) > TOLERANCE_SECONDS:
        raise WebhookRejected("webhook_timestamp_stale", "webhook-timestamp is more than 5 minutes away from our clock")
    candidates = _signatures(signatures)
    try:
        # The library signs text: a body that is not UTF-8 (never JSON anyway) cannot be checked.
        payload = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected("webhook_signature_invalid", "the body is not UTF-8, so no signature can match it") from None
    if candidates:
        checked = {"webhook-id": message_id, "webhook-timestamp": str(sent_at), "webhook-signature": candidates}
        try:
            Webhook(secret_key(secret)).verify(payload, checked, json_parse=False)
        except WebhookVerificationError:
            pass
        else:
            return message_id
    raise WebhookRejected("webhook_signature_invalid", "no webhook-signature matches the body")


def webhook_seen(session: Session, webhook_id: str) -> WebhookEvent | None:
    """The earlier handling of this webhook message, if any (a repeat is a no-op)."""
    return session.get(WebhookEvent, webhook_id)


def claim_webhook(session: Session, webhook_id: str, kind: str) -> WebhookEvent:
    """Record the webhook-id before handling the message, in the caller's transaction, which will hold what the
    handling stores: a concurrent delivery of the same message waits here on the webhook-id (its primary key) until
    that transaction ends, then fails with IntegrityError (recorded) or goes on (rolled back: not handled)."""
    record = WebhookEvent(id=webhook_id, type=kind[:60], status=0, response={})  # the answer is not known yet
    session.add(record)
    session.flush()
    return record


def remember_webhook(session: Session, record: WebhookEvent, order_key: str | None, status: int, answer: dict) -> None:
    """The answer given to the claimed webhook message, in the same transaction: a repeat gets it as `first_answer`."""
    record.order_key, record.status, record.response = order_key, status, answer
    session.flush()
