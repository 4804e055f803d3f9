"""Our own store: settings, shop orders and what we remember of them, updates (outbox), runs, the run lock."""

from __future__ import annotations

from datetime import datetime, timezone

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import JSON, BigInteger, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy import false as sa_false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Setting(db.Model):
    """A shop's settings document: one row per shop, settings.id = shops.id (the default shop's is row 1, the one
    row of every release before shops). `version` feeds ETags and optimistic locking."""

    __tablename__ = "settings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[dict] = mapped_column(JSON, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class ShopOrder(db.Model):
    """A shop order as we follow it through GesCom, and what we remember of it: an `OrderMemory`
    (sync/core/memory.py), loaded and saved by sync/store/memory.py only."""

    __tablename__ = "shop_orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_key: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    id_order: Mapped[int | None] = mapped_column(BigInteger)
    # Highest stage reached (never moves backwards) and the stage GesCom shows now.
    stage: Mapped[str | None] = mapped_column(String(20))
    current_stage: Mapped[str | None] = mapped_column(String(20))
    # Rank of the last state produced and every state id produced: a state is produced once, never backwards.
    state_rank: Mapped[int] = mapped_column(Integer, nullable=False, default=-1)
    states_sent: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    # Last shop-facing snapshot put into an update (tracking numbers, piece, delivery date, deliveries).
    snapshot: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    # What GesCom showed per document ("type:piece" -> tracking, date, carrier), kept after headers vanish.
    documents: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    is_open: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    # The state the shop says the order is in (from its webhooks).
    shop_state_id: Mapped[int | None] = mapped_column(Integer)
    # Push mode: the shop's id_order once resolved, the last state and tracking value we wrote there, and the
    # fingerprints of the back-office messages already posted (never twice).
    shop_id_order: Mapped[int | None] = mapped_column(BigInteger)
    shop_state_pushed: Mapped[int | None] = mapped_column(Integer)
    shop_tracking: Mapped[str | None] = mapped_column(String(64))
    # The last tracking value read from the shop's carrier row that was acted on (written to GesCom, or refused).
    shop_tracking_seen: Mapped[str | None] = mapped_column(String(64))
    messages_sent: Mapped[list] = mapped_column(JSON, nullable=False, default=list, server_default="[]")
    vanished_runs: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # The shop it belongs to (models/shops.py); the default shop (1) until shops are told apart.
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", name="fk_shop_orders_shop_id"), nullable=False, default=1, server_default="1")
    first_seen_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    checked_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)

    pieces: Mapped[list[OrderPiece]] = relationship(back_populates="shop_order", cascade="all, delete-orphan")

    __table_args__ = (Index("ix_shop_orders_open_checked", "is_open", "checked_at"),)


class OrderPiece(db.Model):
    """A bon de commande number known to belong to a shop order (lines keep it in DL_PieceBC after the BC is gone)."""

    __tablename__ = "order_pieces"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shop_order_id: Mapped[int] = mapped_column(ForeignKey("shop_orders.id", ondelete="CASCADE"), nullable=False, index=True)
    piece: Mapped[str] = mapped_column(String(20), nullable=False, unique=True)

    shop_order: Mapped[ShopOrder] = relationship(back_populates="pieces")


class SyncRun(db.Model):
    """One run of the detection: window read, counts, outcome."""

    __tablename__ = "sync_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default="running")
    dry_run: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    full: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    started_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    orders_checked: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    orders_changed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    orders_skipped: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    updates_created: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Documents discovery found carrying a link value that no shop's rule claims (ignored).
    documents_unclaimed: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    warnings: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    # Shop orders this run could not read, each {"order_key", "reason", "documents"}: the next run retries them.
    skipped: Mapped[list] = mapped_column(JSON, nullable=False, default=list, server_default="[]")
    # Whether this run read the cbModification window (the safety net), and how it detected changes.
    modified_scan: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=sa_false())
    error: Mapped[str | None] = mapped_column(Text)
    preview: Mapped[list | None] = mapped_column(JSON)  # a dry run's updates (never in the feed)
    # GesCom high-water marks after this run (its own clock, not ours).
    window_from: Mapped[datetime | None] = mapped_column(DateTime)
    watermark_modified: Mapped[datetime | None] = mapped_column(DateTime)
    watermark_header_marq: Mapped[int | None] = mapped_column(BigInteger)
    watermark_line_marq: Mapped[int | None] = mapped_column(BigInteger)


class Update(db.Model):
    """One shop-facing update (outbox row). `id` only grows: it is the pull feed's cursor."""

    __tablename__ = "updates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_key: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    id_order: Mapped[int | None] = mapped_column(BigInteger)
    stage: Mapped[str | None] = mapped_column(String(20))
    state_id: Mapped[int | None] = mapped_column(Integer)
    tracking_numbers: Mapped[list | None] = mapped_column(JSON)
    piece: Mapped[str | None] = mapped_column(String(20))
    delivery_date: Mapped[object | None] = mapped_column(Date)
    deliveries: Mapped[list | None] = mapped_column(JSON)
    changes: Mapped[list] = mapped_column(JSON, nullable=False)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    # When a first consumer acknowledged it; each consumer's own acknowledgements are in `update_acks`.
    acked_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    # Push mode: how pushing it through the PrestaShop webservice went: "pending", "pushed", "failed", "conflict" (held:
    # the shop's state contradicts it, judged again at each pass) or "dismissed" (a conflict the merchant let go).
    push_status: Mapped[str] = mapped_column(String(12), nullable=False, default="pending", server_default="pending")
    push_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    push_error: Mapped[str | None] = mapped_column(Text)
    push_answer: Mapped[dict | None] = mapped_column(JSON)
    pushed_at: Mapped[datetime | None] = mapped_column(DateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The shop it is for (models/shops.py); the default shop (1) until shops are told apart. Indexed with `id` for a shop's feed.
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", name="fk_updates_shop_id"), nullable=False, default=1, server_default="1")
    # Its conflict with the shop's state (sync/core/conflicts.py), null when none: the shop state, why it conflicts,
    # since when, and how it ended (open, applied_anyway, dismissed, released).
    conflict: Mapped[dict | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_updates_push", "push_status", "id"), Index("ix_updates_shop", "shop_id", "id"), {"sqlite_autoincrement": True})

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "order_key": self.order_key,
            "id_order": self.id_order,
            "stage": self.stage,
            "state_id": self.state_id,
            "tracking_numbers": self.tracking_numbers,
            "piece": self.piece,
            "delivery_date": self.delivery_date.isoformat() if self.delivery_date else None,
            "deliveries": self.deliveries,
            "changes": self.changes,
            "created_at": self.created_at.isoformat() + "Z",
            "acked_at": self.acked_at.isoformat() + "Z" if self.acked_at else None,
            "conflict": self.conflict,
        }


class SyncLock(db.Model):
    """A named lease: the holder that set it owns it until it releases it or it expires."""

    __tablename__ = "sync_locks"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(100))
    acquired_at: Mapped[datetime | None] = mapped_column(DateTime)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)


class OrderEvent(db.Model):
    """Something that happened to a shop order outside our runs: a state set in the shop, a tracking number
    written back to GesCom... Shown in the order's timeline beside its updates."""

    __tablename__ = "order_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_key: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    data: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "data": self.data, "created_at": self.created_at.isoformat() + "Z"}


def _key_shop(context) -> int | None:
    """A new key's shop when none is given: admin keys see every shop, the others the default shop."""
    return None if context.get_current_parameters().get("scope") == "admin" else 1


class ApiKey(db.Model):
    """An API key: only its SHA-256 is stored; the key itself is shown once, at creation."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    prefix: Mapped[str] = mapped_column(String(12), nullable=False)  # shown in lists to tell keys apart
    scope: Mapped[str] = mapped_column(String(10), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    # A key that may write is a consumer of the pull feed: the highest update id served to it (what it may acknowledge).
    served_up_to: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    # The one shop this key sees; NULL: every shop. Read and write keys belong to the default shop (1), admin keys to none.
    shop_id: Mapped[int | None] = mapped_column(ForeignKey("shops.id", name="fk_api_keys_shop_id"), default=_key_shop)


class UpdateAck(db.Model):
    """One consumer's acknowledgement of one update: consumers (keys that may write) acknowledge independently."""

    __tablename__ = "update_acks"
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True)
    update_id: Mapped[int] = mapped_column(ForeignKey("updates.id", ondelete="CASCADE"), primary_key=True)
    acked_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class IdempotencyKey(db.Model):
    """The answer given to a request sent with an Idempotency-Key, replayed when the same request comes again."""

    __tablename__ = "idempotency_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), nullable=False)
    endpoint: Mapped[str] = mapped_column(String(300), nullable=False)  # "PUT /api/v1/orders/4711/tracking"
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    body_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[int] = mapped_column(Integer, nullable=False)
    response: Mapped[dict] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)

    __table_args__ = (UniqueConstraint("key", "endpoint", "api_key_id", name="uq_idempotency_key_endpoint"),)


class WebhookEvent(db.Model):
    """A webhook message already handled (by its webhook-id): a repeat is a no-op."""

    __tablename__ = "webhook_events"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    type: Mapped[str] = mapped_column(String(60), nullable=False)
    order_key: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[int] = mapped_column(Integer, nullable=False)
    response: Mapped[dict] = mapped_column(JSON, nullable=False)
    received_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class ShopCursor(db.Model):
    """Where a poll of the shop stopped last time (e.g. orders' date_upd for tracking numbers typed there)."""

    __tablename__ = "shop_cursors"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class AdminSession(db.Model):
    """A session of the admin page: the browser's cookie holds a random token, this row only its SHA-256. Logging out
    or the key's revocation ends it; it lasts ADMIN_SESSION_HOURS at most, and ends sooner when left idle."""

    __tablename__ = "admin_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)


from models.notifications import ConsumerWebhook, WebhookDelivery  # noqa: E402, F401  (webhooks to consumers: they need `db`)
from models.shops import Shop  # noqa: E402, F401  (shops: they need `db`)
