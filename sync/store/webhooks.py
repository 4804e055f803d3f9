"""Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>`."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

TOLERANCE_SECONDS = 5 * 60


class WebhookRejected(ValueError):
    """The delivery cannot be trusted; `code` says why."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


def secret_key(secret: str) -> bytes:
    """`whsec_<base64>` secrets (Standard Webhooks' form) are decoded; any other string is used as UTF-8 bytes."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_"):], validate=True)
        except binascii.Error as error:
            raise ValueError("WEBHOOK_SECRET starts with whsec_ but the rest is not base64") from error
    return secret.encode("utf-8")


def sign(secret: str, message_id: str, timestamp: int | str, body: bytes) -> str:
    """The `webhook-signature` header value for this delivery (what a sender computes)."""
    digest = hmac.new(secret_key(secret), f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None) -> str:
    """Check the delivery's signature on the raw body before anything parses it. Returns the webhook-id."""
    message_id = headers.get("webhook-id", "").strip()
    timestamp = headers.get("webhook-timestamp", "").strip()
    signatures = headers.get("webhook-signature", "").strip()
    if not message_id or not timestamp or not signatures:
        raise WebhookRejected("webhook_signature_missing", "webhook-id, webhook-timestamp and webhook-signature headers are required")
    if len(message_id) > 200:
        raise WebhookRejected("webhook_id_invalid", "webhook-id is longer than 200 characters")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise WebhookRejected("webhook_timestamp_invalid", "webhook-timestamp must be Unix seconds") from None
    now = time.time() if now is None else now
    if abs(now - sent_at) > TOLERANCE_SECONDS:
        raise WebhookRejected("webhook_timestamp_stale", "webhook-timestamp is more than 5 minutes away from our clock")
    expected = sign(secret, message_id, sent_at, body).split(",", 1)[1]
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
            return message_id
    raise WebhookRejected("webhook_signature_invalid", "no webhook-signature matches the body")
