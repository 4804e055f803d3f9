"""A settings document per shop (issue 16): each shop's own mapping and options; the Sage-side settings
(link_field, tracking.header_field, tracking.line_field) are the default shop's for every shop."""

from __future__ import annotations

import pytest

from sync.core.settings import SettingsError
from sync.store.settings import current_settings, load_settings, save_settings
from sync.store.shops import create_shop, update_shop


@pytest.fixture
def two_shops(session) -> int:
    update_shop(session, "default", {"rule": {"kind": "souche", "values": [0]}})
    shop = create_shop(session, {"code": "b2b", "name": "Boutique pro", "rule": {"kind": "souche", "values": [1]}})
    session.commit()
    return shop.id


def test_each_shop_has_its_own_document_and_version(session, gescom, two_shops):
    save_settings(session, {"stage_states": {"shipped": 5}, "notify_customer": False}, gescom.schema(), shop_id=two_shops)
    session.commit()
    assert load_settings(session, two_shops).stage_states["shipped"] == 5 and not load_settings(session, two_shops).notify_customer
    assert load_settings(session).stage_states["shipped"] == 4 and load_settings(session).notify_customer
    assert current_settings(session)[1] == 0 and current_settings(session, two_shops)[1] == 1


def test_shared_settings_are_the_default_shop_s_and_refused_elsewhere(session, gescom, two_shops):
    assert current_settings(session, two_shops) == (current_settings(session)[0], 0)  # never saved: the defaults
    with pytest.raises(SettingsError) as refused:
        save_settings(session, {"tracking": {"header_field": "DO_Coord02"}}, gescom.schema(), shop_id=two_shops)
    assert list(refused.value.errors) == ["tracking.header_field"]
    # The same value as the default shop's is no change: accepted.
    save_settings(session, {"link_field": "DO_NoWeb", "stage_states": {"ordered": 2}}, gescom.schema(), shop_id=two_shops)
    session.commit()

    save_settings(session, {"tracking": {"header_field": "DO_Coord02"}}, gescom.schema())
    session.commit()
    document, version = current_settings(session, two_shops)
    assert document["tracking"]["header_field"] == "DO_Coord02" and document["stage_states"]["ordered"] == 2
    assert version == 2  # its document changed with the default shop's: its ETag moved on


def test_a_shop_never_saved_moves_on_too_when_the_shared_settings_change(session, gescom, two_shops):
    assert current_settings(session, two_shops)[1] == 0
    save_settings(session, {"link_field": "DO_Ref"}, gescom.schema())
    session.commit()
    document, version = current_settings(session, two_shops)
    assert (document["link_field"], version) == ("DO_Ref", 1)
    save_settings(session, {"stage_states": {"ordered": 3}}, gescom.schema())  # not shared: the other shop stays
    session.commit()
    assert current_settings(session, two_shops)[1] == 1
