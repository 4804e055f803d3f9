"""Shops: the PrestaShop shops of the Sage company (issue 16). Today there is one, `default`; a key bound to a shop
sees that shop only, an admin key (bound to none) sees them all."""

from __future__ import annotations

from flask import current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from models import db
from models.shops import Shop
from sync.store.shops import get_shop, list_shops, order_counts, pushes

from .problems import ApiProblem

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

SHOWN_COLUMNS = ("code", "name", "is_default", "rule", "id_shop", "prestashop_url")


def _shown(shop: Shop, counts: dict[int, int]) -> dict:
    push = pushes(shop, connected=current_app.extensions.get("shop") is not None)
    return {**{name: getattr(shop, name) for name in SHOWN_COLUMNS}, "push": push, "orders": counts.get(shop.id, 0)}


@shops_blp.route("")
class Shops(MethodView):
    @shops_blp.response(200, ShopListSchema, example={"shops": [SHOP_EXAMPLE]})
    def get(self):
        """The shops this key sees: its own shop, or every shop for a key bound to none (admin keys)."""
        bound = g.api_key.shop_id  # read with the key itself: no query
        shops = [shop for shop in list_shops(db.session) if bound is None or shop.id == bound]
        counts = order_counts(db.session)
        return {"shops": [_shown(shop, counts) for shop in shops]}


@shops_blp.route("/<string:code>", parameters=[{"in": "path", "name": "code", "description": "The shop's code.", "example": "default"}])
class OneShop(MethodView):
    @shops_blp.response(200, ShopSchema, example=SHOP_EXAMPLE)
    @shops_blp.alt_response(403, description="`shop_forbidden`: this key is bound to another shop.")
    @shops_blp.alt_response(404, description="`shop_not_found`: no shop has this code.")
    def get(self, code):
        """One shop."""
        shop = get_shop(db.session, code) if len(code) <= 20 else None
        if shop is None:
            raise ApiProblem(404, "shop_not_found", f"no shop has the code {code[:20]!r}")
        bound = g.api_key.shop_id  # read with the key itself: no query
        if bound is not None and bound != shop.id:
            raise ApiProblem(403, "shop_forbidden", "this API key is bound to another shop")
        return _shown(shop, order_counts(db.session))
