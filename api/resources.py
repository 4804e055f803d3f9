"""The /api/v1 resources: thin views that parse input, call one service, and shape the answer."""

from __future__ import annotations

import json
import re

from flask import current_app, g, request
from flask.json.provider import DefaultJSONProvider
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE
from sqlalchemy.exc import IntegrityError

from app import run_config_of
from models import SyncRun, db
from models.shops import Shop
from sync.core.settings import SettingsError
from sync.gescom.adapter import GesComError
from sync.prestashop.states import NATIVE_ORDER_STATES, known_state_ids
from sync.services.choices import live_schema, tracking_fields
from sync.services.conflicts import state_reported
from sync.services.health import health
from sync.services.orders import order_view, shop_order_key
from sync.services.runs import RunInProgress, list_runs, start_run
from sync.services.shop_events import find_order, record_shop_state
from sync.services.unit_of_work import UnitOfWork
from sync.services.writeback import WriteBackError, write_tracking
from sync.store import feed
from sync.store.idempotency import Claim, IdempotencyMismatch, RequestInProgress, body_hash, claim, finish, kept, release
from sync.store.keys import is_consumer, record_served
from sync.store.settings import VersionConflict, current_settings, save_settings
from sync.store.shops import default_shop, get_shop, order_shop_id
from sync.store.webhooks import WebhookRejected, claim_webhook, remember_webhook, verify, webhook_seen

from .auth import requires
from .background import execute_in_background as _execute_in_background
from .problems import ApiProblem, problem_body
from .schemas import (
    EXAMPLES,
    WEBHOOK_EVENT,
    AckResultSchema,
    AckSchema,
    FeedPageSchema,
    FeedQuerySchema,
    GesComFieldsSchema,
    HealthSchema,
    OrderStatesSchema,
    OrderViewSchema,
    RunPageSchema,
    RunQuerySchema,
    RunRequestSchema,
    RunSchema,
    SettingsPatchSchema,
    SettingsSchema,
    ShopQuerySchema,
    TrackingRequestSchema,
    TrackingResultSchema,
    WebhookAnswerSchema,
    dump_feed_page,
    feed_page_json,
)

PROBLEM = {"content_type": "application/problem+json"}


def problems(*bodies: dict) -> dict:
    """Examples of problem documents for `alt_response(examples=...)`, named by their code."""
    return {body["code"]: {"value": body} for body in bodies}


def _gescom():
    return current_app.extensions["gescom"]


def _iso(value):
    return value.isoformat() + "Z" if value else None


def _known_states(shop: Shop) -> tuple[str, list[dict]]:
    """("shop", the shop's own order states) when it is connected and answers, else ("native", PrestaShop's list)."""
    states = current_app.extensions["shops"].states_for(shop)
    listed = states() if states is not None else None
    return ("shop", listed) if listed else ("native", NATIVE_ORDER_STATES)


SHOP_FORBIDDEN = "this API key is bound to another shop"


def _feed_shop(code: str | None) -> int | None:
    """The shop whose updates this request sees: the key's own, or the one an admin key names; None: every shop."""
    bound = g.api_key.shop_id
    if code is None:
        return bound
    shop = get_shop(db.session, code)
    if shop is None:
        detail = f"no shop has the code {code!r}"
        raise ApiProblem(422, "validation_error", f"query.shop: {detail}", field="query.shop", errors={"query.shop": detail})
    if bound is not None and shop.id != bound:
        raise ApiProblem(403, "shop_forbidden", SHOP_FORBIDDEN)
    return shop.id


def _one_shop(code: str | None) -> Shop:
    """The shop a request acts on: the one `?shop=` names (as the feed checks it), else the key's own, else (an admin
    key) the default shop."""
    shop_id = _feed_shop(code)
    return default_shop(db.session) if shop_id is None else db.session.get_one(Shop, shop_id)


SHOP_403 = "`shop_forbidden`: `shop` names another shop than the one this key is bound to."
UNKNOWN_SHOP = problem_body(
    422, "validation_error", "query.shop: no shop has the code 'b2c'", field="query.shop", errors={"query.shop": "no shop has the code 'b2c'"}
)


# --- health -----------------------------------------------------------------------------------------------

health_blp = Blueprint("health", __name__, url_prefix="/api/v1", description="Is the middleware able to work?")


@health_blp.route("/health")
class Health(MethodView):
    @health_blp.doc(security=[])
    @health_blp.response(200, HealthSchema, description="The store reads and writes, GesCom answers.", example=EXAMPLES["health"])
    @health_blp.alt_response(
        503, schema=HealthSchema, description="The store or GesCom is down, or the store cannot write (`degraded`).", example=EXAMPLES["health_down"]
    )
    def get(self):
        """The store (a read and a write) and GesCom, each said apart, in about 2 s at most (no key needed)."""
        report = health(db.engine, _gescom())
        return report, 200 if report["status"] == "ok" else 503


# --- settings ----------------------------------------------------------------------------------------------

settings_blp = Blueprint("settings", __name__, url_prefix="/api/v1/settings", description="The options of the « Mettre à jour les statuts » screen.")


def _etag(version: int, shop: Shop | None = None) -> str:
    """The default shop's ETag is as before shops (`"settings-v3"`); another shop's names it (`"settings-b2b-v3"`),
    so an ETag of one shop never matches another shop's document."""
    return f'"settings-v{version}"' if shop is None or shop.is_default else f'"settings-{shop.code}-v{version}"'


# One or more entity tags, quoted (weak or strong), or *: RFC 9110 8.8.3.
ETAGS = r'\s*(\*|(W/)?"[^"]*"(\s*,\s*(W/)?"[^"]*")*)\s*'
_ETAG_HEADER = {"description": "Send it back in If-Match to PATCH, or in If-None-Match to GET.", "schema": {"type": "string"}}


def _condition(name: str, required: bool, description: str) -> dict:
    return {"in": "header", "name": name, "required": required, "schema": {"type": "string", "pattern": f"^{ETAGS}$"}, "description": description}


def _expected_version(if_match: str | None, version: int, shop: Shop) -> int | None:
    """The version If-Match expects; None for *. A problem when it is missing, not entity tags, or not current."""
    if not if_match:
        raise ApiProblem(428, "if_match_required", "send If-Match with the ETag from GET /api/v1/settings (or * to overwrite)")
    if not re.fullmatch(ETAGS, if_match):
        detail = 'If-Match is not an ETag: send it as GET /api/v1/settings gave it, double quotes included (If-Match: "settings-v3")'
        raise ApiProblem(400, "if_match_malformed", detail, field="If-Match")
    if if_match.strip() == "*":
        return None
    if _etag(version, shop) not in [tag.strip() for tag in if_match.split(",")]:
        detail = "the settings changed since you read them: GET them again"
        raise ApiProblem(412, "settings_changed", detail, headers={"ETag": _etag(version, shop)})
    return version


@settings_blp.route("")
class Settings(MethodView):
    @settings_blp.doc(parameters=[_condition("If-None-Match", False, "The ETag you hold: 304 without a body while it is current.")])
    @settings_blp.arguments(ShopQuerySchema(), location="query", unknown=RAISE)
    @settings_blp.response(200, SettingsSchema, headers={"ETag": _ETAG_HEADER}, example=EXAMPLES["settings"])
    @settings_blp.alt_response(
        304, description="Not modified: the ETag sent in If-None-Match is current.", headers={"ETag": _ETAG_HEADER}, success=True
    )
    @settings_blp.alt_response(403, description=SHOP_403, example=problem_body(403, "shop_forbidden", SHOP_FORBIDDEN))
    @settings_blp.alt_response(
        422, description="`query.shop`: no shop has this code, or it is no shop code (`validation_error`).", example=UNKNOWN_SHOP
    )
    def get(self, query):
        """The settings document of the key's shop (an admin key: of the default shop, or of `shop`). Its ETag changes
        at every save; with If-None-Match, 304 while it has not."""
        shop = _one_shop(query.get("shop"))
        document, version = current_settings(db.session, shop.id)
        etag = _etag(version, shop)
        if request.if_none_match.contains_weak(etag[1:-1]):
            return current_app.response_class(status=304, headers={"ETag": etag})
        return document, 200, {"ETag": etag}

    @requires("admin")
    @settings_blp.doc(parameters=[_condition("If-Match", True, "The ETag of your GET /settings, double quotes included, or * to overwrite.")])
    @settings_blp.arguments(ShopQuerySchema(), location="query", unknown=RAISE)
    @settings_blp.arguments(
        SettingsPatchSchema(partial=True), description="Only the fields to change; nested objects are merged.", example=EXAMPLES["settings_patch"]
    )
    @settings_blp.response(200, SettingsSchema, headers={"ETag": _ETAG_HEADER}, example=EXAMPLES["settings_patched"])
    @settings_blp.alt_response(
        400,
        description="If-Match is not an entity tag (`if_match_malformed`: unquoted), or the body is not JSON.",
        example=problem_body(
            400,
            "if_match_malformed",
            'If-Match is not an ETag: send it as GET /api/v1/settings gave it, double quotes included (If-Match: "settings-v3")',
            field="If-Match",
        ),
    )
    @settings_blp.alt_response(
        412,
        description="The settings changed since your GET (`settings_changed`: If-Match does not match); the ETag header is the current one.",
        example=problem_body(412, "settings_changed", "the settings changed since you read them: GET them again"),
    )
    @settings_blp.alt_response(
        428,
        description="If-Match is missing (`if_match_required`).",
        example=problem_body(428, "if_match_required", "send If-Match with the ETag from GET /api/v1/settings (or * to overwrite)"),
    )
    @settings_blp.alt_response(
        422,
        description="A field is invalid (`validation_error`, `invalid_settings`); `field` names it. Another shop than the default "
        "one: `link_field`, `tracking.header_field` and `tracking.line_field` are the default shop's (`invalid_settings`). "
        "`query.shop`: no shop has this code (`validation_error`).",
        examples=problems(
            problem_body(
                422,
                "invalid_settings",
                "stage_states.shipped: unknown order state 99; known: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13",
                field="stage_states.shipped",
                errors={"stage_states.shipped": "unknown order state 99; known: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13"},
            ),
            UNKNOWN_SHOP,
        ),
    )
    @settings_blp.alt_response(
        403,
        description=SHOP_403 + " Or the key's scope is too low (`insufficient_scope`).",
        example=problem_body(403, "shop_forbidden", SHOP_FORBIDDEN),
    )
    def patch(self, query, patch):
        """Change some settings of the default shop, or of `shop`. Needs If-Match with the ETag of your GET, so two
        editors never overwrite each other. Nothing to change (`{}`): the same version and ETag."""
        shop = _one_shop(query.get("shop"))
        _, version = current_settings(db.session, shop.id)
        expected = _expected_version(request.headers.get("If-Match"), version, shop)
        try:
            schema = live_schema(_gescom())  # a free field may have been added in Sage since
        except GesComError as error:
            raise ApiProblem(503, "gescom_unavailable", f"field names are checked against GesCom, which is unreachable: {error}") from error
        with UnitOfWork(db.session) as uow:
            try:
                known = known_state_ids(_known_states(shop)[1])
                document, new_version = save_settings(uow.session, patch, schema, shop_id=shop.id, expected_version=expected, known_states=known)
            except VersionConflict as error:
                raise ApiProblem(412, "settings_changed", str(error)) from error
            except SettingsError as error:
                field = next(iter(error.errors))
                raise ApiProblem(422, "invalid_settings", f"{field}: {error.errors[field]}", field=field, errors=error.errors) from error
            uow.commit()
        return document, 200, {"ETag": _etag(new_version, shop)}


# --- GesCom fields and shop states -------------------------------------------------------------------------

reference_blp = Blueprint("reference", __name__, url_prefix="/api/v1", description="Choices for the settings: GesCom fields, shop order states.")


@reference_blp.route("/gescom/fields")
class GesComFields(MethodView):
    @reference_blp.response(200, GesComFieldsSchema, example=EXAMPLES["gescom_fields"])
    @reference_blp.alt_response(
        503,
        description="GesCom unreachable (`gescom_unavailable`), or the store (`store_unavailable`).",
        example=problem_body(503, "gescom_unavailable", "GesCom table F_DOCENTETE not found: is GESCOM_DATABASE_URL the Sage company database?"),
    )
    def get(self):
        """Header and line fields that may hold the tracking number: Entête 1-4, N° colis, and the free fields."""
        return tracking_fields(live_schema(_gescom()))  # re-read: free fields may have been added in Sage since


@reference_blp.route("/order-states")
class OrderStates(MethodView):
    @reference_blp.arguments(ShopQuerySchema(), location="query", unknown=RAISE)
    @reference_blp.response(200, OrderStatesSchema, example=EXAMPLES["order_states"])
    @reference_blp.alt_response(403, description=SHOP_403, example=problem_body(403, "shop_forbidden", SHOP_FORBIDDEN))
    @reference_blp.alt_response(
        422, description="`query.shop`: no shop has this code, or it is no shop code (`validation_error`).", example=UNKNOWN_SHOP
    )
    def get(self, query):
        """The order states of the key's shop (an admin key: of the default shop, or of `shop`) when it is connected,
        else PrestaShop's native ones (ids 1-13)."""
        source, states = _known_states(_one_shop(query.get("shop")))
        return {"source": source, "states": states}


# --- runs ----------------------------------------------------------------------------------------------------

runs_blp = Blueprint("runs", __name__, url_prefix="/api/v1/sync/runs", description="Runs of the detection.")


def _run_json(run: SyncRun, with_preview: bool = False) -> dict:
    duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
    return {
        "id": run.id,
        "status": run.status,
        "dry_run": run.dry_run,
        "full": run.full,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "duration_seconds": duration,
        "orders_checked": run.orders_checked,
        "orders_changed": run.orders_changed,
        "orders_skipped": run.orders_skipped,
        "updates_created": run.updates_created,
        "documents_unclaimed": run.documents_unclaimed,
        "warnings": run.warnings or [],
        "skipped": run.skipped or [],
        "modified_scan": run.modified_scan,
        "error": run.error,
        "window_from": run.window_from.isoformat() if run.window_from else None,
        "updates": (run.preview if run.dry_run else None) if with_preview else None,
    }


@runs_blp.route("")
class Runs(MethodView):
    @runs_blp.arguments(RunQuerySchema, location="query", unknown=RAISE)
    @runs_blp.response(200, RunPageSchema, example=EXAMPLES["runs"])
    def get(self, query):
        """Runs, newest first. Follow `next` (as `before`) for older ones."""
        runs, older = list_runs(db.session, query["limit"], query.get("before"))
        return {"runs": [_run_json(run) for run in runs], "next": older}

    @runs_blp.arguments(RunRequestSchema, required=False, example=EXAMPLES["run_request"])
    @runs_blp.response(
        202, RunSchema, headers={"Location": {"description": "The run, to follow.", "schema": {"type": "string"}}}, example=EXAMPLES["run_started"]
    )
    @runs_blp.alt_response(
        409,
        description="A run is already in progress (`run_in_progress`).",
        example=problem_body(409, "run_in_progress", "a run is already in progress"),
    )
    def post(self, body):
        """Start a run now. A dry run's updates appear on the run when it has finished; none is stored."""
        body = body or {}
        config = run_config_of(current_app)
        with UnitOfWork(db.session) as uow:
            try:
                # The run's first step (the lock taken, the run recorded) is committed by start_run through uow.
                run, holder = start_run(uow, dry_run=body.get("dry_run", False), full=body.get("full", False), config=config)
            except RunInProgress as error:
                raise ApiProblem(409, "run_in_progress", str(error)) from error
            payload = _run_json(run)
        _execute_in_background(current_app._get_current_object(), payload["id"], holder)
        return payload, 202, {"Location": f"/api/v1/sync/runs/{payload['id']}"}


@runs_blp.route("/<int(max=2147483647):run_id>")  # larger ids cannot exist; never reach the database
class RunById(MethodView):
    @runs_blp.response(200, RunSchema, example=EXAMPLES["run"])
    @runs_blp.alt_response(404, description="No such run (`run_not_found`).", example=problem_body(404, "run_not_found", "no run 999"))
    def get(self, run_id):
        """One run; a finished dry run carries the updates it would have stored."""
        run = db.session.get(SyncRun, run_id)
        if run is None:
            raise ApiProblem(404, "run_not_found", f"no run {run_id}")
        return _run_json(run, with_preview=True)


# --- the feed -----------------------------------------------------------------------------------------------

updates_blp = Blueprint("updates", __name__, url_prefix="/api/v1/updates", description="The pull feed of shop updates.")


def _feed_response(page: feed.RowPage):
    """The page as the app's JSON provider answers it; written directly when the provider has its usual settings."""
    provider = current_app.json
    if (
        isinstance(provider, DefaultJSONProvider)
        and provider.sort_keys
        and provider.ensure_ascii
        and provider.compact is not False
        and not (provider.compact is None and current_app.debug)
    ):
        return current_app.response_class(feed_page_json(page.rows, page.next, page.has_more, page.head) + "\n", mimetype=provider.mimetype)
    return provider.response(dump_feed_page(page.rows, page.next, page.has_more, page.head))


def _consumer() -> int | None:
    """The request's key when it consumes the feed (it may write), else None: a read key reads, never acknowledges."""
    return g.api_key.id if is_consumer(g.api_key.scope) else None


def _refuse_another_shops(order_shop: int | None, order_key: str) -> None:
    """403 when the key is bound to a shop and the shop order (followed: `order_shop` is its shop) is another shop's."""
    bound = g.api_key.shop_id
    if bound is not None and order_shop is not None and order_shop != bound:
        raise ApiProblem(403, "shop_forbidden", f"shop order {order_key!r} is not of the shop this API key is bound to")


def _refuse_another_shops_order(order_key: str) -> None:
    """`_refuse_another_shops` for an order key as a client sends it, made as runs make keys: checked before any GesCom write."""
    if g.api_key.shop_id is not None:
        _refuse_another_shops(order_shop_id(db.session, shop_order_key(db.session, _gescom(), order_key)), order_key)


FEED_403 = SHOP_403
ACK_403 = "The key's scope is too low (`insufficient_scope`), or `ids` names updates of another shop than the key's (`shop_forbidden`)."
ORDER_403 = "`shop_forbidden`: the shop order is another shop's than the one this key is bound to."
INSUFFICIENT_SCOPE = problem_body(403, "insufficient_scope", "this endpoint needs a key with scope 'write'; this key has 'read'")
ORDER_FORBIDDEN = problem_body(403, "shop_forbidden", "shop order '1043' is not of the shop this API key is bound to")


@updates_blp.route("")
class Updates(MethodView):
    @updates_blp.arguments(FeedQuerySchema(), location="query", unknown=RAISE)  # one instance: webargs builds one per request from a class
    @updates_blp.response(200, FeedPageSchema, example=EXAMPLES["feed"])
    @updates_blp.alt_response(
        409,
        description="`cursor_beyond_head`: `after` is beyond the highest update id (`head`).",
        example=problem_body(
            409, "cursor_beyond_head", "the cursor 90000 is beyond the head of the feed, 81: updates are numbered up to 81 here", head=81
        ),
    )
    @updates_blp.alt_response(403, description=FEED_403, example=problem_body(403, "shop_forbidden", SHOP_FORBIDDEN))
    @updates_blp.alt_response(
        422,
        description="The query does not fit (`validation_error`): `field` names it, `query.shop` for an unknown shop.",
        example=problem_body(
            422, "validation_error", "query.shop: no shop has the code 'b2c'", field="query.shop", errors={"query.shop": "no shop has the code 'b2c'"}
        ),
    )
    def get(self, query):
        """Updates oldest first, after the cursor: of the key's shop, or for an admin key of every shop or the one `shop` names.
        Apply them, then acknowledge them (a key that may write: for itself)."""
        consumer, shop_id = _consumer(), _feed_shop(query.get("shop"))
        # A connection of its own, not the ORM session: one read, and most polls find nothing new (a fifth less CPU).
        with db.engine.connect() as connection:
            try:
                page = feed.update_rows_after(connection, query["after"], query["limit"], query["include_acked"], consumer, shop_id)
            except feed.CursorBeyondHead as beyond:
                raise ApiProblem(409, "cursor_beyond_head", str(beyond), head=beyond.head) from None
        if consumer is not None and page.rows:  # what it may acknowledge now; at the head, nothing is written
            record_served(db.engine, consumer, page.rows[-1][0])
        # FeedPageSchema documents the answer; the page is written without marshmallow (tested byte-identical),
        # and a Response goes out as it is.
        return _feed_response(page)


@updates_blp.route("/ack")
class Acknowledge(MethodView):
    @updates_blp.arguments(AckSchema, examples={"ids": {"value": EXAMPLES["ack_ids"]}, "up_to": {"value": EXAMPLES["ack_up_to"]}})
    @updates_blp.response(200, AckResultSchema, example=EXAMPLES["ack"])
    @updates_blp.alt_response(
        422,
        description="`ack_beyond_served`: updates never served to this key (`served_up_to` says up to where); "
        "`validation_error`: both ids and up_to, or neither.",
        examples=problems(
            problem_body(
                422, "ack_beyond_served", "up_to 2147483647 is beyond what this key was served: updates up to 76", field="up_to", served_up_to=76
            ),
            problem_body(422, "validation_error", "ids: send either ids or up_to", field="ids", errors={"ids": "send either ids or up_to"}),
        ),
    )
    @updates_blp.alt_response(
        403,
        description=ACK_403,
        examples=problems(
            INSUFFICIENT_SCOPE,
            problem_body(403, "shop_forbidden", "ids [82, 83] are updates of another shop than this key's", field="ids"),
        ),
    )
    def post(self, body):
        """Acknowledge updates by id, or every update up to an id, for this key only (a key bound to a shop: that shop's). Safe to repeat."""
        with UnitOfWork(db.session) as uow:
            try:
                result = feed.acknowledge(uow.session, body.get("ids"), body.get("up_to"), consumer=g.api_key.id, shop_id=g.api_key.shop_id)
            except feed.AckBeyondServed as beyond:
                field = "up_to" if "up_to" in body else "ids"
                raise ApiProblem(422, "ack_beyond_served", str(beyond), field=field, served_up_to=beyond.served_up_to) from None
            except feed.AckOfAnotherShop as other:
                raise ApiProblem(403, "shop_forbidden", str(other), field="ids") from None
            uow.commit()
        return {"acknowledged": result.acknowledged, "already_acknowledged": result.already_acknowledged, "unknown": result.unknown}


# --- orders --------------------------------------------------------------------------------------------------

orders_blp = Blueprint(
    "orders", __name__, url_prefix="/api/v1/orders", description="One shop order: documents, stage, timeline; tracking back to GesCom."
)


@orders_blp.route("/<string:order_key>")
class Order(MethodView):
    @orders_blp.response(200, OrderViewSchema, example=EXAMPLES["order"])
    @orders_blp.alt_response(403, description=ORDER_403, example=ORDER_FORBIDDEN)
    @orders_blp.alt_response(404, description="Not a shop order we follow (`order_not_found`).", example=EXAMPLES["order_not_found"])
    def get(self, order_key):
        """What we know of one shop order (its key is the link value: DO_NoWeb by default, the id_order)."""
        _refuse_another_shops_order(order_key)
        view = order_view(db.session, _gescom(), order_key, connections=current_app.extensions["shops"])
        if view is None:
            raise ApiProblem(404, "order_not_found", f"no shop order {order_key!r} is followed")
        return view


TRACKING_409 = (
    "Import from the shop is off, the settings do not allow it, the GesCom field holds another number, the document is busy, "
    "or the same Idempotency-Key is being worked on (`request_in_progress`, with Retry-After)."
)
# Real answers of the demo server.
TRACKING_PROBLEMS = {
    409: (
        problem_body(409, "tracking_import_disabled", "importing tracking numbers from the shop is off (settings tracking.import_from_shop)"),
        problem_body(
            409,
            "tracking_field_not_empty",
            "DO_Coord01 of document 1:BC00048 (shop order 1043) already holds '6A10430000001': a number typed in Sage is never overwritten",
            existing_value="6A10430000001",
        ),
    ),
    422: (
        problem_body(
            422,
            "only_invoices_left",
            "shop order 1006 has no bon de commande, préparation or bon de livraison left in GesCom (documents: 6:FA00019); "
            "invoices are never written",
        ),
        problem_body(
            422,
            "invalid_tracking_number",
            "the tracking number is 27 characters long; GesCom field DO_Coord01 holds at most 25",
            field="tracking_number",
        ),
    ),
}


def _tracking_answer(uow: UnitOfWork, order_key: str, number: str, source: str) -> tuple[int, dict]:
    """Write a shop tracking number to GesCom; (status, body) whether it worked or not. What the store remembers
    of it waits in `uow` for the caller's commit; a refusal leaves nothing there."""
    try:
        result = write_tracking(uow.session, _gescom(), order_key, number, source=source)
    except WriteBackError as error:
        uow.rollback()
        return error.status, problem_body(
            error.status, error.code, str(error), field=getattr(error, "field", None), existing_value=getattr(error, "existing", None)
        )
    except GesComError as error:
        uow.rollback()
        return 503, problem_body(503, "gescom_unavailable", str(error))
    return 200, {
        "status": "written" if result.changed else "unchanged",
        "order_key": result.order_key,
        "document": result.document,
        "field": result.field,
        "tracking_number": result.tracking_number,
        "changed": result.changed,
    }


def _answer(status: int, body: dict):
    if status >= 400:
        from .problems import problem_response

        return problem_response(body)
    return body, status


@orders_blp.route("/<string:order_key>/tracking")
class OrderTracking(MethodView):
    @orders_blp.arguments(TrackingRequestSchema, example=EXAMPLES["tracking_request"])
    @orders_blp.response(200, TrackingResultSchema, example=EXAMPLES["tracking"])
    @orders_blp.alt_response(
        403,
        description="The key's scope is too low (`insufficient_scope`), or " + ORDER_403,
        examples=problems(INSUFFICIENT_SCOPE, ORDER_FORBIDDEN),
    )
    @orders_blp.alt_response(404, description="Not a shop order we follow (`order_not_found`).", example=EXAMPLES["order_not_found"])
    @orders_blp.alt_response(409, description=TRACKING_409, examples=problems(*TRACKING_PROBLEMS[409]))
    @orders_blp.alt_response(
        422,
        description="The number does not fit the GesCom field, only invoices are left, or the Idempotency-Key is wrong.",
        examples=problems(*TRACKING_PROBLEMS[422]),
    )
    @orders_blp.doc(
        parameters=[
            {
                "in": "header",
                "name": "Idempotency-Key",
                "required": False,
                "schema": {"type": "string", "maxLength": 200},
                "description": "Same key and body: same answer, done once.",
            }
        ]
    )
    def put(self, body, order_key):
        """Write the shop's tracking number onto the order's latest GesCom document (BL, else PL, else BC; never an invoice)."""
        key = request.headers.get("Idempotency-Key", "").strip()
        if len(key) > 200:
            raise ApiProblem(422, "invalid_idempotency_key", "Idempotency-Key is limited to 200 characters", field="Idempotency-Key")
        _refuse_another_shops_order(order_key)  # before any GesCom write, and before an answer stored for another shop's order
        with UnitOfWork(db.session) as uow:
            if not key:
                status, answer = _tracking_answer(uow, order_key, body["tracking_number"], "api")
                uow.commit()
                return _answer(status, answer)
            claimed = _claim_key(uow, key, body)
            if not isinstance(claimed, Claim):
                return _replayed(claimed)  # the same request answered before: the same answer
            done = False
            try:
                status, answer = _tracking_answer(uow, order_key, body["tracking_number"], "api")
                if kept(status):
                    status, answer = finish(uow.session, claimed, status, answer)
                    uow.commit()  # what the store remembers of GesCom's write, its timeline event and the answer: together
                    done = True
            finally:
                if not done:
                    uow.rollback()  # first: on SQLite our own write lock would keep the claim's removal waiting
                    release(uow.session, claimed)  # an answer of the moment, or a failure: a retry is tried again
        return _answer(status, answer)


def _replayed(stored):
    """The answer stored for this Idempotency-Key, said to be a replay (`Idempotent-Replayed: true`)."""
    replayed = {"Idempotent-Replayed": "true"}
    answer = _answer(stored.status, stored.response)
    if isinstance(answer, tuple):
        return (*answer, replayed)
    answer.headers.update(replayed)
    return answer


def _claim_key(uow: UnitOfWork, key: str, body: dict):
    """This request's claim on its Idempotency-Key, or the answer stored for it; a problem for another body or while
    the same request is being worked on."""
    digest, api_key_id = body_hash(json.dumps(body, sort_keys=True).encode()), g.api_key.id
    # The request's read transaction ends first, giving its connection back: the claim takes one of its own, and
    # many requests at once each holding one while waiting for another would empty the pool.
    uow.rollback()
    try:
        return claim(uow.session, key, f"PUT {request.path}", api_key_id, digest)
    except IdempotencyMismatch as error:
        raise ApiProblem(422, "idempotency_key_reused", str(error), field="Idempotency-Key") from error
    except RequestInProgress as error:
        raise ApiProblem(409, "request_in_progress", str(error), headers={"Retry-After": str(error.retry_after)}) from error


# --- webhooks ------------------------------------------------------------------------------------------------

webhooks_blp = Blueprint(
    "webhooks", __name__, url_prefix="/api/v1/webhooks", description="Events sent by the PrestaShop module (Standard Webhooks signatures)."
)
EVENT_TYPES = ("order.tracking_updated", "order.status_changed")


def _event_order(data: dict):
    order_key = data.get("order_key")
    id_order = data.get("id_order")
    if order_key is not None and (not isinstance(order_key, str) or not 0 < len(order_key) <= 100 or "\x00" in order_key):
        raise ApiProblem(422, "validation_error", "data.order_key must be a string of 1 to 100 characters, without NUL", field="data.order_key")
    if id_order is not None and (not isinstance(id_order, int) or isinstance(id_order, bool) or not 0 < id_order < 2**63):
        raise ApiProblem(422, "validation_error", "data.id_order must be a positive integer", field="data.id_order")
    if order_key is None and id_order is None:
        raise ApiProblem(422, "validation_error", "data.order_key or data.id_order is required", field="data.order_key")
    return order_key, id_order


def _webhook_event(raw: bytes) -> tuple[str, dict]:
    """The event's type and data; a problem when the body is not an event."""
    try:
        event = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise ApiProblem(400, "invalid_json", "the body is not valid JSON") from error
    if not isinstance(event, dict) or not isinstance(event.get("type"), str) or not isinstance(event.get("data"), dict):
        raise ApiProblem(422, "validation_error", "an event is an object with a string `type` and an object `data`", field="type")
    return event["type"], event["data"]


def _tracking_updated(uow: UnitOfWork, data: dict) -> tuple[int, dict]:
    """order.tracking_updated: the number written to GesCom, as PUT /orders/<key>/tracking does."""
    order_key, id_order = _event_order(data)
    number = data.get("tracking_number")
    if not isinstance(number, str) or not 0 < len(number) <= 200:
        raise ApiProblem(422, "validation_error", "data.tracking_number must be a string of 1 to 200 characters", field="data.tracking_number")
    order = find_order(uow.session, order_key, id_order, shop_id=g.api_key.shop_id)
    if order is None:
        raise ApiProblem(404, "order_not_found", "no shop order with that key or id_order is followed")
    _refuse_another_shops(order.shop_id, order.order_key)
    return _tracking_answer(uow, order.order_key, number, "webhook")


def _status_changed(uow: UnitOfWork, data: dict) -> tuple[int, dict]:
    """order.status_changed: the shop's state recorded on the order (its timeline, and what we send next)."""
    order_key, id_order = _event_order(data)
    state_id = data.get("state_id")
    if not isinstance(state_id, int) or isinstance(state_id, bool) or not 0 < state_id < 2**31:
        raise ApiProblem(422, "validation_error", "data.state_id must be a positive integer", field="data.state_id")
    previous = data.get("previous_state_id")
    if previous is not None and (not isinstance(previous, int) or isinstance(previous, bool) or not 0 < previous < 2**31):
        raise ApiProblem(422, "validation_error", "data.previous_state_id must be a positive integer", field="data.previous_state_id")
    order = find_order(uow.session, order_key, id_order, shop_id=g.api_key.shop_id)
    if order is None:
        return 200, {"status": "ignored", "reason": "no shop order with that key or id_order is followed"}
    _refuse_another_shops(order.shop_id, order.order_key)
    record_shop_state(uow.session, order, state_id, previous, source="webhook")
    # A conflict state holds the order's updates not yet applied; a state out of them releases those held.
    judged = state_reported(uow.session, order, state_id, current_app.extensions.get("shops"))
    answer = {"status": "recorded", "order_key": order.order_key, "state_id": state_id}
    return 200, answer | {name: ids for name, ids in judged.items() if ids}


_EVENT_HANDLERS = {"order.tracking_updated": _tracking_updated, "order.status_changed": _status_changed}


@webhooks_blp.route("/prestashop")
class PrestaShopWebhook(MethodView):
    @webhooks_blp.doc(
        parameters=[
            {"in": "header", "name": name, "required": True, "schema": {"type": "string"}}
            for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
        ],
        requestBody={
            "required": True,
            "content": {
                "application/json": {
                    "schema": WEBHOOK_EVENT,
                    "examples": {name: {"value": EXAMPLES[f"webhook_{name}"]} for name in ("status_changed", "tracking_updated")},
                }
            },
        },
    )
    @webhooks_blp.response(
        200,
        WebhookAnswerSchema,
        description="Handled: the tracking answer (as PUT /orders/{order_key}/tracking), recorded, ignored, or duplicate.",
        examples={name: {"value": EXAMPLES[f"webhook_{name}"]} for name in ("recorded", "duplicate", "ignored")}
        | {"tracking": {"value": EXAMPLES["tracking"]}},
    )
    @webhooks_blp.alt_response(
        401,
        description="No API key, or the signature is missing, invalid or stale (`webhook_signature_invalid`...).",
        example=problem_body(401, "webhook_signature_invalid", "no signature matches the body"),
    )
    @webhooks_blp.alt_response(
        403,
        description="The key's scope is too low (`insufficient_scope`), or the event's order (by `order_key`) is another shop's (`shop_forbidden`).",
        examples=problems(INSUFFICIENT_SCOPE, ORDER_FORBIDDEN),
    )
    @webhooks_blp.alt_response(
        404, description="order.tracking_updated: not a shop order we follow (`order_not_found`).", example=EXAMPLES["order_not_found"]
    )
    @webhooks_blp.alt_response(409, description="order.tracking_updated: " + TRACKING_409, examples=problems(*TRACKING_PROBLEMS[409]))
    @webhooks_blp.alt_response(
        422,
        description="Not an event (`validation_error`, `field` names the part), or the number does not fit (as PUT tracking).",
        example=problem_body(422, "validation_error", "data.state_id must be a positive integer", field="data.state_id"),
    )
    @webhooks_blp.alt_response(
        503,
        description="No WEBHOOK_SECRET on the server (`webhooks_not_configured`), GesCom or the store unavailable.",
        example=problem_body(503, "webhooks_not_configured", "set WEBHOOK_SECRET to receive webhooks"),
    )
    def post(self):
        """An event from the module: order.tracking_updated (written to GesCom) or order.status_changed (recorded)."""
        secret = current_app.config.get("WEBHOOK_SECRET")
        if not secret:
            raise ApiProblem(503, "webhooks_not_configured", "set WEBHOOK_SECRET to receive webhooks")
        raw = request.get_data(cache=True)
        try:
            message_id = verify(secret, request.headers, raw)
        except WebhookRejected as error:
            raise ApiProblem(401, error.code, str(error)) from error
        with UnitOfWork(db.session) as uow:
            if webhook_seen(uow.session, message_id) is not None:
                return _duplicate(uow, message_id)
            kind, data = _webhook_event(raw)
            try:
                # The webhook-id first, then what the message changes, committed together: a delivery of the same
                # message handled concurrently waits on the webhook-id, then answers `duplicate` having done nothing.
                record = claim_webhook(uow.session, message_id, kind)
            except IntegrityError:
                uow.rollback()
                return _duplicate(uow, message_id)
            if kind in EVENT_TYPES:
                status, answer = _EVENT_HANDLERS[kind](uow, data)
            else:
                status, answer = 200, {"status": "ignored", "reason": f"event type {kind[:60]!r} is not handled"}
            if status >= 400:
                return _answer(status, answer)  # rolled back with its webhook-id: a retry of this message is tried again
            remember_webhook(uow.session, record, answer.get("order_key"), status, answer)
            uow.commit()
        return answer, status


def _duplicate(uow: UnitOfWork, message_id: str) -> dict:
    """The answer to a webhook message handled before: `duplicate`, with the first delivery's answer."""
    first = webhook_seen(uow.session, message_id)
    return {"status": "duplicate", "webhook_id": message_id, "first_answer": first.response if first is not None else None}


from .conflicts import conflicts_blp  # noqa: E402  (own modules, registered with the rest)
from .notifications import notifications_blp  # noqa: E402
from .push_retry import push_retry_blp  # noqa: E402
from .shops import shops_blp  # noqa: E402

BLUEPRINTS = (
    health_blp,
    settings_blp,
    reference_blp,
    runs_blp,
    updates_blp,
    orders_blp,
    webhooks_blp,
    notifications_blp,
    push_retry_blp,
    conflicts_blp,
    shops_blp,
)
