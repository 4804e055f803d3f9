"""The settings document: every option of the seed screen, its defaults, and its validation.

Field names are checked against the reflected GesCom schema (`GesComSchema`), so nothing reaches SQL
unless it is a real column of the customer's own base.
"""
from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field

from sync.core.sage import SHIPPING_TYPE_CHOICES, is_technical_column
from sync.core.stages import STAGES

DEFAULT_SETTINGS: dict = {
    "link_field": "DO_NoWeb",
    "shipped_document_type": 3,
    "notify_customer": True,
    "stage_states": {
        "ordered": None,
        "in_preparation": None,
        "partially_shipped": None,
        "shipped": 4,
        "invoiced": None,
        "returned": None,
        "cancelled": None,
    },
    "tracking": {
        "send": True,
        "header_field": "DO_Coord01",
        "line_field": None,
        "state_on_send": None,
        "import_from_shop": False,
    },
    "options": {"send_piece_number": False, "send_delivery_date": False, "send_delivery_details": False},
}


def default_settings() -> dict:
    return copy.deepcopy(DEFAULT_SETTINGS)


@dataclass(frozen=True)
class Column:
    name: str
    is_text: bool
    length: int | None = None
    free: bool = False  # an "information libre" declared in cbSysLibre


@dataclass(frozen=True)
class GesComSchema:
    """The columns of the customer's F_DOCENTETE and F_DOCLIGNE, as reflected."""

    header: dict[str, Column] = field(default_factory=dict)
    line: dict[str, Column] = field(default_factory=dict)


def _lookup(columns: dict[str, Column], name: str) -> Column | None:
    # SQL Server's usual collation is case-insensitive: accept "do_coord01" but store the real spelling.
    if name in columns:
        return columns[name]
    lowered = {key.lower(): value for key, value in columns.items()}
    return lowered.get(name.lower())


class SettingsError(ValueError):
    """Invalid settings; `errors` maps each offending field (dotted path) to a message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{key}: {message}" for key, message in errors.items()))


def merge(current: dict, patch: dict, path: str = "") -> dict:
    """`current` with `patch` applied (nested objects merged, unknown keys refused)."""
    if not isinstance(patch, dict):
        raise SettingsError({path or "settings": "must be an object"})
    result = copy.deepcopy(current)
    errors: dict[str, str] = {}
    for key, value in patch.items():
        where = f"{path}.{key}" if path else key
        if key not in current:
            errors[where] = f"unknown setting; known: {', '.join(current)}"
        elif isinstance(current[key], dict):
            try:
                result[key] = merge(current[key], value, where)
            except SettingsError as error:
                errors.update(error.errors)
        else:
            result[key] = value
    if errors:
        raise SettingsError(errors)
    return result


def _is_bool(value) -> bool:
    return isinstance(value, bool)


def _is_state(value) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0)


def validate(document: dict, schema: GesComSchema | None, known_states: set[int] | None = None) -> dict:
    """The document, checked and normalised (real column spellings). Raises SettingsError naming each field.

    Without a schema (GesCom unreachable) the field names cannot be checked and are refused.
    """
    document = merge(default_settings(), document)  # shape: unknown keys refused, missing keys defaulted
    errors: dict[str, str] = {}

    def check_field(where: str, value, kind: str) -> str | None:
        """The real spelling of a configured column, or None with an error recorded."""
        table = "F_DOCENTETE" if kind == "header" else "F_DOCLIGNE"
        if not isinstance(value, str) or not value.strip():
            errors[where] = f"must be the name of a {table} column"
            return None
        if schema is None:
            errors[where] = "GesCom is unreachable: field names cannot be checked now"
            return None
        columns = schema.header if kind == "header" else schema.line
        column = _lookup(columns, value)
        if column is None or is_technical_column(column.name) or not column.is_text:
            candidates = sorted(name for name, c in columns.items() if c.is_text and not is_technical_column(name))
            close = difflib.get_close_matches(value, candidates, n=3, cutoff=0.6)
            reason = "is not a text column" if column is not None else "does not exist"
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            errors[where] = f"{value!r} {reason} in {table}.{hint} Text columns that exist: {', '.join(candidates)}"
            return None
        return column.name

    tracking = document["tracking"]
    document["link_field"] = check_field("link_field", document["link_field"], "header") or document["link_field"]
    for key, kind in (("header_field", "header"), ("line_field", "line")):
        if tracking[key] is not None:
            tracking[key] = check_field(f"tracking.{key}", tracking[key], kind) or tracking[key]
    for key in ("send", "import_from_shop"):
        if not _is_bool(tracking[key]):
            errors[f"tracking.{key}"] = "must be true or false"
    if tracking["send"] is True and tracking["header_field"] is None and tracking["line_field"] is None:
        errors["tracking.header_field"] = "sending tracking numbers needs a header field or a line field"

    if document["shipped_document_type"] not in SHIPPING_TYPE_CHOICES or isinstance(document["shipped_document_type"], bool):
        errors["shipped_document_type"] = "must be 2 (préparation de livraison) or 3 (bon de livraison)"
    if not _is_bool(document["notify_customer"]):
        errors["notify_customer"] = "must be true or false"
    for key, value in document["options"].items():
        if not _is_bool(value):
            errors[f"options.{key}"] = "must be true or false"

    states = dict(document["stage_states"])
    states["__tracking__"] = tracking["state_on_send"]
    for stage, state in states.items():
        where = "tracking.state_on_send" if stage == "__tracking__" else f"stage_states.{stage}"
        if not _is_state(state):
            errors[where] = "must be a shop order state id (a positive integer) or null for 'Ne pas modifier le statut'"
        elif state is not None and known_states is not None and state not in known_states:
            errors[where] = f"unknown order state {state}; known: {', '.join(map(str, sorted(known_states)))}"
    assert set(document["stage_states"]) == {stage.value for stage in STAGES}
    if errors:
        raise SettingsError(errors)
    return document
