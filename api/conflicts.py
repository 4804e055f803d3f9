"""Conflicts between the shop and Sage (issue 17): the updates held because the shop holds their order in a state
the merchant decided (cancelled, refunded, payment error, or a state of the `conflict_states` setting), listed, then
applied anyway or dismissed. The service audits each ending in the order's timeline."""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate

from models import db
from models.shops import Shop
from sync.core.shops import CODE_PATTERN
from sync.prestashop.states import shop_states
from sync.services.choices import state_name
from sync.services.conflicts import PAGE_MAX, NotInConflict, UpdateNotFound, apply_anyway, dismiss, open_conflicts
from sync.services.orders import shop_order_key
from sync.services.push_retry import key_actor
from sync.services.unit_of_work import UnitOfWork
from sync.store.shops import get_shop

from .auth import requires
from .problems import ApiProblem, problem_body
from .schemas import MAX_ID, ORDER_KEY, ConflictRecordSchema, UpdateSchema

conflicts_blp = Blueprint(
    "conflicts",
    __name__,
    url_prefix="/api/v1/conflicts",
    description="Updates held because the shop holds their order cancelled, refunded or in payment error: applied anyway or dismissed.",
)


class ConflictQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    shop = fields.String(
        validate=validate.Regexp(f"^{CODE_PATTERN.pattern}$", error="not a shop code"),
        metadata={"description": "A shop's code: only its conflicts (every shop's without it). Unknown: 422."},
    )
    order_key = fields.String(validate=ORDER_KEY, metadata={"description": "Only this shop order's conflicts (its link value, as typed)."})
    after = fields.Integer(
        load_default=0, validate=validate.Range(min=0, max=MAX_ID), metadata={"description": "Update id cursor: `next` of the page before."}
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=PAGE_MAX))


class SageSideSchema(Schema):
    stage = fields.String(allow_none=True, metadata={"description": "The stage Sage says the order is at."})
    state_id = fields.Integer(allow_none=True, metadata={"description": "The shop state the update would set."})
    tracking_numbers = fields.List(fields.String(), allow_none=True)
    piece = fields.String(allow_none=True)
    delivery_date = fields.String(allow_none=True)
    changes = fields.List(fields.String())


class ConflictSchema(Schema):
    update_id = fields.Integer(metadata={"description": "The held update: apply it anyway or dismiss it by this id."})
    order_key = fields.String()
    shop = fields.String(metadata={"description": "The code of the order's shop."})
    id_order = fields.Integer(allow_none=True)
    sage = fields.Nested(SageSideSchema, metadata={"description": "What Sage says: what the update would write to the shop."})
    shop_state_id = fields.Integer(allow_none=True, metadata={"description": "What the shop says: the order's state there."})
    shop_state_name = fields.String(allow_none=True, metadata={"description": "That state's French name (the shop's own, else PrestaShop's)."})
    reason = fields.String(allow_none=True, metadata={"description": "PS_OS_CANCELED, PS_OS_REFUND, PS_OS_ERROR, or conflict_states (the setting)."})
    since = fields.String(allow_none=True, metadata={"description": "When the conflict was first seen (UTC)."})
    seen_by = fields.String(allow_none=True, metadata={"description": "push, webhook or run."})
    created_at = fields.String(metadata={"description": "When the update was made."})


class ConflictPageSchema(Schema):
    conflicts = fields.List(fields.Nested(ConflictSchema))
    next = fields.Integer(allow_none=True, metadata={"description": "Pass it as `after` for the next page; null on the last one."})


class ConflictEndedSchema(Schema):
    update = fields.Nested(UpdateSchema, metadata={"description": "The update, its `conflict` ended (`push_status` is not part of it)."})
    conflict = fields.Nested(ConflictRecordSchema, metadata={"description": "Its conflict record, as the feed shows it."})


# Real answers of a demo server (`flask --app wsgi demo init --orders 40`), orders 1016 and 1022 cancelled in the shop.
_SHIPPED = {
    "stage": "shipped",
    "state_id": 4,
    "tracking_numbers": ["6A09310025167"],
    "piece": None,
    "delivery_date": None,
    "changes": ["state", "stage", "tracking"],
}
_INVOICED = {"stage": "invoiced", "state_id": 4, "tracking_numbers": [], "piece": None, "delivery_date": None, "changes": ["state", "stage"]}
_SEEN = {"shop_state_id": 6, "reason": "PS_OS_CANCELED", "seen_by": "push"}


def _conflict(update_id: int, order: int, sage: dict, since: str) -> dict:
    return {
        "update_id": update_id,
        "order_key": str(order),
        "shop": "default",
        "id_order": order,
        "sage": sage,
        **_SEEN,
        "shop_state_name": "Annulé",
        "since": since,
        "created_at": "2026-12-02T08:13:58.103927Z",
    }


def _ended(update_id: int, order: int, sage: dict, since: str, status: str) -> dict:
    record = {"status": status, **_SEEN, "since": since, "apply": status == "applied_anyway"}
    record |= {"resolved_at": "2026-12-02T09:02:41.220931Z", "resolved_by": "settings-admin", "via": "api"}
    update = {"id": update_id, "order_key": str(order), "id_order": order, **sage, "deliveries": None, "created_at": "2026-12-02T08:13:58.103927Z"}
    return {"update": {**update, "acked_at": None, "conflict": record}, "conflict": record}


CONFLICTS_EXAMPLE = {
    "conflicts": [
        _conflict(14, 1016, _SHIPPED, "2026-12-02T08:14:03.512311Z"),
        _conflict(18, 1022, _INVOICED, "2026-12-02T08:14:03.530027Z"),
    ],
    "next": None,
}
APPLIED_EXAMPLE = _ended(14, 1016, _SHIPPED, "2026-12-02T08:14:03.512311Z", "applied_anyway")
DISMISSED_EXAMPLE = _ended(18, 1022, _INVOICED, "2026-12-02T08:14:03.530027Z", "dismissed")
NOT_FOUND = problem_body(404, "update_not_found", "no update 9999")
NOT_IN_CONFLICT = problem_body(409, "not_in_conflict", "update 14 is not in open conflict: its conflict is applied_anyway (push status pending)")


def _update_id(example: int) -> list[dict]:
    return [{"in": "path", "name": "update_id", "description": "The held update's id (`update_id` of GET /api/v1/conflicts).", "example": example}]


def _state_names() -> Callable[[str, int | None], str | None]:
    """The French name of a shop's state, by shop code and state id: the shop's own states when it is connected and
    answers, else PrestaShop's native ones. Each shop's states read once per request."""
    connections, known = current_app.extensions["shops"], {}

    def name(code: str, state_id: int | None) -> str | None:
        if state_id is None:
            return None
        if code not in known:
            known[code] = {int(state["id"]): state_name(state, "fr") for state in shop_states(get_shop(db.session, code), connections)}
        return known[code].get(int(state_id))

    return name


def _shop_id(code: str | None) -> int | None:
    if code is None:
        return None
    shop: Shop | None = get_shop(db.session, code)
    if shop is None:
        detail = f"no shop has the code {code!r}"
        raise ApiProblem(422, "validation_error", f"query.shop: {detail}", field="query.shop", errors={"query.shop": detail})
    return shop.id


def _end(update_id: int, end) -> dict:
    """Apply anyway or dismiss the conflict of one update (`end(session, update_id, actor)`), committed."""
    if update_id > MAX_ID:
        raise ApiProblem(404, "update_not_found", f"no update {update_id}")
    with UnitOfWork(db.session) as uow:
        try:
            item = end(uow.session, update_id, key_actor(uow.session, g.api_key.id, "api"))
        except UpdateNotFound as error:
            raise ApiProblem(404, "update_not_found", str(error)) from None
        except NotInConflict as error:
            raise ApiProblem(409, "not_in_conflict", str(error)) from None
        uow.commit()
        return {"update": item.to_dict(), "conflict": item.conflict}


@conflicts_blp.route("")
class Conflicts(MethodView):
    @requires("admin")
    @conflicts_blp.arguments(ConflictQuerySchema, location="query", unknown=RAISE)
    @conflicts_blp.response(200, ConflictPageSchema, example=CONFLICTS_EXAMPLE)
    @conflicts_blp.alt_response(403, description="`insufficient_scope`: this needs a key of scope admin.")
    @conflicts_blp.alt_response(422, description="`validation_error`: `shop`, `order_key`, `after` or `limit` is invalid; `field` names it.")
    def get(self, query):
        """The updates in open conflict, oldest first; follow `next` (as `after`) for more."""
        shop_id = _shop_id(query.get("shop"))
        key = shop_order_key(db.session, current_app.extensions["gescom"], query["order_key"]) if query.get("order_key") else None
        page = open_conflicts(db.session, shop_id=shop_id, order_key=key, after=query["after"], limit=query["limit"])
        name = _state_names()
        return {"conflicts": [{**view, "shop_state_name": name(view["shop"], view["shop_state_id"])} for view in page.conflicts], "next": page.next}


@conflicts_blp.route("/<int:update_id>/apply-anyway", parameters=_update_id(14))
class ApplyAnyway(MethodView):
    @requires("admin")
    @conflicts_blp.response(200, ConflictEndedSchema, example=APPLIED_EXAMPLE)
    @conflicts_blp.alt_response(403, description="`insufficient_scope`: this needs a key of scope admin.")
    @conflicts_blp.alt_response(404, description="`update_not_found`: no update with that id.", example=NOT_FOUND)
    @conflicts_blp.alt_response(
        409, description="`not_in_conflict`: the update is not in open conflict (never was, or it ended).", example=NOT_IN_CONFLICT
    )
    def post(self, update_id):
        """Send the update as usual, whatever the shop's state; once. Push mode: it is pushed at the next pass. Pull mode:
        it is issued again at the head of the feed (`conflict.reissued_as`), the module may have skipped it."""
        return _end(update_id, lambda session, item_id, actor: apply_anyway(session, item_id, actor, current_app.extensions["shops"]))


@conflicts_blp.route("/<int:update_id>/dismiss", parameters=_update_id(18))
class Dismiss(MethodView):
    @requires("admin")
    @conflicts_blp.response(200, ConflictEndedSchema, example=DISMISSED_EXAMPLE)
    @conflicts_blp.alt_response(403, description="`insufficient_scope`: this needs a key of scope admin.")
    @conflicts_blp.alt_response(404, description="`update_not_found`: no update with that id.", example=NOT_FOUND)
    @conflicts_blp.alt_response(
        409, description="`not_in_conflict`: the update is not in open conflict (never was, or it ended).", example=NOT_IN_CONFLICT
    )
    def post(self, update_id):
        """Send nothing for this update, ever; the order's later updates are judged again."""
        return _end(update_id, dismiss)
