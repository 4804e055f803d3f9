"""The settings: every option of the seed screen as typed `Settings`, their defaults, and the one schema of the
settings document (its shape and types; the API and the admin form use it too).

Whether the fields named are real text columns of the customer's own GesCom is checked beside the adapter
(sync/gescom/settings_check.py): nothing reaches SQL unless it is.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields, is_dataclass

from marshmallow import RAISE, Schema, ValidationError, validate
from marshmallow import fields as ma

from sync.core.sage import SHIPPING_TYPE_CHOICES
from sync.core.stages import STAGES

STAGE_NAMES = tuple(stage.value for stage in STAGES)


class SettingsError(ValueError):
    """Invalid settings; `errors` maps each offending field (dotted path) to a message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{key}: {message}" for key, message in errors.items()))


# --- typed settings ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackingSettings:
    send: bool = True  # « Envoyer le numéro de suivi du transporteur dans la boutique »
    header_field: str | None = "DO_Coord01"  # « Champ Numéro de transporteur (document) »
    line_field: str | None = None  # « Champ Numéro de transporteur (ligne) »
    state_on_send: int | None = None  # « Changer le statut en »
    import_from_shop: bool = False  # « Mettre à jour le numéro de suivi dans la commande à partir de la boutique »


@dataclass(frozen=True)
class Options:
    send_piece_number: bool = False
    send_delivery_date: bool = False
    send_delivery_details: bool = False


def _default_stage_states() -> dict[str, int | None]:
    return {stage: 4 if stage == "shipped" else None for stage in STAGE_NAMES}


@dataclass(frozen=True)
class Settings:
    link_field: str = "DO_NoWeb"  # the header text column holding the shop order
    shipped_document_type: int = 3  # 2 préparation de livraison, 3 bon de livraison
    notify_customer: bool = True  # « Prévenir le client par e-mail »
    stage_states: dict[str, int | None] = field(default_factory=_default_stage_states)  # None: « Ne pas modifier le statut »
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    options: Options = field(default_factory=Options)
    # Shop states besides PS_OS_CANCELED, PS_OS_REFUND and PS_OS_ERROR that hold our updates (sync/core/conflicts.py).
    conflict_states: list[int] = field(default_factory=list)

    @classmethod
    def from_document(cls, document: dict) -> Settings:
        """The settings a document describes (missing keys defaulted). Raises SettingsError naming each field."""
        document, errors = check_document(document)
        if errors:
            raise SettingsError(errors)
        return cls(
            link_field=document["link_field"],
            shipped_document_type=document["shipped_document_type"],
            notify_customer=document["notify_customer"],
            stage_states=dict(document["stage_states"]),
            tracking=TrackingSettings(**document["tracking"]),
            options=Options(**document["options"]),
            conflict_states=sorted(set(document["conflict_states"])),
        )

    def to_document(self) -> dict:
        """The settings document (what is stored, and what the API shows)."""
        return _document_of(self)


def _document_of(value) -> dict:
    document = {}
    for item in fields(value):
        inner = getattr(value, item.name)
        document[item.name] = _document_of(inner) if is_dataclass(inner) else copy.deepcopy(inner)
    return document


DEFAULT_SETTINGS: dict = Settings().to_document()


def default_settings() -> dict:
    return copy.deepcopy(DEFAULT_SETTINGS)


# --- the settings document's schema ------------------------------------------------------------------------
# Each field also says, in `problem`, what is wrong with a value it refuses, in the words the admin page and the
# CLI show (the API answers marshmallow's own messages).


class Flag(ma.Boolean):
    """true or false, nothing else (not 1, not "yes")."""

    problem = "must be true or false"

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class ColumnName(ma.String):
    """The name of a text column of `table` (its existence is checked against GesCom, not here)."""

    def __init__(self, table: str, **kwargs):
        super().__init__(validate=validate.Length(min=1, max=128), **kwargs)
        self.table = table
        self.problem = f"must be the name of a {table} column"


class StateId(ma.Integer):
    """A shop order state id, or null for « Ne pas modifier le statut »."""

    problem = "must be a shop order state id (a positive integer) or null for 'Ne pas modifier le statut'"

    def __init__(self, **kwargs):
        super().__init__(strict=True, allow_none=True, validate=validate.Range(min=1), **kwargs)


class StateIds(ma.List):
    """A list of shop order state ids (each a positive integer), each once."""

    problem = "must be a list of shop order state ids (positive integers)"

    def __init__(self, **kwargs):
        super().__init__(ma.Integer(strict=True, validate=validate.Range(min=1, max=2**31 - 1)), validate=validate.Length(max=100), **kwargs)


class ShippingDocument(ma.Integer):
    """The document type that means "shipped"."""

    problem = "must be 2 (préparation de livraison) or 3 (bon de livraison)"

    def __init__(self, **kwargs):
        super().__init__(strict=True, validate=validate.OneOf([int(choice) for choice in SHIPPING_TYPE_CHOICES]), **kwargs)


class _Strict(Schema):
    class Meta:
        unknown = RAISE
        ordered = True


StageStatesSchema = _Strict.from_dict(
    {stage: StateId(metadata={"description": f"Shop order state for stage {stage}; null = « Ne pas modifier le statut »."}) for stage in STAGE_NAMES},
    name="StageStates",
)


class TrackingSettingsSchema(_Strict):
    send = Flag(metadata={"description": "« Envoyer le numéro de suivi du transporteur dans la boutique »"})
    header_field = ColumnName(
        "F_DOCENTETE", allow_none=True, metadata={"description": "« Champ Numéro de transporteur (document) »: a F_DOCENTETE text column."}
    )
    line_field = ColumnName(
        "F_DOCLIGNE", allow_none=True, metadata={"description": "« Champ Numéro de transporteur (ligne) »: a F_DOCLIGNE text column."}
    )
    state_on_send = StateId(metadata={"description": "« Changer le statut en »"})
    import_from_shop = Flag(metadata={"description": "« Mettre à jour le numéro de suivi dans la commande à partir de la boutique »"})


class OptionsSchema(_Strict):
    send_piece_number = Flag()
    send_delivery_date = Flag()
    send_delivery_details = Flag()


class SettingsSchema(_Strict):
    link_field = ColumnName(
        "F_DOCENTETE", metadata={"description": "F_DOCENTETE text column holding the shop order (DO_NoWeb, DO_Ref, a free field)."}
    )
    shipped_document_type = ShippingDocument(metadata={"description": "2 = préparation de livraison, 3 = bon de livraison."})
    notify_customer = Flag(metadata={"description": "« Prévenir le client par e-mail » when a state is set in the shop."})
    stage_states = ma.Nested(StageStatesSchema)
    tracking = ma.Nested(TrackingSettingsSchema)
    options = ma.Nested(OptionsSchema)
    conflict_states = StateIds(
        metadata={
            "description": "Shop order states that hold our updates (a conflict the merchant decides), besides the shop's own cancelled, "
            "refunded and payment error states (PS_OS_CANCELED, PS_OS_REFUND, PS_OS_ERROR), which always do."
        }
    )


# --- checking a document -------------------------------------------------------------------------------------


def merge(current: dict, patch: dict) -> dict:
    """`current` with `patch` applied: nested objects merged, any other value replaced (the shape is checked after)."""
    result = copy.deepcopy(current)
    for key, value in patch.items():
        if isinstance(result.get(key), dict) and isinstance(value, dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def check_document(document: dict, known_states: set[int] | None = None) -> tuple[dict, dict[str, str]]:
    """The document with defaults for what it leaves out, and what is wrong with it by field (dotted path): its
    shape and types, and the rules that need nothing but the settings (and the shop's states, when given)."""
    if not isinstance(document, dict):
        raise SettingsError({"settings": "must be an object"})
    document = merge(default_settings(), document)
    errors = _shape_errors(document)
    errors.update(_rule_errors(document, errors, known_states))
    return document, errors


def _shape_errors(document: dict) -> dict[str, str]:
    try:
        SettingsSchema().load(document)
    except ValidationError as error:
        return {path: problem_at(path) for path in _paths(error.messages)}
    return {}


def _paths(messages: dict, prefix: str = ""):
    """The dotted paths of marshmallow's nested error messages."""
    for key, value in messages.items():
        path = prefix.rstrip(".") if key == "_schema" else f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _paths(value, f"{path}.")
        else:
            yield path


def problem_at(path: str) -> str:
    """What is wrong with the value at `path`, as the admin page and the CLI say it."""
    schema: Schema = SettingsSchema()
    names = path.split(".")
    for position, name in enumerate(names):
        found = schema.fields.get(name)
        if found is None:
            return f"unknown setting; known: {', '.join(schema.fields)}"
        if not isinstance(found, ma.Nested):
            return found.problem  # a list's items too ("conflict_states.0")
        if position == len(names) - 1:
            return "must be an object"
        schema = found.schema
    return "must be an object"


def _rule_errors(document: dict, shape_errors: dict[str, str], known_states: set[int] | None) -> dict[str, str]:
    """Rules across fields, and the states the shop knows."""
    errors: dict[str, str] = {}
    tracking = document["tracking"] if isinstance(document["tracking"], dict) else {}
    if tracking.get("send") is True and tracking.get("header_field") is None and tracking.get("line_field") is None:
        errors["tracking.header_field"] = "sending tracking numbers needs a header field or a line field"
    if known_states is None:
        return errors
    states = (
        {f"stage_states.{stage}": state for stage, state in document["stage_states"].items()} if isinstance(document["stage_states"], dict) else {}
    )
    states["tracking.state_on_send"] = tracking.get("state_on_send")
    for path, state in states.items():
        if path not in shape_errors and state is not None and state not in known_states:
            errors[path] = f"unknown order state {state}; known: {', '.join(map(str, sorted(known_states)))}"
    listed = document["conflict_states"] if isinstance(document["conflict_states"], list) else []
    unknown = [state for state in listed if isinstance(state, int) and state not in known_states]
    if unknown and not any(path.startswith("conflict_states") for path in shape_errors):
        errors["conflict_states"] = f"unknown order states {', '.join(map(str, unknown))}; known: {', '.join(map(str, sorted(known_states)))}"
    return errors
