"""Shops: the PrestaShop shops of the Sage company (issue 16). Today there is one, `default`; a key bound to a shop
sees that shop only, an admin key (bound to none) sees them all, and creates or changes them."""

from __future__ import annotations

from flask import current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy.exc import IntegrityError

from models import db
from models.shops import Shop
from sync.core.shops import CODE_PATTERN, KINDS, ShopError, ShopRule
from sync.core.shops import Shop as CoreShop
from sync.gescom.adapter import GesComError
from sync.gescom.settings_check import gescom_column
from sync.services.choices import live_schema
from sync.services.unit_of_work import UnitOfWork
from sync.store.shops import create_shop, get_shop, list_shops, order_counts, pushes, update_shop

from .auth import requires
from .problems import ApiProblem, problem_body
from .schemas import StrictSchema

shops_blp = Blueprint("shops", __name__, url_prefix="/api/v1/shops", description="The shops whose orders the Sage company holds.")


class ShopSchema(Schema):
    code = fields.String(metadata={"description": "Short and stable: used in keys and URLs."})
    name = fields.String(allow_none=True)
    is_default = fields.Boolean(metadata={"description": "The shop of every shop order, update and key from before shops."})
    rule = fields.Dict(metadata={"description": 'How Sage tells this shop\'s orders apart; the default shop\'s is {"kind": "all"}.'})
    id_shop = fields.Integer(allow_none=True, metadata={"description": "Its id_shop inside a PrestaShop multistore installation."})
    prestashop_url = fields.String(allow_none=True, metadata={"description": "Its webservice address, for push mode (the key is never shown)."})
    push = fields.Boolean(metadata={"description": "Whether updates are pushed to it through its webservice."})
    orders = fields.Integer(metadata={"description": "How many shop orders the middleware follows for it."})


class ShopListSchema(Schema):
    shops = fields.List(fields.Nested(ShopSchema))


class ShopRuleSchema(StrictSchema):
    kind = fields.String(
        required=True, metadata={"description": f"One of {', '.join(KINDS)}; every shop uses the same kind ('all': one shop alone)."}
    )
    field = fields.String(
        allow_none=True,
        metadata={"description": "For the kind 'field': the F_DOCENTETE column (a header or free field) whose value claims a document."},
    )
    values = fields.List(
        fields.Raw(),
        metadata={
            "description": "What claims a document: numbering series (integers) for 'souche', customer accounts for 'tiers', "
            "one prefix of the link value for 'prefix', texts for 'field'."
        },
    )


class _ShopFields(StrictSchema):
    name = fields.String(metadata={"description": "1 to 100 characters."})
    rule = fields.Nested(ShopRuleSchema, metadata={"description": "How Sage tells this shop's orders apart; no document may match two shops."})
    id_shop = fields.Integer(strict=True, allow_none=True, metadata={"description": "Its id_shop inside a PrestaShop multistore installation."})
    prestashop_url = fields.String(
        allow_none=True, metadata={"description": "Its webservice address, for push mode; its key comes from PRESTASHOP_API_KEY_<CODE>."}
    )


class ShopCreateSchema(_ShopFields):
    code = fields.String(required=True, metadata={"description": "A lowercase letter, then up to 19 lowercase letters, digits, '_' or '-'."})
    name = fields.String(required=True, metadata={"description": "1 to 100 characters."})
    rule = fields.Nested(
        ShopRuleSchema, required=True, metadata={"description": "How Sage tells this shop's orders apart; no document may match two shops."}
    )


class ShopPatchSchema(_ShopFields):
    code = fields.Raw(metadata={"description": "Never changes: sending it answers 422 `invalid_shop`."})
    is_default = fields.Raw(metadata={"description": "Never changes: sending it answers 422 `invalid_shop`."})


SHOP_EXAMPLE = {
    "code": "default",
    "name": "Boutique principale",
    "is_default": True,
    "rule": {"kind": "all"},
    "id_shop": None,
    "prestashop_url": None,
    "push": False,
    "orders": 300,
}
SHOP_CREATE_EXAMPLE = {"code": "outlet", "name": "Boutique déstockage", "rule": {"kind": "souche", "values": [2]}}
SHOP_CREATED_EXAMPLE = {
    "code": "outlet",
    "name": "Boutique déstockage",
    "is_default": False,
    "rule": {"kind": "souche", "field": None, "values": [2]},
    "id_shop": None,
    "prestashop_url": None,
    "push": False,
    "orders": 0,
}
SHOP_PATCH_EXAMPLE = {"name": "Déstockage et fins de série", "rule": {"kind": "souche", "values": [2, 3]}}
SHOP_PATCHED_EXAMPLE = {**SHOP_CREATED_EXAMPLE, "name": "Déstockage et fins de série", "rule": {"kind": "souche", "field": None, "values": [2, 3]}}
INVALID_SHOP = "`invalid_shop`: the shop is not valid, or with it two shops could claim one document; `field` names the value at fault."
OVERLAP = "with this shop, shop 'default' would not be valid: shops.0.rule.kind: 'all' claims every document: only a shop alone can use it"
INVALID_SHOP_EXAMPLES = {
    "invalid_shop": {
        "value": problem_body(422, "invalid_shop", f"rule: {OVERLAP}", field="rule", errors={"rule": OVERLAP}),
    },
    "validation_error": {
        "value": problem_body(
            422, "validation_error", "name: Missing data for required field.", field="name", errors={"name": "Missing data for required field."}
        ),
    },
}
SHOP_NOT_FOUND = problem_body(404, "shop_not_found", "no shop has the code 'b2c'")
GESCOM_DOWN = problem_body(503, "gescom_unavailable", "the rule's field is checked against GesCom, which is unreachable: GesCom does not answer")
SHOWN_COLUMNS = ("code", "name", "is_default", "rule", "id_shop", "prestashop_url")


def _shown(shop: Shop, counts: dict[int, int], rows: list[Shop] | None = None) -> dict:
    push = pushes(shop, current_app.extensions.get("shops"), rows)
    return {**{name: getattr(shop, name) for name in SHOWN_COLUMNS}, "push": push, "orders": counts.get(shop.id, 0)}


def _invalid(error: ShopError) -> ApiProblem:
    return ApiProblem(422, "invalid_shop", f"{error.field}: {error.message}", field=error.field, errors={error.field: error.message})


def _checked_rule(rule: dict | None) -> dict | None:
    """The rule as sent, checked on its own; a rule of the kind 'field' with its column as GesCom spells it (503 when
    GesCom cannot be asked)."""
    if rule is None:
        return None
    try:
        ShopRule.from_document(rule)
    except ShopError as error:
        raise _invalid(error if error.field == "rule" else error.within("rule")) from None
    if rule["kind"] != "field":
        return rule
    try:
        schema = live_schema(current_app.extensions["gescom"])  # a free field may have been added in Sage since
    except GesComError as error:
        raise ApiProblem(503, "gescom_unavailable", f"the rule's field is checked against GesCom, which is unreachable: {error}") from error
    try:
        return {**rule, "field": gescom_column(schema.header, rule["field"])}
    except ShopError as error:
        raise _invalid(error) from None


@shops_blp.route("")
class Shops(MethodView):
    @shops_blp.response(200, ShopListSchema, example={"shops": [SHOP_EXAMPLE]})
    def get(self):
        """The shops this key sees: its own shop, or every shop for a key bound to none (admin keys)."""
        bound = g.api_key.shop_id  # read with the key itself: no query
        rows = list_shops(db.session)
        shops = [shop for shop in rows if bound is None or shop.id == bound]
        counts = order_counts(db.session)
        return {"shops": [_shown(shop, counts, rows) for shop in shops]}

    @requires("admin")
    @shops_blp.arguments(ShopCreateSchema, example=SHOP_CREATE_EXAMPLE)
    @shops_blp.response(
        201,
        ShopSchema,
        headers={"Location": {"description": "The new shop.", "schema": {"type": "string"}}},
        example=SHOP_CREATED_EXAMPLE,
    )
    @shops_blp.alt_response(
        409,
        description="`shop_exists`: a shop already has this code.",
        example=problem_body(409, "shop_exists", "'outlet' is already the code of a shop", field="code"),
    )
    @shops_blp.alt_response(422, description=INVALID_SHOP, examples=INVALID_SHOP_EXAMPLES)
    @shops_blp.alt_response(
        503, description="GesCom is unreachable (`gescom_unavailable`): a rule of the kind 'field' is checked against it.", example=GESCOM_DOWN
    )
    def post(self, body):
        """Add a shop (an admin key). Its rule must leave no document to two shops: change the default shop's rule
        (`{"kind": "all"}` while it is alone) first. Its settings start as the defaults, with the shared ones."""
        try:
            CoreShop.from_document(body)
        except ShopError as error:
            raise _invalid(error) from None
        if get_shop(db.session, body["code"]) is not None:
            raise ApiProblem(409, "shop_exists", f"{body['code']!r} is already the code of a shop", field="code")
        body = {**body, "rule": _checked_rule(body["rule"])}
        with UnitOfWork(db.session) as uow:
            try:
                row = create_shop(uow.session, body)
            except ShopError as error:
                raise _invalid(error) from None
            except IntegrityError:  # created meanwhile by another request
                raise ApiProblem(409, "shop_exists", f"{body['code']!r} is already the code of a shop", field="code") from None
            uow.commit()
        return _shown(row, {}), 201, {"Location": f"/api/v1/shops/{row.code}"}


def _shop_of(code: str) -> Shop:
    """The shop with this code, or 404 `shop_not_found`."""
    shop = get_shop(db.session, code) if CODE_PATTERN.fullmatch(code) else None
    if shop is None:
        raise ApiProblem(404, "shop_not_found", f"no shop has the code {code[:20]!r}")
    return shop


@shops_blp.route("/<string:code>", parameters=[{"in": "path", "name": "code", "description": "The shop's code.", "example": "default"}])
class OneShop(MethodView):
    @shops_blp.response(200, ShopSchema, example=SHOP_EXAMPLE)
    @shops_blp.alt_response(403, description="`shop_forbidden`: this key is bound to another shop.")
    @shops_blp.alt_response(404, description="`shop_not_found`: no shop has this code.")
    def get(self, code):
        """One shop."""
        shop = _shop_of(code)
        bound = g.api_key.shop_id  # read with the key itself: no query
        if bound is not None and bound != shop.id:
            raise ApiProblem(403, "shop_forbidden", "this API key is bound to another shop")
        return _shown(shop, order_counts(db.session))

    @requires("admin")
    @shops_blp.arguments(ShopPatchSchema, example=SHOP_PATCH_EXAMPLE)
    @shops_blp.response(200, ShopSchema, example=SHOP_PATCHED_EXAMPLE)
    @shops_blp.alt_response(404, description="`shop_not_found`: no shop has this code.", example=SHOP_NOT_FOUND)
    @shops_blp.alt_response(422, description=INVALID_SHOP + " `code` and `is_default` never change.", examples=INVALID_SHOP_EXAMPLES)
    @shops_blp.alt_response(
        503, description="GesCom is unreachable (`gescom_unavailable`): a rule of the kind 'field' is checked against it.", example=GESCOM_DOWN
    )
    def patch(self, body, code):
        """Change a shop's name, rule, id_shop or webservice address (an admin key); only the fields sent change."""
        shop = _shop_of(code)
        if "rule" in body:
            body = {**body, "rule": _checked_rule(body["rule"])}
        with UnitOfWork(db.session) as uow:
            try:
                update_shop(uow.session, shop.code, body)
            except ShopError as error:
                raise _invalid(error) from None
            uow.commit()
        return _shown(shop, order_counts(db.session))
