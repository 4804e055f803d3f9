"""Outbound webhooks to consumers (updates.available): the endpoints a consumer registers. Issue 15 item 4.

Each view is the calling consumer's own (a key of scope write or admin): it parses input, calls the store, and
shapes the answer. Delivery itself is the scheduler's (sync/services/notifications.py), never a request's.
"""

from __future__ import annotations

from flask import current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields

from models import db
from sync.services.unit_of_work import UnitOfWork
from sync.store.notifications import EndpointError, endpoint_of, recent_deliveries, register_endpoint, remove_endpoint, rotate_secret

from .auth import requires
from .problems import ApiProblem

notifications_blp = Blueprint(
    "notifications", __name__, url_prefix="/api/v1/consumer", description="Webhooks to the module: be told when updates wait."
)

SECRET_EXAMPLE = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
URL_EXAMPLE = "https://shop.example.com/module/sagesync/webhook"


def _iso(value):
    return value.isoformat() + "Z" if value else None


class EndpointRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    url = fields.String(required=True, metadata={"description": "Where to POST events: https (http to this machine only when allowed)."})


class WebhookDeliverySchema(Schema):
    event_id = fields.String(metadata={"description": "The event's webhook-id (the same on every retry of it)."})
    head = fields.Integer(metadata={"description": "The head (highest update id) the event told of."})
    attempt = fields.Integer()
    attempted_at = fields.String(metadata={"description": "UTC, ISO 8601."})
    status_code = fields.Integer(allow_none=True, metadata={"description": "The endpoint's HTTP status; null when it did not answer."})
    error = fields.String(allow_none=True)
    duration_ms = fields.Integer()
    delivered = fields.Boolean(metadata={"description": "A 2xx answer."})


class EndpointSchema(Schema):
    url = fields.String()
    created_at = fields.String()
    updated_at = fields.String()
    secret = fields.String(metadata={"description": "Only when the endpoint is created or its secret rotated: shown once, keep it."})
    pending_head = fields.Integer(allow_none=True, metadata={"description": "The head of the event waiting to be delivered, if any."})
    next_attempt_at = fields.String(allow_none=True)
    notified_head = fields.Integer(metadata={"description": "The highest head delivered (or given up on)."})
    deliveries = fields.List(fields.Nested(WebhookDeliverySchema), metadata={"description": "The latest attempts, newest first."})


class SecretSchema(Schema):
    secret = fields.String(metadata={"description": "The new secret, shown once: the old one stops signing at once."})


DELIVERY_EXAMPLE = {
    "event_id": "msg_5f0c6f8e2b1d4c7a9e3f1a2b3c4d5e6f",
    "head": 1043,
    "attempt": 1,
    "attempted_at": "2026-12-01T10:00:02Z",
    "status_code": 204,
    "error": None,
    "duration_ms": 41,
    "delivered": True,
}
ENDPOINT_EXAMPLE = {
    "url": URL_EXAMPLE,
    "created_at": "2026-12-01T09:58:00Z",
    "updated_at": "2026-12-01T09:58:00Z",
    "pending_head": None,
    "next_attempt_at": None,
    "notified_head": 1043,
    "deliveries": [DELIVERY_EXAMPLE],
}
CREATED_EXAMPLE = {**{key: ENDPOINT_EXAMPLE[key] for key in ("url", "created_at", "updated_at")}, "secret": SECRET_EXAMPLE, "deliveries": []}


def endpoint_json(row, deliveries=(), secret: str | None = None) -> dict:
    """An endpoint as the API shows it: never its secret, but the one just made."""
    body = {
        "url": row.url,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "pending_head": row.pending_head,
        "next_attempt_at": _iso(row.next_attempt_at) if row.pending_head is not None else None,
        "notified_head": row.notified_head,
        "deliveries": [delivery_json(item) for item in deliveries],
    }
    if secret is not None:
        body["secret"] = secret
    return body


def delivery_json(item) -> dict:
    return {
        "event_id": item.event_id,
        "head": item.head,
        "attempt": item.attempt,
        "attempted_at": _iso(item.attempted_at),
        "status_code": item.status_code,
        "error": item.error,
        "duration_ms": item.duration_ms,
        "delivered": item.delivered,
    }


def _no_endpoint() -> ApiProblem:
    return ApiProblem(404, "webhook_not_registered", "this key has no webhook endpoint: PUT /api/v1/consumer/webhook first")


@notifications_blp.route("/webhook")
class ConsumerWebhook(MethodView):
    @requires("write")
    @notifications_blp.response(200, EndpointSchema, example=ENDPOINT_EXAMPLE)
    @notifications_blp.alt_response(403, description="The key is not a consumer (scope read).")
    @notifications_blp.alt_response(404, description="`webhook_not_registered`: this key has no endpoint.")
    def get(self):
        """This consumer's endpoint, its pending event and its latest delivery attempts (never the secret)."""
        row = endpoint_of(db.session, g.api_key.id)
        if row is None:
            raise _no_endpoint()
        return endpoint_json(row, recent_deliveries(db.session, row.key_id))

    @requires("write")
    @notifications_blp.arguments(EndpointRequestSchema, example={"url": URL_EXAMPLE})
    @notifications_blp.response(200, EndpointSchema, example=ENDPOINT_EXAMPLE, description="The endpoint changed (same secret).")
    @notifications_blp.alt_response(201, schema=EndpointSchema, example=CREATED_EXAMPLE, description="Registered: `secret` is shown this once.")
    @notifications_blp.alt_response(403, description="The key is not a consumer (scope read).")
    @notifications_blp.alt_response(422, description="`invalid_webhook_url`: `url` is not https (or http to this machine when allowed).")
    def put(self, body):
        """Register this consumer's endpoint, or change its URL. On creation the answer carries the secret, once."""
        with UnitOfWork(db.session) as uow:
            try:
                row, secret = register_endpoint(
                    uow.session, g.api_key.id, body["url"], allow_http=current_app.config.get("CONSUMER_WEBHOOK_ALLOW_HTTP", False)
                )
            except EndpointError as error:
                raise ApiProblem(422, "invalid_webhook_url", str(error), field=error.field) from None
            answer = endpoint_json(row, [] if secret else recent_deliveries(uow.session, row.key_id), secret)
            uow.commit()
        return answer, 201 if secret else 200

    @requires("write")
    @notifications_blp.response(204)
    @notifications_blp.alt_response(404, description="`webhook_not_registered`: this key has no endpoint.")
    def delete(self):
        """Remove this consumer's endpoint and its attempts: no more events (the pull feed is unchanged)."""
        with UnitOfWork(db.session) as uow:
            if not remove_endpoint(uow.session, g.api_key.id):
                raise _no_endpoint()
            uow.commit()
        return None


@notifications_blp.route("/webhook/rotate-secret")
class RotateSecret(MethodView):
    @requires("write")
    @notifications_blp.response(200, SecretSchema, example={"secret": SECRET_EXAMPLE})
    @notifications_blp.alt_response(404, description="`webhook_not_registered`: this key has no endpoint.")
    def post(self):
        """A new secret for this consumer's endpoint, shown once; events are signed with it from now on."""
        with UnitOfWork(db.session) as uow:
            secret = rotate_secret(uow.session, g.api_key.id)
            if secret is None:
                raise _no_endpoint()
            uow.commit()
        return {"secret": secret}
