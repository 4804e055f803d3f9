"""Conflicts with the shop on the admin page, through the Flask test client, on the selected backend: the dashboard
lists the updates held because the shop holds their order in a conflict state (what Sage says, what the shop says,
why, since when), « Appliquer quand même » and « Ignorer » end one as the signed-in key, the order page shows the
conflict and its timeline, and the settings page sets the shop's `conflict_states`."""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import select

from models import OrderEvent, Update, db, utcnow
from sync.services.conflicts import hold, record_opened
from sync.store.settings import current_settings
from tests.integration.test_admin import csrf_of, form_of, login
from tests.integration.test_admin import shop as shop  # noqa: F401  (the fixture: a demo GesCom, one run done)

ADMIN = "test-admin"  # the admin key's name (tests/conftest.py)


def held(app, order_key: str, state_id: int = 6, reason: str = "PS_OS_CANCELED") -> int:
    """The order's latest update held in open conflict (as the push does when it finds the shop's order in
    `state_id`), with its timeline event; its id."""
    with app.app_context():
        item = db.session.scalars(select(Update).where(Update.order_key == order_key).order_by(Update.id.desc())).first()
        hold(item, state_id, reason, utcnow(), "push")
        db.session.flush()
        record_opened(db.session, order_key, [item], state_id, reason, "push")
        db.session.commit()
        update_id = item.id
        db.session.remove()
    return update_id


def stored(app, update_id: int) -> tuple[str, dict | None]:
    with app.app_context():
        item = db.session.get(Update, update_id)
        found = item.push_status, item.conflict
        db.session.remove()
    return found


def events(app, order_key: str, kind: str) -> list[dict]:
    with app.app_context():
        rows = db.session.scalars(select(OrderEvent).where(OrderEvent.order_key == order_key, OrderEvent.kind == kind).order_by(OrderEvent.id))
        found = [row.data for row in rows]
        db.session.remove()
    return found


def conflict_block(html: str, update_id: int) -> str:
    """The text of one conflict's item on a page."""
    start = html.index(f'id="conflict-{update_id}"')
    end = html.index("</li>", start)
    return re.sub(r"[ \t\n]+", " ", unescape(re.sub(r"<[^>]+>", " ", html[start:end])))


def flashed(client) -> str:
    return unescape(client.get("/admin/").text)


# --- the dashboard ------------------------------------------------------------------------------------------------


def test_the_dashboard_lists_held_updates_in_french_then_in_english(app, client, keys, shop):
    cancelled = held(app, "4711")
    chosen = held(app, "4712", state_id=3, reason="conflict_states")
    login(client, keys["admin"])
    page = client.get("/admin/")
    assert page.status_code == 200
    text = unescape(page.text)
    assert "Conflits avec la boutique" in text and 'id="conflicts"' in text
    assert "push-conflict" not in page.text  # no shop pushes: no push figures
    first = conflict_block(page.text, cancelled)
    assert "Commande 4711" in first and f"Mise à jour n°\u00a0{cancelled}" in first
    assert "Sage dit" in first and "Expédiée partiellement" in first and "6A12345678901" in first
    assert "La boutique dit Annulé (6)" in first and "Pourquoi Annulée dans la boutique" in first and "depuis le" in first
    assert 'href="/admin/orders?q=4711#order"' in page.text
    second = conflict_block(page.text, chosen)
    assert "Commande 4712" in second and "En cours de préparation (3)" in second and "État choisi dans les réglages" in second
    assert text.count(">Appliquer quand même</button>") == 2 and text.count(">Ignorer</button>") == 2
    english = client.get("/admin/?lang=en")
    block = conflict_block(english.text, cancelled)
    assert "Conflicts with the shop" in unescape(english.text) and "Cancelled in the shop" in block and "The shop says Canceled (6)" in block
    assert "Apply anyway" in unescape(english.text) and "Dismiss" in unescape(english.text)


def test_no_conflict_no_block(app, client, keys, shop):
    login(client, keys["admin"])
    page = client.get("/admin/")
    assert page.status_code == 200 and "Conflits avec la boutique" not in unescape(page.text)


def test_apply_anyway_from_the_dashboard_by_the_admin_key(app, client, keys, shop):
    update_id = held(app, "4711")
    login(client, keys["admin"])
    client.get("/admin/")
    answer = client.post("/admin/conflicts/apply", data={"csrf_token": csrf_of(client), "update_id": str(update_id)})
    assert answer.status_code == 303 and answer.headers["Location"] == "/admin/#conflicts"
    status, record = stored(app, update_id)
    assert status == "pending" and record["status"] == "applied_anyway"
    assert record["resolved_by"] == ADMIN and record["via"] == "admin"
    # No shop connected: the module pulls, so the update is issued again at the head of the feed.
    (event,) = events(app, "4711", "conflict_applied_anyway")
    assert event["update_id"] == update_id and event["by"] == ADMIN and event["via"] == "admin" and event["reason"] == "PS_OS_CANCELED"
    assert event["reissued_as"] == record["reissued_as"] > update_id
    page = flashed(client)
    assert f"Mise à jour n°\u00a0{update_id} de la commande 4711 appliquée quand même" in page
    assert 'id="conflicts"' not in page  # nothing left to decide
    order = unescape(client.get("/admin/orders", query_string={"q": "4711"}).text)
    assert f"Appliquée quand même par {ADMIN}" in order and "Conflit : mise à jour retenue" in order and "cette page" in order
    assert 'id="order-conflicts"' not in order


def test_apply_anyway_in_push_mode_puts_the_update_itself_back(app, client, keys, shop):
    from app import configure_shop
    from tests.simulator import ShopSimulator

    sim = ShopSimulator(version="8.1.5", key="C" * 32).start()
    try:
        app.config.update(PRESTASHOP_URL=sim.url, PRESTASHOP_API_KEY="C" * 32)
        configure_shop(app)
        update_id = held(app, "4711")
        login(client, keys["admin"])
        page = client.get("/admin/")
        assert re.search(r'class="bad push-conflict"><dt>En conflit</dt><dd>1</dd>', page.text), "the push figures say it"
        assert "Annulé (6)" in conflict_block(page.text, update_id)  # the shop's own states name it
        order = unescape(client.get("/admin/orders", query_string={"q": "4711"}).text)
        assert re.search(r"<dt>Envoi à la boutique</dt><dd class=\"bad\">en conflit\s", order), "the push status is said"
        answer = client.post("/admin/conflicts/apply", data={"csrf_token": csrf_of(client), "update_id": str(update_id)})
        assert answer.status_code == 303
    finally:
        sim.stop()
    status, record = stored(app, update_id)
    assert status == "pending" and record["status"] == "applied_anyway" and "reissued_as" not in record
    with app.app_context():
        assert db.session.scalar(select(Update.id).where(Update.order_key == "4711", Update.id > update_id)) is None  # not issued again
        db.session.remove()


# --- the order page -------------------------------------------------------------------------------------------------


def test_the_order_page_shows_the_conflict_and_dismiss_sends_back_to_it(app, client, keys, shop):
    update_id = held(app, "4711")
    login(client, keys["admin"])
    page = client.get("/admin/orders", query_string={"q": "4711"})
    text = unescape(page.text)
    assert 'id="order-conflicts"' in text and text.index('id="order-conflicts"') < text.index("Documents dans Sage")
    block = conflict_block(page.text, update_id)
    assert "Annulée dans la boutique" in block and "Annulé (6)" in block
    assert "Conflit : mise à jour retenue" in text and "en conflit : retenue" in text
    answer = client.post("/admin/conflicts/dismiss", data={"csrf_token": csrf_of(client), "update_id": str(update_id), "order_key": "4711"})
    assert answer.status_code == 303 and answer.headers["Location"] == "/admin/orders?q=4711#order"
    status, record = stored(app, update_id)
    assert status == "dismissed" and record["status"] == "dismissed" and record["resolved_by"] == ADMIN and record["via"] == "admin"
    (event,) = events(app, "4711", "conflict_dismissed")
    assert event["update_id"] == update_id and event["by"] == ADMIN and event["via"] == "admin"
    text = unescape(client.get(answer.headers["Location"]).text)
    assert f"Mise à jour n°\u00a0{update_id} de la commande 4711 ignorée" in text
    assert f"Ignorée par {ADMIN}" in text and 'id="order-conflicts"' not in text


def test_a_second_click_on_an_ended_conflict_says_so(app, client, keys, shop):
    update_id = held(app, "4711")
    login(client, keys["admin"])
    token = csrf_of(client)
    assert client.post("/admin/conflicts/dismiss", data={"csrf_token": token, "update_id": str(update_id)}).status_code == 303
    client.get("/admin/")  # the first click's message shown
    for path in ("/admin/conflicts/apply", "/admin/conflicts/dismiss"):  # a second tab, a double click
        answer = client.post(path, data={"csrf_token": token, "update_id": str(update_id)})
        assert answer.status_code == 303
        assert f"Ce conflit est déjà terminé : la mise à jour n°\u00a0{update_id} a déjà été ignorée." in flashed(client)
    assert stored(app, update_id)[0] == "dismissed" and len(events(app, "4711", "conflict_dismissed")) == 1
    # An update never in conflict, one that does not exist, and no id at all: said, never a 500.
    with app.app_context():
        other = db.session.scalar(select(Update.id).where(Update.order_key == "4712"))
        db.session.remove()
    answer = client.post("/admin/conflicts/apply", data={"csrf_token": token, "update_id": str(other)})
    assert answer.status_code == 303 and f"La mise à jour n°\u00a0{other} n'est pas en conflit" in flashed(client)
    assert stored(app, other)[0] == "pending"
    answer = client.post("/admin/conflicts/apply", data={"csrf_token": token, "update_id": "999999"})
    assert answer.status_code == 303 and "Aucune mise à jour n°\u00a0999999." in flashed(client)
    answer = client.post("/admin/conflicts/dismiss", data={"csrf_token": token, "update_id": "abc"})
    assert answer.status_code == 303 and "Aucune mise à jour n°\u00a0abc." in flashed(client)
    for odd in ("²", "9999999999"):  # a digit that int() refuses; beyond the id column
        answer = client.post("/admin/conflicts/dismiss", data={"csrf_token": token, "update_id": odd})
        assert answer.status_code == 303 and f"Aucune mise à jour n°\u00a0{odd}." in flashed(client)


@pytest.mark.parametrize("path", ["/admin/conflicts/apply", "/admin/conflicts/dismiss"])
def test_a_decision_without_the_csrf_token_is_refused(app, client, keys, shop, path):
    update_id = held(app, "4711")
    login(client, keys["admin"])
    for data in ({}, {"csrf_token": "forged"}):
        answer = client.post(path, data={**data, "update_id": str(update_id)})
        assert answer.status_code == 400 and "Ce formulaire a expiré" in unescape(answer.text)
    assert stored(app, update_id)[0] == "conflict"
    client.post("/admin/logout", data={"csrf_token": csrf_of(client)})
    answer = client.post(path, data={"csrf_token": csrf_of(client), "update_id": str(update_id)})
    assert answer.status_code == 303 and answer.headers["Location"].startswith("/admin/login")  # signed out: to the login page
    assert stored(app, update_id)[0] == "conflict"


# --- réglages -------------------------------------------------------------------------------------------------------


def boxes(html: str) -> dict[str, str]:
    """The conflict_states checkboxes: value -> "checked", "always" (checked and disabled) or ""."""
    found = {}
    for tag in re.findall(r'<input type="checkbox"[^>]*name="conflict_states"[^>]*>', html):
        value = re.search(r'value="([^"]*)"', tag).group(1)
        found[value] = "always" if " disabled" in tag else "checked" if " checked" in tag else ""
    return found


def settings_form(client, path: str = "/admin/settings") -> dict:
    """What a browser sends back from the settings page, no conflict state ticked (the disabled boxes are never sent)."""
    page = client.get(path).text
    data = {name: value for name, value in form_of(page).fields.items() if name != "conflict_states"}
    return data


def test_settings_set_the_conflict_states_the_shop_s_own_always_count(app, client, keys, shop):
    login(client, keys["admin"])
    page = client.get("/admin/settings")
    text = unescape(page.text)
    assert "Conflits avec la boutique" in text and "États de la boutique qui retiennent les mises à jour" in text
    found = boxes(page.text)
    assert list(found) == [str(n) for n in range(1, 14)]
    assert {value for value, how in found.items() if how == "always"} == {"6", "7", "8"}  # cancelled, refunded, payment error
    assert all(how == "" for value, how in found.items() if value not in ("6", "7", "8"))
    assert text.count(">toujours</span>") == 3 and '<label for="f-conflict-states-6">6 — Annulé</label>' in text

    answer = client.post("/admin/settings", data={**settings_form(client), "conflict_states": ["10", "3"]})
    assert answer.status_code == 303
    with app.app_context():
        document, version = current_settings(db.session)
        db.session.remove()
    assert document["conflict_states"] == [3, 10] and version == 1
    found = boxes(client.get("/admin/settings").text)
    assert found["3"] == found["10"] == "checked" and found["4"] == "" and found["6"] == "always"

    # Unticking them all is saved too.
    assert client.post("/admin/settings", data=settings_form(client)).status_code == 303
    with app.app_context():
        assert current_settings(db.session)[0]["conflict_states"] == []
        db.session.remove()


def test_an_unknown_conflict_state_is_refused_at_its_field(app, client, keys, shop):
    login(client, keys["admin"])
    for sent, words in ((["3", "99"], "les statuts 99 n'existent pas dans la boutique"), (["abc"], "cochez des statuts de la liste")):
        answer = client.post("/admin/settings", data={**settings_form(client), "conflict_states": sent})
        assert answer.status_code == 422, sent
        text = unescape(answer.text)
        start = text.index('id="f-conflict-states-control"')
        block = text[start : text.index("</fieldset>", start)]
        assert words in block and 'class="error"' in block and 'aria-invalid="true"' in block, block
        assert '<a href="#f-conflict-states">États de la boutique qui retiennent les mises à jour</a>' in text  # the summary names it
        assert boxes(answer.text)[sent[-1]] == "checked"  # the input kept, even unknown, to be unticked
    with app.app_context():
        document, version = current_settings(db.session)
        db.session.remove()
    assert version == 0 and document["conflict_states"] == []


# --- several shops ----------------------------------------------------------------------------------------------------


def test_each_shop_shows_and_sets_its_own_conflicts(app, client, keys, shop):
    from tests.integration.test_admin_shops import _b2b_order, shop_id, two_shops

    login(client, keys["admin"])
    two_shops(client)  # b2b has an address but no key here: not connected, PrestaShop's native states name its own
    _b2b_order(app, shop_id(app, "b2b"))
    b2b_update = held(app, "b2b:5811", state_id=7, reason="PS_OS_REFUND")
    default_update = held(app, "4711")

    page = client.get("/admin/?shop=b2b")
    rows = dict(re.findall(r'<tr data-shop="(\w+)"[^>]*>(.*?)</tr>', page.text, re.S))
    assert "1 en conflit" in rows["b2b"] and "1 en conflit" in rows["default"]
    assert f'id="conflict-{b2b_update}"' in page.text and f'id="conflict-{default_update}"' not in page.text
    block = conflict_block(page.text, b2b_update)
    assert "Commande b2b:5811" in block and "Remboursé (7)" in block and "Pourquoi Remboursée" in block
    assert "Boutique pro (b2b)" in unescape(page.text[page.text.index('id="conflicts-title"') :][:300])
    page = client.get("/admin/?shop=default")
    assert f'id="conflict-{default_update}"' in page.text and f'id="conflict-{b2b_update}"' not in page.text

    answer = client.post("/admin/settings?shop=b2b", data={**settings_form(client, "/admin/settings?shop=b2b"), "conflict_states": ["9"]})
    assert answer.status_code == 303
    with app.app_context():
        assert current_settings(db.session, shop_id(app, "b2b"))[0]["conflict_states"] == [9]
        assert current_settings(db.session, shop_id(app, "default"))[0]["conflict_states"] == []
        db.session.remove()
