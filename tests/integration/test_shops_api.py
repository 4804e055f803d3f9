"""Shops created and changed through the API (admin keys) and the CLI; a settings document and order states per
shop, `?shop=` for admin keys, an ETag per shop; order keys of another shop typed by clients (issue 16; SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import create_engine, select

from models import ShopOrder, db
from models.shops import Shop
from sync.store.settings import current_settings
from tests.conftest import bearer, shop_key
from tests.simulator import ShopSimulator

SHOPS = "/api/v1/shops"
SETTINGS = "/api/v1/settings"
STATES = "/api/v1/order-states"
B2B = {"code": "b2b", "name": "Boutique pro", "rule": {"kind": "souche", "values": [1]}}
SIM_KEY = "B" * 32


@pytest.fixture
def admin(keys) -> dict:
    return bearer(keys["admin"])


def _shop_rule(client, admin, code: str, rule: dict) -> dict:
    answer = client.patch(f"{SHOPS}/{code}", json={"rule": rule}, headers=admin)
    assert answer.status_code == 200, answer.json
    return answer.json


@pytest.fixture
def b2b(client, admin, gescom) -> dict:
    """Shop b2b (souche 1) made through the API, once the default shop claims souche 0 only."""
    _shop_rule(client, admin, "default", {"kind": "souche", "values": [0]})
    answer = client.post(SHOPS, json=B2B, headers=admin)
    assert answer.status_code == 201, answer.json
    return answer.json


@pytest.fixture
def module_b2b(app, b2b) -> dict:
    """The b2b shop's module: a write key bound to b2b."""
    return shop_key(app, "module-b2b", "write", "b2b")


def _problem(answer, status: int, code: str, field: str | None = None) -> dict:
    assert answer.status_code == status, answer.json
    assert answer.json["code"] == code, answer.json
    if field is not None:
        assert answer.json["field"] == field, answer.json
    return answer.json


# --- shops ---------------------------------------------------------------------------------------------------


def test_an_admin_key_creates_a_shop_shown_as_get_shows_it(client, admin, b2b):
    assert b2b == {
        "code": "b2b",
        "name": "Boutique pro",
        "is_default": False,
        "rule": {"kind": "souche", "field": None, "values": [1]},
        "id_shop": None,
        "prestashop_url": None,
        "push": False,
        "orders": 0,
    }
    assert client.get(f"{SHOPS}/b2b", headers=admin).json == b2b
    listed = client.get(SHOPS, headers=admin).json["shops"]
    assert [shop["code"] for shop in listed] == ["default", "b2b"] and listed[0]["rule"] == {"kind": "souche", "field": None, "values": [0]}


def test_the_created_shop_is_where_location_says(client, admin, gescom):
    _shop_rule(client, admin, "default", {"kind": "souche", "values": [0]})
    answer = client.post(SHOPS, json={**B2B, "id_shop": 2, "prestashop_url": "https://pro.example/api"}, headers=admin)
    assert answer.status_code == 201 and answer.headers["Location"] == "/api/v1/shops/b2b"
    assert client.get(answer.headers["Location"], headers=admin).json == answer.json
    assert (answer.json["id_shop"], answer.json["prestashop_url"]) == (2, "https://pro.example/api")


def test_a_shop_that_could_claim_another_shops_documents_is_refused(client, admin, app, gescom):
    # While the default shop claims every document, no other shop can claim any.
    alone = _problem(client.post(SHOPS, json=B2B, headers=admin), 422, "invalid_shop", "rule")
    assert "'all' claims every document" in alone["detail"]
    _shop_rule(client, admin, "default", {"kind": "souche", "values": [0, 1]})
    overlap = _problem(client.post(SHOPS, json=B2B, headers=admin), 422, "invalid_shop", "rule.values.0")
    assert "already claimed by shop 'default'" in overlap["detail"]
    other_kind = {**B2B, "rule": {"kind": "tiers", "values": ["CPRO"]}}
    _problem(client.post(SHOPS, json=other_kind, headers=admin), 422, "invalid_shop", "rule.kind")
    with app.app_context():
        assert db.session.scalars(select(Shop.code)).all() == ["default"]


@pytest.mark.parametrize(
    "document, code, field",
    [
        ({**B2B, "rule": {"kind": "souche", "values": ["one"]}}, "invalid_shop", "rule.values.0"),
        ({**B2B, "rule": {"kind": "souche", "values": []}}, "invalid_shop", "rule.values"),
        ({**B2B, "rule": {"kind": "colour", "values": [1]}}, "invalid_shop", "rule.kind"),
        ({**B2B, "rule": {"kind": "field", "field": "cbMarq", "values": ["PRO"]}}, "invalid_shop", "rule.field"),
        ({**B2B, "rule": {"kind": "souche", "field": "DO_Souche", "values": [1]}}, "invalid_shop", "rule.field"),
        ({**B2B, "code": "B2B"}, "invalid_shop", "code"),
        ({**B2B, "name": " "}, "invalid_shop", "name"),
        ({**B2B, "id_shop": 0}, "invalid_shop", "id_shop"),
        ({**B2B, "prestashop_url": "ftp://pro.example"}, "invalid_shop", "prestashop_url"),
        ({"code": "b2b", "rule": B2B["rule"]}, "validation_error", "name"),
        ({**B2B, "is_default": True}, "validation_error", "is_default"),
        ({**B2B, "rule": {**B2B["rule"], "colour": "blue"}}, "validation_error", "rule.colour"),
    ],
)
def test_an_invalid_shop_is_a_422_naming_the_field(client, admin, gescom, document, code, field):
    _shop_rule(client, admin, "default", {"kind": "souche", "values": [0]})
    _problem(client.post(SHOPS, json=document, headers=admin), 422, code, field)


def test_a_taken_code_is_a_409(client, admin, b2b):
    _problem(client.post(SHOPS, json={**B2B, "rule": {"kind": "souche", "values": [2]}}, headers=admin), 409, "shop_exists", "code")
    _problem(client.post(SHOPS, json={**B2B, "code": "default", "rule": {"kind": "souche", "values": [2]}}, headers=admin), 409, "shop_exists")


def test_a_field_rule_names_a_column_of_gescom_kept_as_gescom_spells_it(client, admin, gescom):
    default = _shop_rule(client, admin, "default", {"kind": "field", "field": "ref chronopost", "values": ["WEB"]})
    assert default["rule"] == {"kind": "field", "field": "Ref Chronopost", "values": ["WEB"]}
    pro = {**B2B, "rule": {"kind": "field", "field": "REF CHRONOPOST", "values": ["PRO"]}}
    created = client.post(SHOPS, json=pro, headers=admin)
    assert created.status_code == 201 and created.json["rule"]["field"] == "Ref Chronopost"
    missing = {**B2B, "code": "b2c", "rule": {"kind": "field", "field": "Ref Colissimo", "values": ["B2C"]}}
    problem = _problem(client.post(SHOPS, json=missing, headers=admin), 422, "invalid_shop", "rule.field")
    assert "'Ref Colissimo' does not exist in F_DOCENTETE" in problem["detail"] and "Ref Chronopost" in problem["detail"]


def test_a_field_rule_needs_gescom(client, admin, app, gescom, tmp_path):
    from sync.gescom.adapter import GesCom

    app.extensions["gescom"] = GesCom(create_engine(f"sqlite:///{tmp_path}/no/such/dir.db"))
    rule = {"kind": "field", "field": "DO_Coord03", "values": ["WEB"]}
    _problem(client.patch(f"{SHOPS}/default", json={"rule": rule}, headers=admin), 503, "gescom_unavailable")
    # A technical column is refused without asking GesCom; a rule of another kind needs no GesCom.
    technical = {"rule": {**rule, "field": "cbCreateur"}}
    _problem(client.patch(f"{SHOPS}/default", json=technical, headers=admin), 422, "invalid_shop", "rule.field")
    assert client.patch(f"{SHOPS}/default", json={"rule": {"kind": "tiers", "values": ["CWEB"]}}, headers=admin).status_code == 200


def test_only_admin_keys_create_or_change_shops(client, keys, b2b, module_b2b):
    for headers in (bearer(keys["write"]), bearer(keys["read"]), module_b2b):
        _problem(client.post(SHOPS, json={**B2B, "code": "b2c"}, headers=headers), 403, "insufficient_scope")
        _problem(client.patch(f"{SHOPS}/b2b", json={"name": "Pro"}, headers=headers), 403, "insufficient_scope")
    assert client.get(f"{SHOPS}/b2b", headers=bearer(keys["admin"])).json["name"] == "Boutique pro"


def test_a_patch_changes_what_it_names_and_never_the_code_or_the_default(client, admin, b2b):
    changed = client.patch(f"{SHOPS}/b2b", json={"name": "Boutique professionnelle", "id_shop": 3}, headers=admin)
    assert changed.status_code == 200
    assert changed.json == {**b2b, "name": "Boutique professionnelle", "id_shop": 3}
    assert client.get(f"{SHOPS}/b2b", headers=admin).json == changed.json
    _problem(client.patch(f"{SHOPS}/b2b", json={"code": "pro"}, headers=admin), 422, "invalid_shop", "code")
    _problem(client.patch(f"{SHOPS}/default", json={"is_default": False}, headers=admin), 422, "invalid_shop", "is_default")
    _problem(client.patch(f"{SHOPS}/b2b", json={"rule": {"kind": "souche", "values": [0]}}, headers=admin), 422, "invalid_shop", "rule.values.0")
    _problem(client.patch(f"{SHOPS}/b2b", json={"id_shop": -1}, headers=admin), 422, "invalid_shop", "id_shop")
    _problem(client.patch(f"{SHOPS}/b2c", json={"name": "B2C"}, headers=admin), 404, "shop_not_found")
    _problem(client.patch(f"{SHOPS}/NO", json={"name": "B2C"}, headers=admin), 404, "shop_not_found")
    assert client.get(f"{SHOPS}/b2b", headers=admin).json == changed.json


# --- settings per shop ---------------------------------------------------------------------------------------


def _settings(client, headers, query: str = "", status: int = 200, **extra):
    answer = client.get(f"{SETTINGS}{query}", headers={**headers, **extra})
    assert answer.status_code == status, answer.json
    return answer


def _patch_settings(client, headers, patch: dict, etag: str, query: str = ""):
    return client.patch(f"{SETTINGS}{query}", json=patch, headers={**headers, "If-Match": etag})


def test_each_shop_has_its_own_settings_version_and_etag(client, admin, b2b, app):
    default = _settings(client, admin)
    assert default.headers["ETag"] == '"settings-v0"'  # as before shops: a module polling sees no change
    own = _settings(client, admin, "?shop=b2b")
    assert own.headers["ETag"] == '"settings-b2b-v0"' and own.json == default.json
    patched = _patch_settings(client, admin, {"options": {"send_piece_number": True}}, '"settings-b2b-v0"', "?shop=b2b")
    assert patched.status_code == 200 and patched.headers["ETag"] == '"settings-b2b-v1"'
    assert patched.json["options"]["send_piece_number"] is True
    # The default shop's document is untouched, and an ETag of one shop never matches the other's document.
    assert _settings(client, admin).headers["ETag"] == '"settings-v0"'
    assert _settings(client, admin, "?shop=default").json["options"]["send_piece_number"] is False
    refused = _patch_settings(client, admin, {"options": {"send_piece_number": True}}, '"settings-b2b-v1"')
    _problem(refused, 412, "settings_changed")
    assert refused.headers["ETag"] == '"settings-v0"'
    _problem(_patch_settings(client, admin, {"options": {"send_delivery_date": True}}, '"settings-v0"', "?shop=b2b"), 412, "settings_changed")
    assert _settings(client, admin, "?shop=b2b", 304, **{"If-None-Match": '"settings-b2b-v1"'}).data == b""
    assert _settings(client, admin, "", 200, **{"If-None-Match": '"settings-b2b-v1"'}).headers["ETag"] == '"settings-v0"'
    with app.app_context():
        assert current_settings(db.session, 1)[1] == 0 and current_settings(db.session, b2b_id(app))[1] == 1


def b2b_id(app) -> int:
    return db.session.scalar(select(Shop.id).where(Shop.code == "b2b"))


def test_a_bound_key_reads_its_shops_settings_and_no_other(client, admin, module_b2b, keys):
    assert _patch_settings(client, admin, {"stage_states": {"invoiced": 5}}, "*", "?shop=b2b").status_code == 200
    own = _settings(client, module_b2b)
    assert own.headers["ETag"] == '"settings-b2b-v1"' and own.json["stage_states"]["invoiced"] == 5
    assert _settings(client, module_b2b, "?shop=b2b").json == own.json
    _problem(client.get(f"{SETTINGS}?shop=default", headers=module_b2b), 403, "shop_forbidden")
    _problem(client.get(f"{SETTINGS}?shop=b2c", headers=module_b2b), 422, "validation_error", "query.shop")
    _problem(client.get(f"{SETTINGS}?shop=B2B", headers=admin), 422, "validation_error", "query.shop")
    # The default shop's keys read the default shop's, as before shops.
    default = _settings(client, bearer(keys["read"]))
    assert default.headers["ETag"] == '"settings-v0"' and default.json["stage_states"]["invoiced"] != 5
    _problem(client.get(f"{SETTINGS}?shop=b2b", headers=bearer(keys["read"])), 403, "shop_forbidden")
    _problem(_patch_settings(client, module_b2b, {"stage_states": {"invoiced": 4}}, "*"), 403, "insufficient_scope")


def test_the_shared_settings_are_changed_in_the_default_shops_document_only(client, admin, b2b):
    refused = _patch_settings(client, admin, {"tracking": {"header_field": "DO_Coord02"}}, '"settings-b2b-v0"', "?shop=b2b")
    assert "default shop's settings" in _problem(refused, 422, "invalid_settings", "tracking.header_field")["detail"]
    _problem(_patch_settings(client, admin, {"link_field": "DO_Ref"}, "*", "?shop=b2b"), 422, "invalid_settings", "link_field")
    same = _patch_settings(client, admin, {"tracking": {"header_field": "DO_Coord01", "send": False}}, '"settings-b2b-v0"', "?shop=b2b")
    assert same.status_code == 200 and same.headers["ETag"] == '"settings-b2b-v1"'  # the shared value as it is: fine
    # Changed in the default shop's document: every shop shows it, and b2b's version moves on too.
    changed = _patch_settings(client, admin, {"tracking": {"header_field": "DO_Coord02"}}, '"settings-v0"')
    assert changed.status_code == 200 and changed.headers["ETag"] == '"settings-v1"'
    own = _settings(client, admin, "?shop=b2b")
    assert own.json["tracking"]["header_field"] == "DO_Coord02" and own.json["tracking"]["send"] is False
    assert own.headers["ETag"] == '"settings-b2b-v2"'


@pytest.fixture
def b2b_shop(monkeypatch):
    """A PrestaShop installation for shop b2b, with a state of its own (20)."""
    shop = ShopSimulator(version="8.1.5", key=SIM_KEY).start()
    shop.add_state({1: "Handed to carrier", 2: "Remis au transporteur"}, id=20)
    monkeypatch.setenv("PRESTASHOP_API_KEY_B2B", SIM_KEY)
    yield shop
    shop.stop()


def test_each_shop_checks_its_settings_against_its_own_states(client, admin, b2b, b2b_shop, module_b2b):
    assert client.patch(f"{SHOPS}/b2b", json={"prestashop_url": b2b_shop.url}, headers=admin).json["push"] is True
    states = client.get(f"{STATES}?shop=b2b", headers=admin).json
    assert states["source"] == "shop" and 20 in [state["id"] for state in states["states"]]
    assert client.get(STATES, headers=module_b2b).json == states
    assert client.get(STATES, headers=admin).json["source"] == "native"
    _problem(client.get(f"{STATES}?shop=default", headers=module_b2b), 403, "shop_forbidden")
    assert _patch_settings(client, admin, {"stage_states": {"invoiced": 20}}, "*", "?shop=b2b").status_code == 200
    _problem(_patch_settings(client, admin, {"stage_states": {"invoiced": 20}}, "*"), 422, "invalid_settings", "stage_states.invoiced")


# --- order keys typed by clients -----------------------------------------------------------------------------


def test_a_bound_key_names_its_shops_orders_by_their_keys(client, app, b2b, module_b2b, keys):
    now = datetime(2026, 1, 1)
    with app.app_context():
        for key, shop_id in (("4711", 1), ("b2b:4711", b2b_id(app))):
            db.session.add(ShopOrder(order_key=key, id_order=4711, shop_id=shop_id, first_seen_at=now, checked_at=now, updated_at=now))
        db.session.commit()
    assert client.get("/api/v1/orders/b2b:4711", headers=module_b2b).status_code == 200
    _problem(client.get("/api/v1/orders/4711", headers=module_b2b), 403, "shop_forbidden")
    _problem(client.get("/api/v1/orders/b2b:4711", headers=bearer(keys["read"])), 403, "shop_forbidden")


# --- the CLI -------------------------------------------------------------------------------------------------


def _shop_row(app, code: str) -> dict:
    with app.app_context():
        row = db.session.scalar(select(Shop).where(Shop.code == code))
        return {"name": row.name, "rule": row.rule, "id_shop": row.id_shop, "prestashop_url": row.prestashop_url}


def test_flask_shop_create_and_edit(runner, app, gescom):
    refused = runner.invoke(args=["shop", "create", "b2b", "--name", "Boutique pro", "--rule-kind", "souche", "--value", "1"])
    assert refused.exit_code != 0 and "--rule-kind / --value" in refused.output and "'all' claims every document" in refused.output
    assert refused.exception is None or isinstance(refused.exception, SystemExit)
    edited = runner.invoke(args=["shop", "edit", "default", "--rule-kind", "souche", "--value", "0"])
    assert edited.exit_code == 0, edited.output
    created = runner.invoke(args=["shop", "create", "b2b", "--name", "Boutique pro", "--rule-kind", "souche", "--value", "1", "--id-shop", "2"])
    assert created.exit_code == 0, created.output
    assert _shop_row(app, "b2b") == {
        "name": "Boutique pro",
        "rule": {"kind": "souche", "field": None, "values": [1]},
        "id_shop": 2,
        "prestashop_url": None,
    }
    changed = runner.invoke(args=["shop", "edit", "b2b", "--value", "1", "--value", "2", "--url", "https://pro.example/api", "--id-shop", "none"])
    assert changed.exit_code == 0, changed.output
    assert _shop_row(app, "b2b") == {
        "name": "Boutique pro",
        "rule": {"kind": "souche", "field": None, "values": [1, 2]},
        "id_shop": None,
        "prestashop_url": "https://pro.example/api",
    }
    listed = runner.invoke(args=["shop", "list"]).output
    assert "b2b\tBoutique pro" in listed and '"values": [1, 2]' in listed


@pytest.mark.parametrize(
    "args, option, message",
    [
        (["create", "b2b", "--name", "Pro", "--rule-kind", "souche", "--value", "un"], "--value", "integer"),
        (["create", "b2b", "--name", "Pro", "--rule-kind", "souche", "--value", "0"], "--value", "already claimed by shop 'default'"),
        (["create", "B2B", "--name", "Pro", "--rule-kind", "souche", "--value", "2"], "CODE", "lowercase"),
        (["create", "default", "--name", "Pro", "--rule-kind", "souche", "--value", "2"], "CODE", "already the code"),
        (["create", "b2b", "--name", "Pro", "--rule-kind", "souche", "--value", "2", "--url", "ftp://x"], "--url", "http(s)://"),
        (["create", "b2b", "--name", "Pro", "--rule-kind", "souche", "--value", "2", "--id-shop", "x"], "--id-shop", "positive integer"),
        (["create", "b2b", "--name", "Pro", "--rule-kind", "tiers", "--value", "CPRO"], "--rule-kind", "must be 'souche'"),
        (["create", "b2b", "--rule-kind", "souche", "--value", "2"], "--name", "--name"),
        (["edit", "b2c", "--name", "Pro"], "CODE", "no shop has the code 'b2c'"),
        (["edit", "default", "--rule-kind", "field", "--rule-field", "DO_Canal", "--value", "WEB"], "--rule-field", "does not exist in F_DOCENTETE"),
        (["edit", "default", "--rule-kind", "field", "--rule-field", "cbMarq", "--value", "WEB"], "--rule-field", "technical"),
    ],
)
def test_flask_shop_create_and_edit_name_the_option_at_fault(runner, app, gescom, args, option, message):
    assert runner.invoke(args=["shop", "edit", "default", "--rule-kind", "souche", "--value", "0"]).exit_code == 0
    result = runner.invoke(args=["shop", *args])
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.output
    assert option in result.output and message in result.output, result.output
    assert "Traceback" not in result.output
    with app.app_context():
        assert db.session.scalars(select(Shop.code)).all() == ["default"]


def test_flask_shop_edit_takes_a_field_rule_as_gescom_spells_it(runner, app, gescom):
    result = runner.invoke(args=["shop", "edit", "default", "--rule-kind", "field", "--rule-field", "do_coord03", "--value", "WEB"])
    assert result.exit_code == 0, result.output
    assert _shop_row(app, "default")["rule"] == {"kind": "field", "field": "DO_Coord03", "values": ["WEB"]}


def test_flask_settings_show_and_set_per_shop(runner, app, gescom, b2b):
    assert runner.invoke(args=["settings", "set", "--shop", "b2b", "options.send_piece_number=true"]).exit_code == 0
    shown = runner.invoke(args=["settings", "show", "--shop", "b2b"])
    assert shown.exit_code == 0 and '"send_piece_number": true' in shown.output and "(version 1)" in shown.stderr
    default = runner.invoke(args=["settings", "show"])
    assert '"send_piece_number": false' in default.output and "(version 0)" in default.stderr
    shared = runner.invoke(args=["settings", "set", "--shop", "b2b", "link_field=DO_Ref"])
    assert shared.exit_code != 0 and "link_field: is the same for every shop" in shared.output
    unknown = runner.invoke(args=["settings", "show", "--shop", "b2c"])
    assert unknown.exit_code != 0 and "--shop" in unknown.output and "no shop has the code 'b2c'" in unknown.output


def test_flask_shop_check_checks_the_named_shop(runner, client, admin, b2b, b2b_shop, monkeypatch):
    unconfigured = runner.invoke(args=["shop", "check", "--shop", "b2b"])
    assert unconfigured.exit_code != 0 and "no webservice address" in unconfigured.output and "flask shop edit b2b --url" in unconfigured.output
    assert client.patch(f"{SHOPS}/b2b", json={"prestashop_url": b2b_shop.url}, headers=admin).status_code == 200
    checked = runner.invoke(args=["shop", "check", "--shop", "b2b"])
    assert checked.exit_code == 0, checked.output
    assert "PrestaShop 8.1.5" in checked.output and "Remis au transporteur" in checked.output
    monkeypatch.delenv("PRESTASHOP_API_KEY_B2B")
    keyless = runner.invoke(args=["shop", "check", "--shop", "b2b"])
    assert keyless.exit_code != 0 and "PRESTASHOP_API_KEY_B2B" in keyless.output
    default = runner.invoke(args=["shop", "check"])
    assert default.exit_code != 0 and "PRESTASHOP_URL" in default.output
