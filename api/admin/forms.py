"""The settings form: controls named by the settings' dotted paths, so a SettingsError lands next to its control."""
from __future__ import annotations

from dataclasses import dataclass, field

from sync.services.choices import link_fields, state_name, tracking_fields
from sync.core.settings import GesComSchema
from sync.core.stages import STAGES

from .i18n import t

STAGE_NAMES = [stage.value for stage in STAGES]
CHECKBOXES = (
    "tracking.send", "tracking.import_from_shop", "notify_customer",
    "options.send_piece_number", "options.send_delivery_date", "options.send_delivery_details",
)
FIELD_SELECTS = ("tracking.header_field", "tracking.line_field", "link_field")
STATE_SELECTS = ("tracking.state_on_send", *(f"stage_states.{stage}" for stage in STAGE_NAMES))
CONTROLS = (*CHECKBOXES, *FIELD_SELECTS, *STATE_SELECTS, "shipped_document_type")
# The words of each control, for the error summary at the top of the page.
LABEL_KEYS = {
    **{name: f"settings.{name}" for name in CHECKBOXES + FIELD_SELECTS + ("tracking.state_on_send", "shipped_document_type")},
    **{f"stage_states.{stage}": f"stage.{stage}" for stage in STAGE_NAMES},
}


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
    return int(raw) if raw.isdigit() and len(raw) <= 10 else raw


def patch_from_form(form) -> dict:
    """The whole settings document the form describes (an unticked checkbox is simply absent: false)."""
    patch: dict = {}
    for name in CHECKBOXES:
        _put(patch, name, form.get(name) in ("on", "true", "1"))
    for name in FIELD_SELECTS:
        _put(patch, name, form.get(name, "").strip() or None)
    for name in STATE_SELECTS:
        _put(patch, name, _number_or_text(form.get(name, "")))
    _put(patch, "shipped_document_type", _number_or_text(form.get("shipped_document_type", "")))
    return patch


@dataclass
class Option:
    value: str
    label: str


@dataclass
class SettingsChoices:
    header_fields: list[Option] = field(default_factory=list)
    line_fields: list[Option] = field(default_factory=list)
    link_fields: list[Option] = field(default_factory=list)
    states: list[Option] = field(default_factory=list)


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
