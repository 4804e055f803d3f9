"""marshmallow schemas shared by the resources (request bodies, query strings, responses)."""

from __future__ import annotations

import json
from datetime import datetime
from json.encoder import encode_basestring_ascii

from marshmallow import RAISE, Schema, ValidationError, fields, missing, validate, validates_schema
from marshmallow.utils import ensure_text_type, get_value

from sync.core.settings import SettingsSchema
from sync.core.shops import CODE_PATTERN

MAX_ID = 2**31 - 1  # ids are 32-bit integer columns: a larger cursor cannot match anything


def no_nul(value: str) -> None:
    """A NUL character is in no key we store, and PostgreSQL refuses it in text: 422 naming the field, not a 500."""
    if "\x00" in value:
        raise ValidationError("must not contain a NUL character")


ORDER_KEY = (validate.Length(min=1, max=100), no_nul)  # an order key as a client types it (the document shows its length)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE
        ordered = True


def strict_bool(**kwargs) -> fields.Boolean:
    return fields.Boolean(truthy={True}, falsy={False}, **kwargs)


class JsonSchema(dict):
    """A response schema written as JSON Schema, for answers the view shapes itself: documented, sent as they are."""

    def dump(self, obj, **kwargs):
        return obj


def _object(properties: dict, required: tuple = (), **extra) -> dict:
    return {"type": "object", "properties": properties, "required": list(required or properties), **extra}


_CHECK = {"ok": {"type": "boolean"}, "status": {"type": "string", "enum": ["ok", "degraded", "down"]}, "error": {"type": "string"}}
HealthSchema = JsonSchema(
    _object(
        {
            "status": {"type": "string", "enum": ["ok", "degraded", "unavailable"]},
            "checks": _object(
                {
                    "store": _object({**_CHECK, "read": {"type": "boolean"}, "write": {"type": "boolean"}}, ("ok", "status", "read", "write")),
                    "gescom": _object(_CHECK, ("ok", "status")),
                }
            ),
        },
        title="Health",
    )
)
_FIELD = _object(
    {
        "name": {"type": "string", "description": "The column: DO_Coord01, or a free field's name."},
        "label": {"type": "string", "description": "Its name in Sage (Entête 1, N° colis)."},
        "width": {"type": ["integer", "null"], "description": "How many characters it holds."},
        "kind": {"type": "string", "enum": ["standard", "free"]},
    }
)
GesComFieldsSchema = JsonSchema(
    _object({"header": {"type": "array", "items": _FIELD}, "line": {"type": "array", "items": _FIELD}}, title="GesComFields")
)
_STATE_FLAGS = ("invoice", "send_email", "logable", "delivery", "shipped", "paid", "pdf_invoice")
OrderStatesSchema = JsonSchema(
    _object(
        {
            "source": {"type": "string", "enum": ["shop", "native"], "description": "shop: the connected shop's states; native: PrestaShop's."},
            "states": {
                "type": "array",
                "items": _object(
                    {
                        "id": {"type": "integer"},
                        "name": {"type": ["object", "string"], "additionalProperties": {"type": "string"}, "description": "By language: en, fr."},
                        "config_keys": {"type": "array", "items": {"type": "string"}},
                        "template": {"type": ["string", "null"]},
                        **{flag: {"type": "boolean"} for flag in _STATE_FLAGS},
                    },
                    ("id", "name"),
                ),
            },
        },
        title="OrderStates",
    )
)

# --- settings# --- settings ------------------------------------------------------------------------------------------
# One schema of the settings document, shared with the admin form and the settings' own checks.


class SettingsPatchSchema(SettingsSchema):
    """The same fields, all optional: only those sent change."""


# --- updates ------------------------------------------------------------------------------------------


def _quantity(value):
    """Quantity: 1 for one unit, 1.5 only when it has decimals (as the order view and docs/api.md write it)."""
    if value is None:
        return None
    number = float(value)
    return int(number) if number.is_integer() else number


class Quantity(fields.Number):
    """A quantity in JSON: an integer when it is whole (1, not 1.0), else a decimal number."""

    num_type = float

    def _format_num(self, value):
        return _quantity(value)


class DeliveryLineSchema(Schema):
    sku = fields.String()
    name = fields.String()
    quantity = Quantity()


class DeliverySchema(Schema):
    piece = fields.String()
    date = fields.String(allow_none=True)
    carrier = fields.String(allow_none=True)
    tracking_numbers = fields.List(fields.String())
    lines = fields.List(fields.Nested(DeliveryLineSchema))


class Timestamp(fields.String):
    """A UTC time as ISO 8601 with a Z (`2026-11-08T14:03:12.482113Z`); strings (a stored preview's) as they are."""

    def _serialize(self, value, attr, obj, **kwargs):
        if isinstance(value, datetime):
            return value.isoformat() + "Z"
        return super()._serialize(value, attr, obj, **kwargs)


class ConflictRecordSchema(Schema):
    """An update's conflict with the shop's state (sync/core/conflicts.py): what the shop said, why, since when, how it ended."""

    status = fields.String(
        validate=validate.OneOf(["open", "applied_anyway", "dismissed", "released"]),
        metadata={"description": "open (held), applied_anyway, dismissed, or released (the shop's state changed)."},
    )
    shop_state_id = fields.Integer(allow_none=True, metadata={"description": "The shop order's state when the conflict was seen (or last judged)."})
    reason = fields.String(
        allow_none=True,
        metadata={
            "description": "Why that state holds updates: the shop's PS_OS_CANCELED, PS_OS_REFUND or PS_OS_ERROR, or conflict_states (the setting)."
        },
    )
    since = fields.String(allow_none=True, metadata={"description": "When the conflict was first seen (ISO 8601, UTC)."})
    seen_by = fields.String(
        allow_none=True,
        metadata={"description": "push (the shop read before writing), webhook (the module said the state) or run (the state the module said last)."},
    )
    apply = fields.Boolean(
        metadata={
            "description": "Whether a module applies this update: false while open or dismissed, and for an update issued again "
            "(`reissued_as`: that one is applied instead)."
        }
    )
    resolved_at = fields.String(allow_none=True, metadata={"description": "When the conflict ended."})
    resolved_by = fields.String(
        allow_none=True, metadata={"description": "Who ended it: the API key's or the person's name; for a release, how the new state was seen."}
    )
    via = fields.String(allow_none=True, metadata={"description": "api or admin, for a conflict a merchant ended."})
    reissued_as = fields.Integer(
        allow_none=True, metadata={"description": "Pull mode: the update issued again at the head of the feed when it ended."}
    )
    reissue_of = fields.Integer(allow_none=True, metadata={"description": "Pull mode: the held update this one repeats."})
    shop_state_id_after = fields.Integer(allow_none=True, metadata={"description": "Released: the shop's state that ended the conflict."})


class UpdateSchema(Schema):
    """An update: a stored `Update` row (the feed), or a dry run's preview of one."""

    id = fields.Integer(allow_none=True, metadata={"description": "Only grows: the feed cursor. null in a dry run's preview."})
    order_key = fields.String()
    id_order = fields.Integer(allow_none=True)
    stage = fields.String(allow_none=True)
    state_id = fields.Integer(allow_none=True)
    tracking_numbers = fields.List(fields.String(), allow_none=True)
    piece = fields.String(allow_none=True)
    delivery_date = fields.String(allow_none=True)
    deliveries = fields.List(fields.Nested(DeliverySchema), allow_none=True)
    changes = fields.List(fields.String())
    created_at = Timestamp()
    conflict = fields.Nested(
        ConflictRecordSchema,
        allow_none=True,
        metadata={
            "description": "Its conflict with the shop's state, null when none. A module applies an update unless `conflict` is set "
            "and `conflict.apply` is false."
        },
    )
    acked_at = Timestamp(
        allow_none=True, metadata={"description": "When this key acknowledged it (a read key: when a first consumer did); null if not."}
    )


def shop_code_field(description: str) -> fields.String:
    """The `shop` query parameter: a shop's code; unknown: 422 `query.shop`, another shop than a bound key's: 403."""
    return fields.String(
        validate=validate.Regexp(
            f"^{CODE_PATTERN.pattern}$", error="not a shop code: a lowercase letter, then up to 19 lowercase letters, digits, '_' or '-'"
        ),
        metadata={"description": f"{description} Unknown: 422; another shop than the key's: 403 `shop_forbidden`."},
    )


class ShopQuerySchema(StrictSchema):
    """`?shop=`: which shop's settings or order states (an admin key names any; a bound key sees its own)."""

    shop = shop_code_field("A shop's code: that shop's (an admin key; without it: the key's own shop, the default shop for an admin key).")


class FeedQuerySchema(StrictSchema):
    after = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0, max=MAX_ID),
        metadata={"description": "Return updates with an id above this cursor. Beyond `head`: 409 `cursor_beyond_head`."},
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))
    include_acked = fields.Boolean(
        load_default=False, metadata={"description": "Also show updates this key acknowledged (a read key: any consumer acknowledged)."}
    )
    shop = shop_code_field("A shop's code: only its updates (an admin key; a key bound to a shop may name its own).")


class FeedPageSchema(Schema):
    updates = fields.List(fields.Nested(UpdateSchema))
    next = fields.Integer(metadata={"description": "Send it as `after` to get the next page."})
    has_more = fields.Boolean()
    head = fields.Integer(metadata={"description": "The highest update id this key sees (of its shop, or of `shop`): a cursor beyond it is refused."})


# --- the feed's fast path ----------------------------------------------------------------------------------
# `dump_feed_page` gives what FeedPageSchema().dump() gives for a page of stored updates, without marshmallow's
# per-field machinery (the pull feed's cost at 500 updates a page). Each helper mirrors one field's dump; a test
# (tests/integration/test_feed_fast_path.py) holds them equal on every kind of update the store can hold.


def _text(value):
    """fields.String"""
    return value if value is None or value.__class__ is str else ensure_text_type(value)


def _texts(values):
    """fields.List(fields.String())"""
    return None if values is None else [value if value is None or value.__class__ is str else ensure_text_type(value) for value in values]


def _integer(value):
    """fields.Integer"""
    return value if value is None or value.__class__ is int else int(value)


def _timestamp(value):
    """Timestamp"""
    return value.isoformat() + "Z" if isinstance(value, datetime) else _text(value)


def _nested(fields_dump: tuple, item) -> dict | None:
    """fields.Nested of a schema whose fields dump as `fields_dump` says: a key missing from the item is left out."""
    if item is None:
        return None
    read = item.get if item.__class__ is dict else lambda key, default: get_value(item, key, default)
    dumped = {}
    for key, dump in fields_dump:
        value = read(key, missing)
        if value is not missing:
            dumped[key] = dump(value)
    return dumped


_LINE_FIELDS = (("sku", _text), ("name", _text), ("quantity", _quantity))


def _lines(lines):
    return None if lines is None else [_nested(_LINE_FIELDS, line) for line in lines]


_DELIVERY_FIELDS = (("piece", _text), ("date", _text), ("carrier", _text), ("tracking_numbers", _texts), ("lines", _lines))


def _deliveries(deliveries):
    return None if deliveries is None else [_nested(_DELIVERY_FIELDS, delivery) for delivery in deliveries]


def _boolean(value):
    """fields.Boolean"""
    if value is None:
        return None
    try:
        if value in fields.Boolean.truthy:
            return True
        if value in fields.Boolean.falsy:
            return False
    except TypeError:
        pass
    return bool(value)


_CONFLICT_FIELDS = (
    ("status", _text),
    ("shop_state_id", _integer),
    ("reason", _text),
    ("since", _text),
    ("seen_by", _text),
    ("apply", _boolean),
    ("resolved_at", _text),
    ("resolved_by", _text),
    ("via", _text),
    ("reissued_as", _integer),
    ("reissue_of", _integer),
    ("shop_state_id_after", _integer),
)


def _conflict(record):
    return _nested(_CONFLICT_FIELDS, record)


def dump_update_row(row) -> dict:
    """UpdateSchema().dump() of a stored update, from a row of sync.store.feed.FEED_COLUMNS (in that order)."""
    # Written out field by field, the usual types tested first: this runs for each of up to 500 updates a page.
    id_, order_key, id_order, stage, state_id, tracking_numbers, piece, delivery_date, deliveries, changes, created_at, conflict, acked_at = row
    return {
        "id": id_ if id_.__class__ is int else _integer(id_),
        "order_key": order_key if order_key.__class__ is str else _text(order_key),
        "id_order": id_order if id_order.__class__ is int else _integer(id_order),
        "stage": stage if stage.__class__ is str else _text(stage),
        "state_id": state_id if state_id.__class__ is int else _integer(state_id),
        "tracking_numbers": _texts(tracking_numbers),
        "piece": piece if piece.__class__ is str else _text(piece),
        "delivery_date": _text(delivery_date),
        "deliveries": _deliveries(deliveries),
        "changes": _texts(changes),
        "created_at": created_at.isoformat() + "Z" if created_at.__class__ is datetime else _timestamp(created_at),
        "conflict": None if conflict is None else _conflict(conflict),
        "acked_at": acked_at.isoformat() + "Z" if acked_at.__class__ is datetime else _timestamp(acked_at),
    }


def dump_feed_page(rows, next_id: int, has_more: bool, head: int) -> dict:
    """FeedPageSchema().dump() of a page of the feed."""
    return {"updates": [dump_update_row(row) for row in rows], "next": _integer(next_id), "has_more": bool(has_more), "head": _integer(head)}


# `feed_page_json` writes the text of that page as the app's JSON provider does by default (keys sorted, ASCII,
# compact), without building the dicts first: a third less CPU for a full page. Odd values go through the same
# helpers as above, then json; tests/integration/test_feed_fast_path.py holds the answer byte-identical.
_COMPACT = json.JSONEncoder(ensure_ascii=True, sort_keys=True, separators=(",", ":")).encode


def _json_integer(value) -> str:
    return "null" if value is None else (int.__repr__(value) if value.__class__ is int else _COMPACT(_integer(value)))


def _json_text(value) -> str:
    return "null" if value is None else (encode_basestring_ascii(value) if value.__class__ is str else _COMPACT(_text(value)))


def _json_timestamp(value) -> str:
    return "null" if value is None else (f'"{value.isoformat()}Z"' if value.__class__ is datetime else _COMPACT(_timestamp(value)))


def _json_texts(values) -> str:
    if values.__class__ is list:
        try:
            return "[" + ",".join(map(encode_basestring_ascii, values)) + "]"
        except TypeError:  # an item that is not a string: it goes the long way
            pass
    return _COMPACT(_texts(values))


def _json_update_row(row) -> str:
    """The JSON text of `dump_update_row(row)`, keys sorted."""
    id_, order_key, id_order, stage, state_id, tracking_numbers, piece, delivery_date, deliveries, changes, created_at, conflict, acked_at = row
    return (
        f'{{"acked_at":{_json_timestamp(acked_at)},"changes":{_json_texts(changes)},'
        f'"conflict":{"null" if conflict is None else _COMPACT(_conflict(conflict))},"created_at":{_json_timestamp(created_at)},'
        f'"deliveries":{"null" if deliveries is None else _COMPACT(_deliveries(deliveries))},'
        f'"delivery_date":{_json_text(delivery_date)},"id":{_json_integer(id_)},"id_order":{_json_integer(id_order)},'
        f'"order_key":{_json_text(order_key)},"piece":{_json_text(piece)},"stage":{_json_text(stage)},'
        f'"state_id":{_json_integer(state_id)},"tracking_numbers":{_json_texts(tracking_numbers)}}}'
    )


def feed_page_json(rows, next_id: int, has_more: bool, head: int) -> str:
    """`json.dumps(dump_feed_page(...), sort_keys=True, ensure_ascii=True, separators=(",", ":"))`, written directly."""
    updates = ",".join(map(_json_update_row, rows))
    return f'{{"has_more":{"true" if has_more else "false"},"head":{_json_integer(head)},"next":{_json_integer(next_id)},"updates":[{updates}]}}'


class AckSchema(StrictSchema):
    ids = fields.List(fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_ID)), validate=validate.Length(min=1, max=1000))
    up_to = fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_ID))

    @validates_schema
    def one_of(self, data, **kwargs):
        if ("ids" in data) == ("up_to" in data):
            raise ValidationError("send either ids or up_to", field_name="ids")


class AckResultSchema(Schema):
    acknowledged = fields.Integer(metadata={"description": "Updates acknowledged by this call."})
    already_acknowledged = fields.Integer()
    unknown = fields.List(fields.Integer(), metadata={"description": "Ids that match no update."})


# --- runs ---------------------------------------------------------------------------------------------


class RunRequestSchema(StrictSchema):
    dry_run = strict_bool(load_default=False, metadata={"description": "Compute the updates without storing them."})
    full = strict_bool(load_default=False, metadata={"description": "Re-read every shop order, not only what changed."})


class SkippedOrderSchema(Schema):
    order_key = fields.String(metadata={"description": "The shop order, as its link value."})
    reason = fields.String(metadata={"description": "Why its documents could not be read."})
    documents = fields.List(fields.String(), metadata={"description": "Its GesCom documents as `type:piece`, e.g. `3:BL00012`."})


class RunSchema(Schema):
    id = fields.Integer()
    status = fields.String(metadata={"description": "running, succeeded, failed or interrupted"})
    dry_run = fields.Boolean()
    full = fields.Boolean()
    started_at = fields.String()
    finished_at = fields.String(allow_none=True)
    duration_seconds = fields.Float(allow_none=True)
    orders_checked = fields.Integer()
    orders_changed = fields.Integer()
    orders_skipped = fields.Integer()
    updates_created = fields.Integer()
    documents_unclaimed = fields.Integer(
        metadata={"description": "Documents this run found carrying a link value that no shop's rule claims: ignored (see GET /api/v1/shops)."}
    )
    warnings = fields.List(fields.String())
    skipped = fields.List(
        fields.Nested(SkippedOrderSchema), metadata={"description": "Shop orders this run could not read; the next run retries them."}
    )
    modified_scan = fields.Boolean(metadata={"description": "Whether this run read the cbModification window (the safety-net scan)."})
    error = fields.String(allow_none=True)
    window_from = fields.String(
        allow_none=True, metadata={"description": "Start of the cbModification window read, by GesCom's clock; null when the run did not scan."}
    )
    updates = fields.List(fields.Nested(UpdateSchema), allow_none=True, metadata={"description": "A finished dry run's updates."})


class RunQuerySchema(StrictSchema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=200))
    before = fields.Integer(validate=validate.Range(min=1, max=MAX_ID), metadata={"description": "Cursor: runs older than this id."})


class RunPageSchema(Schema):
    runs = fields.List(fields.Nested(RunSchema))
    next = fields.Integer(allow_none=True, metadata={"description": "Send it as `before` for older runs; null at the end."})


# --- orders ---------------------------------------------------------------------------------------------


class TrackingRequestSchema(StrictSchema):
    tracking_number = fields.String(required=True, validate=validate.Length(min=1, max=200))


class DocumentRefSchema(Schema):
    type = fields.Integer(metadata={"description": "1 BC, 2 PL, 3 BL."})
    piece = fields.String()


class TrackingResultSchema(Schema):
    status = fields.String(
        validate=validate.OneOf(["written", "unchanged"]),
        metadata={"description": "written: GesCom was written now; unchanged: GesCom already showed the number (`changed` false)."},
    )
    order_key = fields.String()
    document = fields.Nested(DocumentRefSchema, metadata={"description": "The document holding the number."})
    field = fields.String()
    tracking_number = fields.String()
    changed = fields.Boolean(metadata={"description": "False when GesCom already held this number."})


class OrderViewSchema(Schema):
    order_key = fields.String()
    shop = fields.String(metadata={"description": "The code of the shop the order is of (GET /api/v1/shops).", "example": "default"})
    id_order = fields.Integer(allow_none=True)
    stage = fields.String(allow_none=True)
    current_stage = fields.String(allow_none=True)
    is_open = fields.Boolean()
    shop_state_id = fields.Integer(allow_none=True)
    tracking_numbers = fields.List(fields.String())
    bc_pieces = fields.List(fields.String())
    first_seen_at = fields.String()
    checked_at = fields.String()
    documents = fields.List(fields.Dict(), allow_none=True, metadata={"description": "The order's GesCom documents now: type, piece, date, lines."})
    gescom_error = fields.String(allow_none=True)
    timeline = fields.List(
        fields.Dict(),
        metadata={
            "description": "Updates (with how they went to the shop, `to_shop`: acknowledged by the module, or pushed) and events, oldest first."
        },
    )


# --- webhooks ---------------------------------------------------------------------------------------------

_ORDER = {"order_key": {"type": "string", "minLength": 1, "maxLength": 100}, "id_order": {"type": "integer", "minimum": 1}}
_ONE_ORDER = [{"required": ["order_key"]}, {"required": ["id_order"]}]


def _event(kind: str, data: dict, required: list) -> dict:
    body = {"type": "object", "properties": {**_ORDER, **data}, "required": required, "anyOf": _ONE_ORDER}
    return {"type": "object", "required": ["type", "data"], "properties": {"type": {"const": kind}, "data": body}}


WEBHOOK_EVENT = {
    "oneOf": [
        _event("order.tracking_updated", {"tracking_number": {"type": "string", "minLength": 1, "maxLength": 200}}, ["tracking_number"]),
        _event(
            "order.status_changed",
            {
                "state_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                "previous_state_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
            },
            ["state_id"],
        ),
        {  # any other type: accepted and ignored, so that the module may send events this release does not use
            "type": "object",
            "required": ["type", "data"],
            "properties": {
                "type": {"type": "string", "not": {"enum": ["order.tracking_updated", "order.status_changed"]}},
                "data": {"type": "object"},
            },
        },
    ]
}
WebhookAnswerSchema = JsonSchema(
    {
        "title": "WebhookAnswer",
        "oneOf": [
            {"$ref": "#/components/schemas/TrackingResult"},
            _object(
                {
                    "status": {"const": "recorded"},
                    "order_key": {"type": "string"},
                    "state_id": {"type": "integer"},
                    "held": {
                        "type": "array",
                        "items": {"type": "integer"},
                        "description": "Updates of the order this state holds: a conflict state (GET /api/v1/conflicts).",
                    },
                    "released": {
                        "type": "array",
                        "items": {"type": "integer"},
                        "description": "Updates of the order this state releases: out of the conflict states, they go as usual.",
                    },
                },
                ("status", "order_key", "state_id"),
            ),
            _object({"status": {"const": "ignored"}, "reason": {"type": "string"}}),
            _object({"status": {"const": "duplicate"}, "webhook_id": {"type": "string"}, "first_answer": {"type": ["object", "null"]}}),
        ],
    }
)

# What JSON Schema says that marshmallow cannot, merged into the components of the OpenAPI document.
SCHEMA_EXTRAS = {"Ack": {"oneOf": [{"required": ["ids"]}, {"required": ["up_to"]}]}}


# --- examples: real answers of a test server (shortened lists), in the OpenAPI document -------------------

_UPDATE = {
    "acked_at": None,
    "changes": ["state", "stage", "tracking", "piece"],
    "created_at": "2026-11-28T19:06:06.952856Z",
    "deliveries": None,
    "delivery_date": None,
    "id": 72,
    "id_order": 1002,
    "order_key": "1002",
    "piece": "BL00035",
    "stage": "shipped",
    "state_id": 4,
    "tracking_numbers": ["6A36405622415"],
    "conflict": None,
}
_RUN = {
    "dry_run": False,
    "duration_seconds": 0.072826,
    "error": None,
    "finished_at": "2026-12-01T22:37:31.637233Z",
    "full": False,
    "id": 8,
    "modified_scan": True,
    "orders_changed": 2,
    "orders_checked": 2,
    "orders_skipped": 0,
    "documents_unclaimed": 0,
    "skipped": [],
    "started_at": "2026-12-01T22:37:31.564407Z",
    "status": "succeeded",
    "updates": None,
    "updates_created": 2,
    "warnings": [],
    "window_from": "2026-11-01T22:37:31",
}
_SETTINGS = {
    "link_field": "DO_NoWeb",
    "notify_customer": True,
    "options": {"send_delivery_date": False, "send_delivery_details": False, "send_piece_number": False},
    "shipped_document_type": 3,
    "stage_states": {
        "cancelled": None,
        "in_preparation": None,
        "invoiced": None,
        "ordered": None,
        "partially_shipped": None,
        "returned": None,
        "shipped": 4,
    },
    "tracking": {"header_field": "DO_Coord01", "import_from_shop": False, "line_field": None, "send": True, "state_on_send": None},
    "conflict_states": [],
}
_TRACKING = {
    "changed": True,
    "document": {"piece": "BL00001", "type": 3},
    "field": "DO_Coord01",
    "order_key": "1043",
    "status": "written",
    "tracking_number": "6A10430000001",
}
EXAMPLES = {
    "health": {
        "checks": {"gescom": {"ok": True, "status": "ok"}, "store": {"ok": True, "read": True, "status": "ok", "write": True}},
        "status": "ok",
    },
    "health_down": {
        "checks": {
            "gescom": {"error": "GesCom did not answer within 2 s", "ok": False, "status": "down"},
            "store": {"ok": True, "read": True, "status": "ok", "write": True},
        },
        "status": "unavailable",
    },
    "settings": _SETTINGS,
    "settings_patch": {"options": {"send_piece_number": True}, "stage_states": {"invoiced": 5}},
    "settings_patched": {
        **_SETTINGS,
        "options": {**_SETTINGS["options"], "send_piece_number": True},
        "stage_states": {**_SETTINGS["stage_states"], "invoiced": 5},
    },
    "gescom_fields": {
        "header": [
            {"kind": "standard", "label": "Entête 1", "name": "DO_Coord01", "width": 25},
            {"kind": "free", "label": "Ref Chronopost", "name": "Ref Chronopost", "width": 21},
        ],
        "line": [{"kind": "standard", "label": "N° colis", "name": "DL_NoColis", "width": 19}],
    },
    "order_states": {
        "source": "native",
        "states": [
            {
                "config_keys": ["PS_OS_SHIPPING"],
                "delivery": True,
                "id": 4,
                "invoice": True,
                "logable": True,
                "name": {"en": "Shipped", "fr": "Expédié"},
                "paid": True,
                "pdf_invoice": False,
                "send_email": True,
                "shipped": True,
                "template": "shipped",
            }
        ],
    },
    "run": _RUN,
    "run_started": {
        **_RUN,
        "dry_run": True,
        "duration_seconds": None,
        "finished_at": None,
        "id": 9,
        "modified_scan": False,
        "orders_changed": 0,
        "orders_checked": 0,
        "status": "running",
        "updates_created": 0,
        "window_from": None,
    },
    "run_request": {"dry_run": True, "full": False},
    "runs": {"next": 7, "runs": [_RUN]},
    "feed": {"has_more": True, "head": 81, "next": 72, "updates": [_UPDATE]},
    "ack_ids": {"ids": [71, 72]},
    "ack_up_to": {"up_to": 72},
    "ack": {"acknowledged": 2, "already_acknowledged": 0, "unknown": []},
    "tracking_request": {"tracking_number": "6A10430000001"},
    "tracking": _TRACKING,
    "webhook_status_changed": {"type": "order.status_changed", "data": {"order_key": "1002", "state_id": 4, "previous_state_id": 3}},
    "webhook_tracking_updated": {"type": "order.tracking_updated", "data": {"order_key": "1043", "tracking_number": "6A10430000001"}},
    "order": {
        "shop": "default",
        "bc_pieces": ["BC00002"],
        "checked_at": "2026-12-01T22:37:31.624134Z",
        "current_stage": "partially_shipped",
        "documents": [
            {
                "carrier": "Colissimo",
                "date": "2026-12-01",
                "lines": [{"name": "Mug", "origin_piece": "BC00002", "quantity": 1, "sku": "MUG"}],
                "piece": "BL00002",
                "tracking": None,
                "type": 3,
                "type_name": "BL",
            }
        ],
        "first_seen_at": "2026-12-01T22:37:31.624134Z",
        "gescom_error": None,
        "id_order": 1002,
        "is_open": True,
        "order_key": "1002",
        "shop_state_id": None,
        "stage": "partially_shipped",
        "timeline": [
            {
                "at": "2026-12-01T22:37:31.624134Z",
                "kind": "update",
                "to_shop": {
                    "acked_at": "2026-12-01T22:37:31.703115Z",
                    "push": None,
                    "status": "acknowledged",
                },
                "update": {**_UPDATE, "acked_at": "2026-12-01T22:37:31.703115Z", "changes": ["stage"], "id": 1, "stage": "partially_shipped"},
            }
        ],
        "tracking_numbers": [],
    },
    "order_not_found": {
        "code": "order_not_found",
        "detail": "no shop order '9999' is followed",
        "status": 404,
        "title": "Not Found",
        "type": "about:blank",
    },
    "webhook_recorded": {"order_key": "1002", "state_id": 4, "status": "recorded"},
    "webhook_duplicate": {"first_answer": {"order_key": "1002", "state_id": 4, "status": "recorded"}, "status": "duplicate", "webhook_id": "msg_1"},
    "webhook_ignored": {"reason": "no shop order with that key or id_order is followed", "status": "ignored"},
}
