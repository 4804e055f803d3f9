"""What the settings may be set to: GesCom fields a user may pick, and the shop's order states.

Shared by the API (GET /api/v1/gescom/fields, /order-states, PATCH /settings) and the admin page, so both
offer, and accept, the same things.
"""

from __future__ import annotations

from collections.abc import Mapping

from sync.core.sage import STANDARD_LINK_FIELDS, STANDARD_TRACKING_HEADER_FIELDS, STANDARD_TRACKING_LINE_FIELDS, is_technical_column
from sync.gescom.adapter import GesCom
from sync.gescom.settings_check import Column, GesComSchema
from sync.prestashop.states import NATIVE_ORDER_STATES


def live_schema(gescom: GesCom) -> GesComSchema:
    """GesCom's columns read again now: a free field may have been added in Sage since. Raises GesComError."""
    gescom.refresh()
    return gescom.schema()


def _pick(columns: dict[str, Column], standard: dict[str, str]) -> list[dict]:
    """The standard fields present as text columns (with Sage's labels), then the text free fields."""
    chosen = [
        {"name": name, "label": label, "width": columns[name].length, "kind": "standard"}
        for name, label in standard.items()
        if name in columns and columns[name].is_text
    ]
    chosen += [
        {"name": column.name, "label": column.name, "width": column.length, "kind": "free"}
        for column in columns.values()
        if column.free and column.is_text and not is_technical_column(column.name)
    ]
    return chosen


def tracking_fields(schema: GesComSchema) -> dict[str, list[dict]]:
    """Header and line fields that may hold the tracking number: Entête 1-4, N° colis, and the free fields."""
    return {"header": _pick(schema.header, STANDARD_TRACKING_HEADER_FIELDS), "line": _pick(schema.line, STANDARD_TRACKING_LINE_FIELDS)}


def link_fields(schema: GesComSchema) -> list[dict]:
    """Header text fields that may link a Sage document to its shop order: DO_NoWeb, DO_Ref, DO_RefExterne, free fields."""
    return _pick(schema.header, STANDARD_LINK_FIELDS)


def known_states(extensions: Mapping) -> tuple[str, list[dict]]:
    """("shop", the shop's order states) when a shop is configured and answers, else ("native", PrestaShop's native list).

    `extensions` is the Flask app's `extensions`; its "order_states" provider is set by configure_shop.
    """
    provider = extensions.get("order_states")
    if provider is not None:
        states = provider()
        if states:
            return "shop", states
    return "native", NATIVE_ORDER_STATES


def state_name(state: dict, lang: str = "fr") -> str:
    """A state's name in `lang` when the shop gave one, else in English, else any."""
    names = state.get("name") or {}
    if isinstance(names, str):
        return names
    for key in (lang, "en", "default"):
        if names.get(key):
            return str(names[key])
    return next((str(value) for value in names.values() if value), f"#{state.get('id')}")
