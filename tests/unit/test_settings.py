"""Typed settings and the one schema of the settings document (the checks against GesCom are in the integration tests)."""

from __future__ import annotations

from dataclasses import fields

import pytest
from marshmallow import fields as ma

from sync.core.settings import (
    DEFAULT_SETTINGS,
    Options,
    Settings,
    SettingsError,
    SettingsSchema,
    TrackingSettings,
    check_document,
    merge,
    problem_at,
)


def test_the_schema_and_the_dataclasses_name_the_same_settings():
    def names(schema) -> dict:
        return {name: names(item.schema) if isinstance(item, ma.Nested) else None for name, item in schema.fields.items()}

    shape = names(SettingsSchema())
    assert list(shape) == [item.name for item in fields(Settings)]
    assert list(shape["tracking"]) == [item.name for item in fields(TrackingSettings)]
    assert list(shape["options"]) == [item.name for item in fields(Options)]
    assert list(shape["stage_states"]) == list(Settings().stage_states)


def test_a_document_round_trips_and_missing_keys_take_their_defaults():
    settings = Settings.from_document({"tracking": {"state_on_send": 12}, "stage_states": {"invoiced": 5}})
    assert settings.tracking == TrackingSettings(state_on_send=12) and settings.options == Options()
    assert settings.stage_states["invoiced"] == 5 and settings.stage_states["shipped"] == 4
    assert Settings.from_document(settings.to_document()) == settings
    assert Settings().to_document() == DEFAULT_SETTINGS and list(DEFAULT_SETTINGS) == [item.name for item in fields(Settings)]


def test_settings_are_read_as_attributes_only():
    settings = Settings()
    assert settings.tracking.header_field == "DO_Coord01" and settings.link_field == "DO_NoWeb"
    with pytest.raises(TypeError):
        settings["tracking"]  # the document's shape is read through to_document(), never by key


@pytest.mark.parametrize(
    "document, path, message",
    [
        ({"tracking": {"send": 1}}, "tracking.send", "must be true or false"),
        ({"notify_customer": None}, "notify_customer", "must be true or false"),
        ({"stage_states": {"shipped": True}}, "stage_states.shipped", "must be a shop order state id"),
        ({"tracking": {"state_on_send": "12"}}, "tracking.state_on_send", "must be a shop order state id"),
        ({"shipped_document_type": 6}, "shipped_document_type", "must be 2 (préparation de livraison) or 3 (bon de livraison)"),
        ({"link_field": ""}, "link_field", "must be the name of a F_DOCENTETE column"),
        ({"tracking": {"line_field": 7}}, "tracking.line_field", "must be the name of a F_DOCLIGNE column"),
        ({"colour": "blue"}, "colour", "unknown setting; known: link_field, shipped_document_type, notify_customer, stage_states, tracking, options"),
        ({"options": {"send_all": True}}, "options.send_all", "unknown setting; known: send_piece_number, send_delivery_date, send_delivery_details"),
        ({"tracking": "DO_Coord01"}, "tracking", "must be an object"),
        (
            {"tracking": {"header_field": None, "line_field": None}},
            "tracking.header_field",
            "sending tracking numbers needs a header field or a line field",
        ),
    ],
)
def test_each_problem_is_named_by_its_field(document, path, message):
    _, errors = check_document(document)
    assert list(errors) == [path] and errors[path].startswith(message)
    with pytest.raises(SettingsError) as caught:
        Settings.from_document(document)
    assert caught.value.errors == errors


def test_states_are_checked_against_the_shops_when_known():
    _, errors = check_document({"stage_states": {"shipped": 99, "invoiced": "x"}, "tracking": {"state_on_send": 12}}, known_states={4, 12})
    assert errors == {
        "stage_states.invoiced": problem_at("stage_states.invoiced"),
        "stage_states.shipped": "unknown order state 99; known: 4, 12",
    }


def test_a_document_that_is_not_an_object_is_refused_whole():
    with pytest.raises(SettingsError) as caught:
        check_document(["tracking"])
    assert caught.value.errors == {"settings": "must be an object"}


def test_merge_is_deep_and_leaves_its_inputs_alone():
    current = {"tracking": {"send": True, "header_field": "DO_Coord01"}, "notify_customer": True}
    merged = merge(current, {"tracking": {"send": False}, "colour": "blue"})
    assert merged == {"tracking": {"send": False, "header_field": "DO_Coord01"}, "notify_customer": True, "colour": "blue"}
    assert current["tracking"]["send"] is True
