"""What the settings may be set to (shared by the API and the admin page), from a hand-made GesCom schema."""

from __future__ import annotations

from sync.gescom.settings_check import Column, GesComSchema
from sync.prestashop.states import NATIVE_ORDER_STATES
from sync.services.choices import known_states, link_fields, state_name, tracking_fields

SCHEMA = GesComSchema(
    header={
        "DO_Piece": Column("DO_Piece", True, 13),
        "DO_Type": Column("DO_Type", False),
        "DO_NoWeb": Column("DO_NoWeb", True, 31),
        "DO_Ref": Column("DO_Ref", True, 17),
        "DO_Coord01": Column("DO_Coord01", True, 25),
        "DO_Coord03": Column("DO_Coord03", True, 25),
        "Ref Chronopost": Column("Ref Chronopost", True, 21, free=True),
        "Date échéance": Column("Date échéance", False, free=True),
        "cbLibre": Column("cbLibre", True, 10, free=True),
    },
    line={"DL_Design": Column("DL_Design", True, 69), "Colis": Column("Colis", True, 30, free=True)},
)


def test_tracking_fields_are_the_standard_ones_present_then_the_text_free_fields():
    fields = tracking_fields(SCHEMA)
    assert [(f["name"], f["label"], f["kind"]) for f in fields["header"]] == [
        ("DO_Coord01", "Entête 1", "standard"),
        ("DO_Coord03", "Entête 3", "standard"),
        ("Ref Chronopost", "Ref Chronopost", "free"),
    ]
    assert [f["name"] for f in fields["line"]] == ["Colis"]  # no DL_NoColis in this base


def test_link_fields_skip_what_the_base_lacks_and_never_offer_technical_or_non_text_columns():
    assert [(f["name"], f["label"]) for f in link_fields(SCHEMA)] == [
        ("DO_NoWeb", "N° commande web"),
        ("DO_Ref", "Référence"),
        ("Ref Chronopost", "Ref Chronopost"),
    ]


def test_known_states_prefer_the_shop_and_fall_back_to_the_native_list():
    shop_states = [{"id": 42, "name": {"fr": "Remis au transporteur", "en": "Handed over"}}]
    assert known_states({"order_states": lambda: shop_states}) == ("shop", shop_states)
    assert known_states({"order_states": lambda: None}) == ("native", NATIVE_ORDER_STATES)  # the shop does not answer
    assert known_states({}) == ("native", NATIVE_ORDER_STATES)
    assert state_name(shop_states[0], "fr") == "Remis au transporteur" and state_name(shop_states[0], "en") == "Handed over"
    assert state_name({"id": 7, "name": {"default": "Custom"}}, "fr") == "Custom"
    assert state_name({"id": 7, "name": {}}, "fr") == "#7"
