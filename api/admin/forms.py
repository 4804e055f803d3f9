"""The settings form: controls named by the settings' dotted paths, so a SettingsError lands next to its control.

The controls come from the one schema of the settings document: a flag is a checkbox, a column a drop-down of
GesCom fields, a state id a drop-down of the shop's states, a list of state ids a checkbox per state of the shop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from marshmallow import Schema, fields

from sync.core import conflicts as conflict_rules
from sync.core.settings import STAGE_NAMES as STAGE_NAMES  # the views list the stages from here
from sync.core.settings import ColumnName, Flag, SettingsSchema, StateId, StateIds
from sync.gescom.settings_check import GesComSchema
from sync.services.choices import link_fields, state_name, tracking_fields

from .i18n import t


def _leaves(schema: Schema, prefix: str = ""):
    """(dotted path, field) of every value of the settings document."""
    for name, item in schema.fields.items():
        if isinstance(item, fields.Nested):
            yield from _leaves(item.schema, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", item


FIELDS = dict(_leaves(SettingsSchema()))
CHECKBOXES = tuple(name for name, item in FIELDS.items() if isinstance(item, Flag))
FIELD_SELECTS = tuple(name for name, item in FIELDS.items() if isinstance(item, ColumnName))
STATE_SELECTS = tuple(name for name, item in FIELDS.items() if isinstance(item, StateId))
STATE_LISTS = tuple(name for name, item in FIELDS.items() if isinstance(item, StateIds))  # conflict_states
CONTROLS = tuple(FIELDS)
# The words of each control, for the error summary at the top of the page.
LABEL_KEYS = {name: f"stage.{name.split('.', 1)[1]}" if name.startswith("stage_states.") else f"settings.{name}" for name in CONTROLS}


def control_id(name: str) -> str:
    return "f-" + name.replace(".", "-").replace("_", "-")


def flatten(document: dict, prefix: str = "") -> dict[str, object]:
    """{"tracking": {"send": True}} -> {"tracking.send": True}."""
    flat: dict[str, object] = {}
    for key, value in document.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            flat.update(flatten(value, path))
        else:
            flat[path] = value
    return flat


def _put(document: dict, path: str, value) -> None:
    *parents, leaf = path.split(".")
    for parent in parents:
        document = document.setdefault(parent, {})
    document[leaf] = value


def _number_or_text(raw: str):
    """A whole number as int; anything else as typed, for the validator to name."""
    raw = raw.strip()
    if not raw:
        return None
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 10 else raw  # "²" is a digit too; too big: the validator says so


def patch_from_form(form) -> dict:
    """The whole settings document the form describes (an unticked checkbox is simply absent: false)."""
    patch: dict = {}
    for name in CONTROLS:
        if name in CHECKBOXES:
            _put(patch, name, form.get(name) in ("on", "true", "1"))
        elif name in FIELD_SELECTS:
            _put(patch, name, form.get(name, "").strip() or None)
        elif name in STATE_LISTS:  # a box per state: the ticked ones, each once
            _put(patch, name, list(dict.fromkeys(_number_or_text(raw) for raw in form.getlist(name) if raw.strip())))
        else:  # a state, or the shipping document's type
            _put(patch, name, _number_or_text(form.get(name, "")))
    return patch


@dataclass
class Option:
    value: str
    label: str


@dataclass
class StateBox:
    """A shop state offered as a conflict state: `always` when the shop's configuration names it cancelled, refunded
    or payment error (it always holds updates, ticked and not to be changed)."""

    value: str
    label: str
    always: bool = False


@dataclass
class SettingsChoices:
    header_fields: list[Option] = field(default_factory=list)
    line_fields: list[Option] = field(default_factory=list)
    link_fields: list[Option] = field(default_factory=list)
    states: list[Option] = field(default_factory=list)
    conflict_states: list[StateBox] = field(default_factory=list)


def _field_options(fields: list[dict], lang: str) -> list[Option]:
    options = []
    for item in fields:
        if item["kind"] == "free":
            options.append(Option(item["name"], f"{item['name']} ({t('settings.free_field', lang)})"))
        else:
            options.append(Option(item["name"], f"{item['label']} ({item['name']})"))
    return options


def settings_choices(schema: GesComSchema | None, states: list[dict], lang: str) -> SettingsChoices:
    """What each drop-down offers: the live GesCom fields (none when GesCom is down) and the shop's states."""
    choices = SettingsChoices(states=[Option(str(state["id"]), f"{state['id']} — {state_name(state, lang)}") for state in states])
    always = conflict_rules.conflict_states(states)
    choices.conflict_states = [StateBox(option.value, option.label, int(option.value) in always) for option in choices.states]
    if schema is not None:
        fields = tracking_fields(schema)
        choices.header_fields = _field_options(fields["header"], lang)
        choices.line_fields = _field_options(fields["line"], lang)
        choices.link_fields = _field_options(link_fields(schema), lang)
    return choices


def with_current(options: list[Option], value, lang: str) -> list[Option]:
    """The options, plus the current value when it is not among them (kept visible, never silently replaced)."""
    if value is None or value == "" or any(option.value == str(value) for option in options):
        return options
    return [*options, Option(str(value), f"{value} ({t('common.unknown_value', lang)})")]


def without(patch: dict, names) -> dict:
    """The patch without these dotted paths (the shared settings another shop's page shows read-only)."""
    for name in names:
        *parents, leaf = name.split(".")
        parent = patch
        for key in parents:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict):
            parent.pop(leaf, None)
    return patch
