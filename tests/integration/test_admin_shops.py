"""The admin page knows shops (issue 16), through the Flask test client on the selected backend: the Boutiques page
(list, add, change, the store's refusals next to their field, in French), the shop selector, the settings form of
the selected shop (the shared settings read-only for another shop) and the dashboard per shop."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import unescape

import pytest
from sqlalchemy import event, func, select

from models import ShopOrder, db
from models.shops import Shop
from sync.core.stages import ShopUpdate
from sync.gescom.demo.schema import create_gescom
from sync.gescom.demo.warehouse import Warehouse
from sync.services.dashboard import shop_figures
from sync.services.run_config import RunConfig
from sync.services.runs import run_sync
from sync.services.unit_of_work import UnitOfWork
from sync.store.feed import add_update
from sync.store.settings import current_settings
from sync.store.shops import get_shop
from tests.integration.test_admin import LINES, control, csrf_of, form_of, login

SHARED = ("link_field", "tracking.header_field", "tracking.line_field")
B2B = {"code": "b2b", "name": "Boutique pro", "kind": "souche", "values": "1", "id_shop": "", "prestashop_url": "https://pro.example.fr"}


@pytest.fixture
def followed(app, clock):
    """A demo-shaped GesCom with two web orders followed by one run (both the default shop's)."""
    engine = app.extensions["gescom"].engine
    create_gescom(engine)
    warehouse = Warehouse(engine, clock)
    clock.tick(-10)
    warehouse.create_order("4711", LINES, reference="KHWTQZXNB")
    warehouse.create_order("4712", [("MUG", "Mug", 2)], reference="OTHERREFX")
    clock.tick(10)
    with app.app_context():
        run_sync(UnitOfWork(db.session), app.extensions["gescom"], config=RunConfig(recheck_age=timedelta(0)))
        db.session.remove()
    return warehouse


def text_of(answer) -> str:
    return unescape(answer.text)


def post(client, path: str, data: dict):
    return client.post(path, data={**data, "csrf_token": csrf_of(client)})


def two_shops(client) -> None:
    """Through the pages: the default shop takes souche 0, then shop b2b (souche 1) is added."""
    answer = post(client, "/admin/shops/default", {"name": "Boutique principale", "kind": "souche", "values": "0"})
    assert answer.status_code == 303, text_of(answer)
    answer = post(client, "/admin/shops", B2B)
    assert answer.status_code == 303 and answer.headers["Location"] == "/admin/shops", text_of(answer)


def shop_id(app, code: str) -> int:
    with app.app_context():
        return get_shop(db.session, code).id


# --- the Boutiques page ----------------------------------------------------------------------------------------


def test_one_shop_the_page_says_to_change_the_default_rule_first(app, client, keys):
    login(client, keys["admin"])
    page = client.get("/admin/shops")
    assert page.status_code == 200
    assert '<tr data-shop="default"' in page.text and "Toutes les commandes" in text_of(page)
    assert "La boutique par défaut prend « toutes les commandes »" in text_of(page)
    assert "relevées par le module (pull)" in text_of(page)
    assert 'id="shop-choice"' not in page.text  # one shop: no selector, on any page
    assert 'id="shop-choice"' not in client.get("/admin/").text and 'id="shop-choice"' not in client.get("/admin/settings").text

    answer = post(client, "/admin/shops", B2B)
    assert answer.status_code == 422
    assert "changez d'abord sa règle, puis ajoutez cette boutique" in _error_of(answer.text, "kind")
    assert 'aria-invalid="true"' in answer.text and 'id="error-summary"' in answer.text
    assert form_of(answer.text).fields["code"] == "b2b"  # what was typed stays
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Shop)) == 1


def _error_of(html: str, name: str) -> str:
    found = re.search(rf'<p class="error" id="shop-{name}-error">([^<]*)</p>', html)
    return unescape(found.group(1)) if found else ""


def test_shops_are_added_and_changed_and_listed_with_their_rule_in_words(app, client, keys, monkeypatch):
    monkeypatch.setenv("PRESTASHOP_API_KEY_B2B", "B2BKEY" * 5)  # with its address, b2b pushes
    login(client, keys["admin"])
    two_shops(client)
    page = client.get("/admin/shops")
    assert "Boutique « b2b » ajoutée." in text_of(page)
    rows = dict(re.findall(r'<tr data-shop="(\w+)"[^>]*>(.*?)</tr>', page.text, re.S))
    assert list(rows) == ["default", "b2b"]
    assert "Souche 0" in unescape(rows["default"]) and "Souche 1" in unescape(rows["b2b"])
    assert "https://pro.example.fr" in rows["b2b"] and "envoyées à la boutique (push)" in unescape(rows["b2b"])
    assert "relevées par le module (pull)" in unescape(rows["default"])
    assert "changez d'abord sa règle" not in text_of(page)

    # Changing b2b: a prefix rule is refused (every shop tells documents apart the same way), then a name and id_shop.
    form = form_of(client.get("/admin/shops/b2b").text).fields
    assert form["kind"] == "souche" and form["name"] == "Boutique pro" and "code" not in form
    answer = post(client, "/admin/shops/b2b", {**form, "kind": "prefix", "values": "B2B-"})
    assert answer.status_code == 422 and "même sorte de règle que la boutique « default »" in _error_of(answer.text, "kind")
    answer = post(client, "/admin/shops/b2b", {**form, "name": "Pro", "values": "1\n2", "id_shop": "3"})
    assert answer.status_code == 303
    with app.app_context():
        row = get_shop(db.session, "b2b")
        assert (row.name, row.rule, row.id_shop, row.prestashop_url) == (
            "Pro",
            {"kind": "souche", "field": None, "values": [1, 2]},
            3,
            "https://pro.example.fr",
        )
    assert "Souche 1, 2" in text_of(client.get("/admin/shops"))
    assert client.get("/admin/shops/nosuch").status_code == 404


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"code": "B2B"}, "code", "une lettre minuscule, puis des lettres minuscules"),
        ({"code": "default"}, "code", "« default » est déjà le code d'une boutique"),
        ({"values": "0"}, "values", "0 appartient déjà à la boutique « default »"),
        ({"values": "abc"}, "values", "indiquez une souche (DO_Souche)"),
        ({"values": ""}, "values", "indiquez au moins une valeur"),
        ({"prestashop_url": "ftp://pro.example.fr"}, "prestashop_url", "indiquez l'adresse http(s):// de la boutique"),
        ({"id_shop": "x"}, "id_shop", "indiquez l'id_shop PrestaShop"),
        ({"name": ""}, "name", "de 1 à 100 caractères"),
    ],
)
def test_a_refused_shop_is_said_in_french_next_to_its_field(app, client, keys, change, field, words):
    login(client, keys["admin"])
    assert post(client, "/admin/shops/default", {"name": "Boutique principale", "kind": "souche", "values": "0"}).status_code == 303
    answer = post(client, "/admin/shops", {**B2B, **change})
    assert answer.status_code == 422
    assert words in _error_of(answer.text, field), answer.text
    assert f'id="shop-{field}"' in answer.text and f'href="#shop-{field}"' in answer.text  # the summary leads to the field
    kept = form_of(answer.text).fields
    assert all(kept.get(name, "") == value for name, value in change.items() if name != "values")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Shop)) == 1  # nothing committed


def test_a_field_rule_names_a_gescom_column_as_gescom_spells_it(app, client, keys, warehouse):
    login(client, keys["admin"])
    answer = post(client, "/admin/shops/default", {"name": "Boutique principale", "kind": "field", "field": "n° dossier", "values": "WEB"})
    assert answer.status_code == 303, text_of(answer)
    refused = post(client, "/admin/shops", {**B2B, "kind": "field", "field": "N° Dossierr", "values": "PRO"})
    assert refused.status_code == 422 and "N° Dossier" in _error_of(refused.text, "field"), refused.text
    with app.app_context():
        assert db.session.get(Shop, 1).rule["field"] == "N° Dossier"  # every run reads the column by this name
        assert db.session.scalar(select(func.count()).select_from(Shop)) == 1


def test_the_shops_page_in_english_says_the_stores_words(client, keys):
    login(client, keys["admin"])
    page = client.get("/admin/shops?lang=en")
    assert "Shops" in page.text and "Every order" in page.text
    post(client, "/admin/shops/default", {"name": "Main", "kind": "souche", "values": "0"})
    answer = post(client, "/admin/shops", {**B2B, "values": "0"})
    assert "0 is already claimed by shop 'default'" in _error_of(answer.text, "values")


# --- the selector and the settings of the selected shop ------------------------------------------------------------------


def test_the_selected_shops_settings_are_edited_and_the_shared_ones_shown_read_only(app, client, keys, followed):
    login(client, keys["admin"])
    two_shops(client)
    b2b = shop_id(app, "b2b")
    page = client.get("/admin/settings")
    assert 'id="shop-choice"' in page.text
    assert "Réglages de la boutique Boutique principale (default)." in text_of(page)

    page = client.get("/admin/settings?shop=b2b")
    assert "Réglages de la boutique Boutique pro (b2b)." in text_of(page)
    assert re.search(r'<option value="b2b" selected>', page.text)
    for name in SHARED:
        block = control(page.text, name)
        assert " disabled" in block and "Commun à toutes les boutiques" in block, name
    assert " disabled" not in control(page.text, "tracking.state_on_send")

    data = {name: value for name, value in form_of(page.text).fields.items() if name not in SHARED}  # disabled: not sent
    data.update({"options.send_piece_number": "on", "stage_states.invoiced": "5", "link_field": "DO_Ref"})  # a forged shared value is ignored
    answer = client.post("/admin/settings", data=data)
    assert answer.status_code == 303, text_of(answer)
    page = client.get("/admin/settings")  # the choice is kept in the session
    assert "Réglages de la boutique Boutique pro (b2b)." in text_of(page) and "Réglages enregistrés (version 1)." in text_of(page)
    with app.app_context():
        mine, version = current_settings(db.session, b2b)
        default, default_version = current_settings(db.session)
    assert version == 1 and mine["options"]["send_piece_number"] is True and mine["stage_states"]["invoiced"] == 5
    assert mine["link_field"] == "DO_NoWeb" and mine["tracking"]["header_field"] == "DO_Coord01"
    assert default_version == 0 and default["options"]["send_piece_number"] is False

    page = client.get("/admin/settings?shop=default")
    assert " disabled" not in control(page.text, "link_field") and "Commun à toutes les boutiques" not in text_of(page)
    assert form_of(page.text).fields.get("options.send_piece_number") is None
    assert 'option value="default" selected' in client.get("/admin/runs?shop=nosuch").text  # an unknown code changes nothing


def test_a_settings_form_saves_the_shop_it_was_loaded_for_even_after_switching_shops(app, client, keys, followed):
    """Two tabs: the default shop's form, then b2b chosen in another tab; the first form still saves the default shop."""
    login(client, keys["admin"])
    two_shops(client)
    page = client.get("/admin/settings?shop=default")
    action = unescape(re.search(r'<form method="post" action="([^"]+)" class="settings"', page.text).group(1))
    assert action == "/admin/settings?shop=default"
    data = {**form_of(page.text).fields, "stage_states.shipped": "5"}
    client.get("/admin/settings?shop=b2b")  # the other tab
    assert client.post(action, data=data).status_code == 303
    with app.app_context():
        assert current_settings(db.session)[0]["stage_states"]["shipped"] == 5
        other, version = current_settings(db.session, shop_id(app, "b2b"))
        assert other["stage_states"]["shipped"] == 4 and version == 0  # untouched


def test_another_shops_settings_refuse_an_unknown_state_next_to_its_field(app, client, keys, followed):
    login(client, keys["admin"])
    two_shops(client)
    data = {name: value for name, value in form_of(client.get("/admin/settings?shop=b2b").text).fields.items() if name not in SHARED}
    answer = client.post("/admin/settings", data={**data, "stage_states.shipped": "999"})
    assert answer.status_code == 422 and "le statut 999 n'existe pas dans la boutique" in control(answer.text, "stage_states.shipped")
    assert " disabled" in control(answer.text, "link_field") and form_of(answer.text).options["link_field"]  # still shown
    assert current_settings_version(app, "b2b") == 0


def current_settings_version(app, code: str) -> int:
    with app.app_context():
        return current_settings(db.session, get_shop(db.session, code).id)[1]


def test_another_shops_states_come_from_its_own_connection(app, client, keys, followed, monkeypatch):
    from tests.simulator import ShopSimulator

    sim = ShopSimulator(version="8.1.5", key="P" * 32).start()
    try:
        monkeypatch.setenv("PRESTASHOP_API_KEY_B2B", "P" * 32)
        from app import configure_shop

        configure_shop(app)  # reads the environment again
        login(client, keys["admin"])
        two_shops(client)
        post(client, "/admin/shops/b2b", {"name": "Boutique pro", "kind": "souche", "values": "1", "prestashop_url": sim.url})
        page = client.get("/admin/settings?shop=b2b")
        assert "Statuts lus dans votre boutique." in text_of(page)
        default = client.get("/admin/settings?shop=default")
        assert "Statuts lus dans votre boutique." not in text_of(default)  # no PRESTASHOP_URL: the native list
    finally:
        sim.stop()


# --- the dashboard and the orders per shop ---------------------------------------------------------------------------


def _b2b_order(app, b2b: int) -> None:
    """A followed shop order of b2b with one update, as runs store them (key `b2b:5811`)."""
    now = datetime(2026, 1, 1)
    with app.app_context():
        db.session.add(ShopOrder(order_key="b2b:5811", id_order=5811, shop_id=b2b, first_seen_at=now, checked_at=now, updated_at=now))
        row = add_update(db.session, "b2b:5811", 5811, ShopUpdate("shipped", 4, [], None, None, None, ["state"]), run_id=None, created_at=now)
        row.shop_id = b2b
        db.session.commit()


def test_the_dashboard_shows_each_shop_and_the_orders_their_shop(app, client, keys, followed, monkeypatch):
    monkeypatch.setenv("PRESTASHOP_API_KEY_B2B", "B2BKEY" * 5)  # with its address, b2b pushes
    login(client, keys["admin"])
    assert 'id="shops"' not in client.get("/admin/").text  # one shop: the dashboard as before
    two_shops(client)
    _b2b_order(app, shop_id(app, "b2b"))
    page = client.get("/admin/?shop=b2b")
    rows = dict(re.findall(r'<tr data-shop="(\w+)"[^>]*>(.*?)</tr>', page.text, re.S))
    assert list(rows) == ["default", "b2b"]
    assert re.search(r'class="num orders">2<', rows["default"]) and re.search(r'class="num orders">1<', rows["b2b"])
    assert re.search(r'class="num pending-acks">2<', rows["default"]) and re.search(r'class="num pending-acks">1<', rows["b2b"])
    assert "relevées par le module (pull)" in unescape(rows["default"]) and "envoyées à la boutique (push)" in unescape(rows["b2b"])
    assert "Boutique pro" in rows["b2b"] and "affichée" in unescape(rows["b2b"]) and "affichée" not in unescape(rows["default"])
    assert "3 commandes suivies" in text_of(page)  # the totals stay those of every shop

    recent = client.get("/admin/orders")
    assert re.search(r'b2b:5811</a>\s*<span class="shop-tag">Boutique pro \(b2b\)</span>', recent.text)
    assert re.search(r'4711</a>\s*<span class="shop-tag">Boutique principale \(default\)</span>', recent.text)
    order = client.get("/admin/orders", query_string={"q": "4711"})
    assert re.search(r"<dt>Boutique</dt><dd>Boutique principale \(default\)</dd>", order.text)


def test_the_figures_per_shop_take_the_same_queries_whatever_the_number_of_shops(app, client, keys, followed, monkeypatch):
    monkeypatch.setenv("PRESTASHOP_API_KEY_B2B", "B2BKEY" * 5)  # with its address, b2b pushes
    login(client, keys["admin"])
    two_shops(client)
    _b2b_order(app, shop_id(app, "b2b"))

    def queries() -> tuple[int, list]:
        statements = []
        with app.app_context():
            listener = lambda *args: statements.append(args[2])  # noqa: E731
            event.listen(db.engine, "before_cursor_execute", listener)
            try:
                figures = shop_figures(db.session, app.extensions["shops"])
            finally:
                event.remove(db.engine, "before_cursor_execute", listener)
        return len(statements), figures

    two, figures = queries()
    assert [(f.code, f.orders, f.orders_open, f.pending_acks, f.pushes) for f in figures] == [("default", 2, 2, 2, False), ("b2b", 1, 1, 1, True)]
    for code, souche in (("c", "2"), ("d", "3")):
        assert post(client, "/admin/shops", {"code": code, "name": code.upper(), "kind": "souche", "values": souche}).status_code == 303
    four, figures = queries()
    assert four == two == 3 and [f.orders for f in figures] == [2, 1, 0, 0]
