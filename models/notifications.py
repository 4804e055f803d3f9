"""Outbound webhooks to consumers: the endpoint each consumer registers, and every attempt to deliver to it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models import db, utcnow


class ConsumerWebhook(db.Model):
    """A consumer's endpoint and the one `updates.available` event it may have pending (coalesced: a newer head
    replaces the pending one's). `lease_*` marks the attempt in flight: one per consumer, across processes."""

    __tablename__ = "consumer_webhooks"
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    # Standard Webhooks secret (whsec_<base64>): kept to sign, shown once, never logged.
    secret: Mapped[str] = mapped_column(String(100), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    # The highest head delivered (2xx) or given up on; a later head with updates waiting makes an event pending.
    notified_head: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    pending_head: Mapped[int | None] = mapped_column(Integer)
    pending_since: Mapped[datetime | None] = mapped_column(DateTime)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    # The event sent for `event_head`: the same webhook-id and body on every retry of that head.
    event_id: Mapped[str | None] = mapped_column(String(60))
    event_head: Mapped[int | None] = mapped_column(Integer)
    event_body: Mapped[str | None] = mapped_column(Text)
    lease_holder: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)


class WebhookDelivery(db.Model):
    """One attempt to deliver an event to a consumer's endpoint: when, the answer's status or the error, how long."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("consumer_webhooks.key_id", ondelete="CASCADE"), nullable=False, index=True)
    event_id: Mapped[str] = mapped_column(String(60), nullable=False)
    head: Mapped[int] = mapped_column(Integer, nullable=False)
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    attempted_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    delivered: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
