"""Renvoyer: failed pushes sent again, one shop order or all. Issue 15 item 5."""

from __future__ import annotations

from flask import current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate

from models import db
from sync.services.orders import shop_order_key
from sync.services.push_retry import PAGE_MAX, NotPushed, RetryResult, UnknownOrder, failed_updates, key_actor, pushing_shop_ids, retry_failed
from sync.services.unit_of_work import UnitOfWork

from .auth import requires
from .problems import ApiProblem
from .schemas import MAX_ID, ORDER_KEY

push_retry_blp = Blueprint("push", __name__, url_prefix="/api/v1/push", description="Pushes to the shop that failed, sent again.")


class RetryRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    order_key = fields.String(validate=ORDER_KEY, metadata={"description": "Only this shop order's failed updates; all when absent."})


class RetriedOrderSchema(Schema):
    order_key = fields.String()
    retried = fields.Integer()
    update_ids = fields.List(fields.Integer())


class RetryResultSchema(Schema):
    retried = fields.Integer(metadata={"description": "Failed updates put back to be pushed at the next push pass (0: none was failed)."})
    orders = fields.List(fields.Nested(RetriedOrderSchema))


class FailedQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    after = fields.Integer(
        load_default=0, validate=validate.Range(min=0, max=MAX_ID), metadata={"description": "Update id cursor: `next` of the page before."}
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=PAGE_MAX))
    order_key = fields.String(validate=ORDER_KEY, metadata={"description": "Only this shop order's failed updates."})


class FailedUpdateSchema(Schema):
    order_key = fields.String()
    update_id = fields.Integer()
    id_order = fields.Integer(allow_none=True)
    changes = fields.List(fields.String(), metadata={"description": "What the update changes: state, tracking, piece, ..."})
    state_id = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True, metadata={"description": "Why the shop refused it."})
    status = fields.Integer(allow_none=True, metadata={"description": "The shop's HTTP status, when it answered."})
    code = fields.String(allow_none=True)
    attempts = fields.Integer()
    failed_at = fields.String(allow_none=True, metadata={"description": "When it failed (null for a failure older than this field)."})
    created_at = fields.String()


class FailedPageSchema(Schema):
    failed = fields.List(fields.Nested(FailedUpdateSchema))
    next = fields.Integer(allow_none=True, metadata={"description": "Pass it as `after` for the next page; null on the last one."})


RETRY_EXAMPLE = {"retried": 2, "orders": [{"order_key": "4711", "retried": 2, "update_ids": [118, 131]}]}
FAILED_EXAMPLE = {
    "failed": [
        {
            "order_key": "4711",
            "update_id": 118,
            "id_order": 4711,
            "changes": ["state", "stage", "tracking"],
            "state_id": 4,
            "error": "order 4711 does not exist in the shop",
            "status": 404,
            "code": None,
            "attempts": 1,
            "failed_at": "2026-12-01T21:07:04.512311Z",
            "created_at": "2026-12-01T21:06:58.103927Z",
        }
    ],
    "next": None,
}


def _shop_order_key(value: str) -> str:
    """The key as runs make it (the link value, e.g. DO_NoWeb; b2b:4711 for shop b2b), from what the caller typed."""
    return shop_order_key(db.session, current_app.extensions["gescom"], value)


def _retry(order_key: str | None) -> dict:
    if not pushing_shop_ids(db.session, current_app.extensions["shops"]):
        raise ApiProblem(409, "push_not_configured", "push mode is off: set PRESTASHOP_URL and PRESTASHOP_API_KEY to push updates to the shop")
    key = _shop_order_key(order_key) if order_key is not None else None
    with UnitOfWork(db.session) as uow:
        try:
            actor = key_actor(uow.session, g.api_key.id, "api")
            result: RetryResult = retry_failed(uow, key, actor=actor, connections=current_app.extensions["shops"])
        except UnknownOrder as error:
            raise ApiProblem(404, "order_not_found", str(error)) from None
        except NotPushed as error:
            raise ApiProblem(409, "push_not_configured", str(error)) from None
        uow.commit()
    return {"retried": result.retried, "orders": result.orders}


@push_retry_blp.route("/retry")
class RetryAll(MethodView):
    @requires("admin")
    @push_retry_blp.arguments(RetryRequestSchema, required=False, example={"order_key": "4711"})
    @push_retry_blp.response(200, RetryResultSchema, example=RETRY_EXAMPLE)
    @push_retry_blp.alt_response(403, description="`insufficient_scope`: this needs a key of scope admin.")
    @push_retry_blp.alt_response(404, description="`order_not_found`: `order_key` is not a shop order we follow.")
    @push_retry_blp.alt_response(409, description="`push_not_configured`: the order's shop does not push (or, for every order, no shop does).")
    @push_retry_blp.alt_response(422, description='`validation_error`: the body is not {} nor {"order_key": "..."}.')
    def post(self, body):
        """Send the failed updates again, of every shop order or of `order_key`: they go at the next push pass."""
        return _retry((body or {}).get("order_key"))


@push_retry_blp.route(
    "/retry/<string:order_key>",
    parameters=[{"in": "path", "name": "order_key", "description": "The shop order's key: the link value (DO_NoWeb by default).", "example": "1043"}],
)
class RetryOrder(MethodView):
    @requires("admin")
    @push_retry_blp.response(200, RetryResultSchema, example=RETRY_EXAMPLE)
    @push_retry_blp.alt_response(403, description="`insufficient_scope`: this needs a key of scope admin.")
    @push_retry_blp.alt_response(404, description="`order_not_found`: not a shop order we follow.")
    @push_retry_blp.alt_response(409, description="`push_not_configured`: the order's shop does not push (or, for every order, no shop does).")
    def post(self, order_key):
        """Send the failed updates of one shop order again: they go at the next push pass."""
        if len(order_key) > 100:
            raise ApiProblem(404, "order_not_found", "no shop order with so long a key is followed")
        return _retry(order_key)


@push_retry_blp.route("/failed")
class Failed(MethodView):
    @push_retry_blp.arguments(FailedQuerySchema, location="query", unknown=RAISE)
    @push_retry_blp.response(200, FailedPageSchema, example=FAILED_EXAMPLE)
    @push_retry_blp.alt_response(422, description="`validation_error`: `after`, `limit` or `order_key` is invalid; `field` names it.")
    def get(self, query):
        """The updates whose push failed for good, oldest first; follow `next` (as `after`) for more."""
        key = _shop_order_key(query["order_key"]) if query.get("order_key") else None
        rows, following = failed_updates(db.session, after=query["after"], limit=query["limit"], order_key=key)
        return {"failed": rows, "next": following}
