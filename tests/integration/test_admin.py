"""The admin web page through the Flask test client, on the selected backend: the session guard on every admin
route, login and logout, CSRF on every form, the settings form (same validation as the API, errors next to
their field), runs, the preview, the order lookup and the dashboard. The browser tests are in tests/e2e."""

from __future__ import annotations

import os
import re
import stat
import time
from datetime import timedelta
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import func, select

from api.admin import instance_secret_key
from api.admin.i18n import MESSAGES, settings_error
from models import ShopOrder, SyncRun, Update, db
from sync.gescom.demo.schema import create_gescom
from sync.gescom.demo.warehouse import Warehouse
from sync.services.run_config import RunConfig
from sync.services.runs import LOCK_NAME, run_sync
from sync.services.unit_of_work import UnitOfWork
from sync.store.locks import acquire_lock, release_lock
from sync.store.settings import current_settings, save_settings
from sync.store.shops import list_shops
from tests.conftest import bearer

LINES = [("TSHIRT-M", "T-shirt M", 3), ("MUG", "Mug", 1)]
TEMPLATES = Path(__file__).resolve().parents[2] / "api" / "admin" / "templates" / "admin"


@pytest.fixture
def shop(app, clock):
    """A demo-shaped GesCom with two web orders (4711 partly delivered, with a parcel number), followed by one run."""
    engine = app.extensions["gescom"].engine
    create_gescom(engine)
    warehouse = Warehouse(engine, clock)
    clock.tick(-10)
    first = warehouse.create_order("4711", LINES, reference="KHWTQZXNB")
    warehouse.create_order("4712", [("MUG", "Mug", 2)], reference="OTHERREFX")
    clock.tick(10)
    warehouse.transform((1, first), 3, take={"MUG": 1}, header={"DO_Coord01": "6A12345678901"})
    with app.app_context():
        run_sync(UnitOfWork(db.session), app.extensions["gescom"], config=RunConfig(recheck_age=timedelta(0)))
        db.session.remove()
    return warehouse


def csrf_of(client) -> str:
    """The token a form of the admin carries (the login page's, same for the session), as a browser sends it back."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/login").text)
    return found.group(1) if found else ""


def session_token(client) -> str | None:
    """The raw token kept in the session, that the signed one in the forms stands for."""
    with client.session_transaction() as session:
        return session.get("csrf_token")


def login(client, key: str, **extra):
    return client.post("/admin/login", data={"key": key, "csrf_token": csrf_of(client), **extra})


class _Form(HTMLParser):
    """The fields of the settings form as a browser would send them (selected options, ticked boxes)."""

    def __init__(self):
        super().__init__()
        self.fields: dict[str, str] = {}
        self.options: dict[str, list[tuple[str, str]]] = {}
        self._select: str | None = None
        self._option: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("name"):
            kind = attrs.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.fields[attrs["name"]] = attrs.get("value", "on")
            else:
                self.fields[attrs["name"]] = attrs.get("value", "")
        elif tag == "select":
            self._select = attrs["name"]
            self.options[self._select] = []
        elif tag == "option" and self._select:
            self._option = attrs.get("value", "")
            if "selected" in attrs or self._select not in self.fields:
                self.fields[self._select] = self._option

    def handle_data(self, data):
        if self._option is not None and self._select:
            self.options[self._select].append((self._option, data.strip()))
            self._option = None

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


def form_of(html: str) -> _Form:
    form = _Form()
    form.feed(html)
    return form


def control(html: str, name: str) -> str:
    """The HTML of one control's block (label, input, help, error)."""
    cid = "f-" + name.replace(".", "-").replace("_", "-")
    start = html.index(f'id="{cid}-control"')
    end = html.find('-control"', start + len(cid) + 12)
    return unescape(html[start : end if end != -1 else len(html)])


# --- the guard --------------------------------------------------------------------------------------------------


def _admin_routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("admin."):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield (
                    rule,
                    method,
                    (
                        rule.rule.replace("<int(max=2147483647):run_id>", "1")
                        .replace("<path:filename>", "admin.css")
                        .replace("<string(maxlength=20):code>", "default")
                    ),
                )


def test_every_admin_route_but_login_and_static_needs_the_session(app, client, keys, shop):
    from api.admin import PUBLIC_ENDPOINTS

    seen = set()
    for rule, method, path in _admin_routes(app):
        seen.add(rule.endpoint)
        for headers in ({}, bearer(keys["admin"])):  # an API key does not open the admin pages
            answer = client.open(path, method=method, data={}, headers=headers)
            if rule.endpoint in PUBLIC_ENDPOINTS:
                assert answer.status_code in (200, 400), (method, path, answer.status_code)
                continue
            assert answer.status_code == 303, (method, path, answer.status_code)
            assert answer.headers["Location"].startswith("/admin/login"), (method, path)
    assert {
        "admin.dashboard",
        "admin.settings",
        "admin.runs",
        "admin.start_run_now",
        "admin.preview",
        "admin.run",
        "admin.orders",
        "admin.shops",
        "admin.shop",
        "admin.logout",
        "admin.login",
        "admin.static",
    } <= seen
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SyncRun)) == 1  # no run was started by those POSTs


def test_login_with_an_admin_key_then_logout(app, client, keys):
    answer = client.get("/admin/settings")
    assert answer.status_code == 303 and answer.headers["Location"] == "/admin/login?next=/admin/settings"

    refused = login(client, "sgps_not-a-real-key")
    assert refused.status_code == 401 and "Cette clé est inconnue ou révoquée." in unescape(refused.text)
    refused = login(client, keys["write"])
    assert refused.status_code == 401 and "portée « admin »" in unescape(refused.text)

    before, before_raw = csrf_of(client), session_token(client)
    answer = login(client, keys["admin"], next="/admin/settings")
    assert answer.status_code == 303 and answer.headers["Location"] == "/admin/settings"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert session_token(client) is None  # the token of before the login is gone with the old session
    assert csrf_of(client) != before and session_token(client) not in (None, before_raw)  # a new one with the new session
    assert client.post("/admin/logout", data={"csrf_token": before}).status_code == 400  # the old one no longer passes
    page = client.get("/admin/")
    assert page.status_code == 200 and "Tableau de bord" in unescape(page.text) and "test-admin" in unescape(page.text)
    assert page.headers["Cache-Control"] == "no-store"

    answer = client.post("/admin/logout", data={"csrf_token": csrf_of(client)})
    assert answer.status_code == 303 and answer.headers["Location"] == "/admin/login?logged_out=1"
    assert client.get("/admin/").status_code == 303


@pytest.mark.parametrize("target", ["https://elsewhere.example/", "//elsewhere.example/admin", "/api/v1/updates", "/admin\\@x"])
def test_login_never_sends_elsewhere(client, keys, target):
    answer = login(client, keys["admin"], next=target)
    assert answer.status_code == 303 and answer.headers["Location"] == "/admin/"


def test_a_revoked_key_ends_its_sessions(app, client, keys):
    from sync.store.keys import revoke_key

    login(client, keys["admin"])
    assert client.get("/admin/").status_code == 200
    with app.app_context():
        revoke_key(db.session, "test-admin")
        db.session.commit()
    answer = client.get("/admin/")
    assert answer.status_code == 303 and "expired=1" in answer.headers["Location"]
    assert "Votre session a pris fin" in client.get(answer.headers["Location"]).text


def test_a_login_lasts_twelve_hours_at_most(app, client, keys):
    from sqlalchemy import update

    from models import AdminSession, utcnow

    login(client, keys["admin"])
    with app.app_context():  # signed in 13 hours ago, active all along (the session's row is what counts)
        now = utcnow()
        db.session.execute(update(AdminSession).values(created_at=now - timedelta(hours=13), expires_at=now - timedelta(hours=1), last_seen_at=now))
        db.session.commit()
    assert client.get("/admin/").status_code == 303


def test_every_post_needs_the_csrf_token(app, client, keys, shop):
    # Even the login form: a page elsewhere cannot sign a browser in with its own key.
    client.get("/admin/login")
    assert client.post("/admin/login", data={"key": keys["admin"]}).status_code == 400
    login(client, keys["admin"])
    for path in ("/admin/settings", "/admin/runs", "/admin/runs/preview", "/admin/shops", "/admin/shops/default", "/admin/logout"):
        for data in ({}, {"csrf_token": "forged"}):
            answer = client.post(path, data={**data, "tracking.send": "on", "code": "b2b", "kind": "souche", "values": "1"})
            assert answer.status_code == 400, (path, data)
            assert "Ce formulaire a expiré" in unescape(answer.text)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SyncRun)) == 1
        assert current_settings(db.session)[1] == 0
        assert [row.code for row in list_shops(db.session)] == ["default"] and list_shops(db.session)[0].rule == {"kind": "all"}
    assert client.get("/admin/").status_code == 200  # still signed in: the forged logout did nothing


def test_secret_key_is_made_once_with_mode_0600(tmp_path, monkeypatch, store_db, gescom_db):
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    first = instance_secret_key(str(keys_dir))
    assert instance_secret_key(str(keys_dir)) == first and len(first) == 64
    assert stat.S_IMODE(os.stat(keys_dir / "secret_key").st_mode) == 0o600
    assert [path.name for path in keys_dir.iterdir()] == ["secret_key"]  # no scratch file left behind

    from app import create_app

    instance = tmp_path / "instance"
    monkeypatch.setenv("INSTANCE_PATH", str(instance))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    made = create_app({"SQLALCHEMY_DATABASE_URI": store_db.url, "GESCOM_DATABASE_URL": gescom_db.url})
    assert made.config["SECRET_KEY"] == (instance / "secret_key").read_text().strip()
    monkeypatch.setenv("SECRET_KEY", "from-the-environment-" + "x" * 20)
    assert (
        create_app({"SQLALCHEMY_DATABASE_URI": store_db.url, "GESCOM_DATABASE_URL": gescom_db.url})
        .config["SECRET_KEY"]
        .startswith("from-the-environment-")
    )


# --- language ---------------------------------------------------------------------------------------------------


def test_french_first_with_an_english_switch_kept_in_the_session(client, keys):
    page = client.get("/admin/login")
    assert '<html lang="fr">' in unescape(page.text) and "Connexion" in unescape(page.text)
    login(client, keys["admin"])
    page = client.get("/admin/?lang=en")
    assert '<html lang="en">' in unescape(page.text) and "Dashboard" in unescape(page.text) and "Tableau de bord" not in unescape(page.text)
    assert "Settings" in client.get("/admin/settings").text  # kept
    assert "Réglages" in client.get("/admin/settings?lang=fr").text


def test_every_word_the_templates_use_exists_in_both_languages():
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r'_\(\s*"([a-z_.0-9]+)"', template.read_text()))
    assert len(used) > 50
    missing = sorted(key for key in used if key not in MESSAGES and not key.endswith("."))
    missing += sorted(prefix for prefix in used if prefix.endswith(".") and not any(key.startswith(prefix) for key in MESSAGES))
    assert not missing, missing
    assert all(french and english for french, english in MESSAGES.values())
    for stage in ("ordered", "in_preparation", "partially_shipped", "shipped", "invoiced", "returned", "cancelled"):
        assert f"stage.{stage}" in MESSAGES and f"stage_help.{stage}" in MESSAGES


def test_validation_messages_are_said_in_french():
    assert settings_error("must be true or false", "fr") == "doit être coché ou décoché"
    assert settings_error("unknown order state 99; known: 1, 2", "fr") == "le statut 99 n'existe pas dans la boutique ; statuts connus : 1, 2"
    assert (
        settings_error("'DO_Type' is not a text column in F_DOCENTETE. Text columns that exist: A, B", "fr")
        == "« DO_Type » n'est pas un champ texte de F_DOCENTETE"
    )
    assert settings_error("something new", "fr") == "something new"
    assert settings_error("must be true or false", "en") == "must be true or false"


# --- réglages ----------------------------------------------------------------------------------------------------


def test_settings_page_mirrors_the_seed_screen_with_live_choices(client, keys, shop):
    login(client, keys["admin"])
    page = client.get("/admin/settings")
    assert page.status_code == 200
    for words in (
        "Mettre à jour les Statuts des Commandes sur la boutique",
        "Numéro de suivi",
        "Envoyer le numéro de suivi du transporteur dans la boutique",
        "Champ Numéro de transporteur (document)",
        "Champ Numéro de transporteur (ligne)",
        "Changer le statut en",
        "Mettre à jour le numéro de suivi dans la commande à partir de la boutique",
        "Options",
        "Envoyer le numéro de la pièce dans la boutique",
        "Envoyer la date de livraison dans la boutique",
        "Envoyer le détail des livraisons dans la boutique",
        "Statuts",
        "Prévenir le client par e-mail",
        "Expédiée partiellement",
        "Bon de livraison (BL)",
        "Préparation de livraison (PL)",
    ):
        assert words in unescape(page.text), words
    form = form_of(page.text)
    header = [value for value, _ in form.options["tracking.header_field"]]
    assert header[:5] == ["", "DO_Coord01", "DO_Coord02", "DO_Coord03", "DO_Coord04"] and "Ref Chronopost" in header
    assert form.options["tracking.header_field"][0][1] == "aucun"
    assert "cbMarq" not in header and "DO_Type" not in header
    line = [value for value, _ in form.options["tracking.line_field"]]
    assert line[:2] == ["", "DL_NoColis"]
    link = [value for value, _ in form.options["link_field"]]
    assert link[:3] == ["DO_NoWeb", "DO_Ref", "DO_RefExterne"] and "Ref Chronopost" in link and "" not in link
    states = form.options["tracking.state_on_send"]
    assert states[0] == ("", "Ne pas modifier le statut") and [value for value, _ in states[1:]] == [str(n) for n in range(1, 14)]
    assert ("4", "4 — Expédié") in form.options["stage_states.shipped"]
    assert form.fields["stage_states.shipped"] == "4" and form.fields["tracking.header_field"] == "DO_Coord01"
    assert form.fields["tracking.send"] == "on" and "tracking.import_from_shop" not in form.fields
    assert form.fields["shipped_document_type"] == "3" and form.fields["version"] == "0"
    # Each control is labelled and explained.
    for name in ("tracking.send", "tracking.header_field", "stage_states.ordered", "link_field", "shipped_document_type"):
        cid = "f-" + name.replace(".", "-").replace("_", "-")
        assert (
            f'for="{cid}"' in unescape(page.text)
            and f'id="{cid}-help"' in unescape(page.text)
            and f'aria-describedby="{cid}-help' in unescape(page.text)
        )


def test_saving_the_form_keeps_the_choices(app, client, keys, shop):
    login(client, keys["admin"])
    form = form_of(client.get("/admin/settings").text)
    data = dict(form.fields)
    data.update({"tracking.header_field": "DO_Coord02", "options.send_piece_number": "on", "stage_states.invoiced": "5"})
    answer = client.post("/admin/settings", data=data)
    assert answer.status_code == 303 and answer.headers["Location"] == "/admin/settings"
    page = client.get("/admin/settings")
    assert "Réglages enregistrés (version 1)." in unescape(page.text)
    form = form_of(page.text)
    assert form.fields["tracking.header_field"] == "DO_Coord02" and form.fields["options.send_piece_number"] == "on"
    assert form.fields["stage_states.invoiced"] == "5" and form.fields["version"] == "1"
    with app.app_context():
        document, version = current_settings(db.session)
    assert version == 1 and document["tracking"]["header_field"] == "DO_Coord02" and document["options"]["send_piece_number"] is True
    assert document["stage_states"]["invoiced"] == 5 and document["tracking"]["send"] is True and document["link_field"] == "DO_NoWeb"

    # Unticking is saved too (an unticked box is not sent at all).
    data = dict(form.fields)
    del data["tracking.send"]
    assert client.post("/admin/settings", data=data).status_code == 303
    with app.app_context():
        assert current_settings(db.session)[0]["tracking"]["send"] is False


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"tracking.header_field": "", "tracking.line_field": ""}, "tracking.header_field", "choisissez un champ d'entête ou un champ de ligne"),
        ({"stage_states.shipped": "999"}, "stage_states.shipped", "le statut 999 n'existe pas dans la boutique"),
        ({"tracking.state_on_send": "abc"}, "tracking.state_on_send", "choisissez un statut de la liste"),
        ({"link_field": "DO_Type"}, "link_field", "« DO_Type » n'est pas un champ texte de F_DOCENTETE"),
        ({"tracking.line_field": "cbMarq"}, "tracking.line_field", "« cbMarq » n'est pas un champ texte de F_DOCLIGNE"),
        ({"shipped_document_type": "6"}, "shipped_document_type", "choisissez le bon de livraison ou la préparation de livraison"),
    ],
)
def test_an_error_is_shown_next_to_its_field_and_the_input_is_kept(app, client, keys, shop, change, field, words):
    login(client, keys["admin"])
    data = dict(form_of(client.get("/admin/settings").text).fields)
    data.update({"options.send_delivery_date": "on", **change})
    answer = client.post("/admin/settings", data=data)
    assert answer.status_code == 422
    block = control(answer.text, field)
    assert 'class="error"' in block and words in block, block
    assert 'aria-invalid="true"' in block
    assert "Les réglages n'ont pas été enregistrés" in unescape(answer.text) and 'id="error-summary"' in unescape(answer.text)
    kept = form_of(answer.text).fields
    assert kept["options.send_delivery_date"] == "on"  # the user's input stays
    for name, value in change.items():
        if name != "shipped_document_type":  # radios: a forged value matches neither button
            assert kept.get(name, "") == value, name
    assert kept["version"] == "0"
    with app.app_context():
        assert current_settings(db.session)[1] == 0  # nothing saved


def test_errors_are_said_in_english_on_the_english_page(client, keys, shop):
    login(client, keys["admin"])
    data = dict(form_of(client.get("/admin/settings?lang=en").text).fields)
    data.update({"tracking.header_field": "", "tracking.line_field": ""})
    answer = client.post("/admin/settings", data=data)
    assert "sending tracking numbers needs a header field or a line field" in control(answer.text, "tracking.header_field")


def test_a_save_over_someone_elses_is_refused_clearly(app, client, keys, shop):
    login(client, keys["admin"])
    data = dict(form_of(client.get("/admin/settings").text).fields)
    with app.app_context():
        save_settings(db.session, {"notify_customer": False}, app.extensions["gescom"].schema())  # someone else, meanwhile
        db.session.commit()
    data["options.send_piece_number"] = "on"
    answer = client.post("/admin/settings", data=data)
    assert answer.status_code == 409 and "Quelqu'un d'autre a modifié les réglages" in unescape(answer.text)
    kept = form_of(answer.text).fields
    assert kept["options.send_piece_number"] == "on" and kept["version"] == "1"
    with app.app_context():
        document, version = current_settings(db.session)
    assert version == 1 and document["options"]["send_piece_number"] is False
    answer = client.post("/admin/settings", data={**data, "version": ""})  # a form without its version never overwrites
    assert answer.status_code == 409


def test_settings_when_gescom_is_down(app, client, keys, tmp_path):
    from sqlalchemy import create_engine

    from sync.gescom.adapter import GesCom

    app.extensions["gescom"] = GesCom(create_engine(f"sqlite:///{tmp_path}/no/such/dir.db"))
    login(client, keys["admin"])
    page = client.get("/admin/settings")
    assert page.status_code == 200 and "GesCom ne répond pas" in unescape(page.text)
    form = form_of(page.text)
    assert ("DO_Coord01", "DO_Coord01 (introuvable)") in form.options["tracking.header_field"]  # the stored value stays visible
    answer = client.post("/admin/settings", data=dict(form.fields))
    assert answer.status_code == 422 and "GesCom ne répond pas : le champ ne peut pas être vérifié" in control(answer.text, "link_field")
    dashboard = client.get("/admin/")
    assert dashboard.status_code == 200 and "ne répond pas" in unescape(dashboard.text)


# --- synchronisations ------------------------------------------------------------------------------------------------


def _wait_for_runs(app, count: int, timeout: float = 20.0) -> list[SyncRun]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context():
            runs = list(db.session.scalars(select(SyncRun).order_by(SyncRun.id)))
            db.session.expunge_all()
        if len(runs) >= count and all(run.status != "running" for run in runs):
            return runs
        time.sleep(0.05)
    raise AssertionError(f"runs still running after {timeout} s")


def test_run_now_starts_a_run_in_the_background_one_at_a_time(app, client, keys, shop):
    login(client, keys["admin"])
    page = client.get("/admin/runs")
    assert "Lancer maintenant" in unescape(page.text) and "Prévisualiser" in unescape(page.text) and "réussie" in unescape(page.text)
    with app.app_context():
        assert acquire_lock(db.session, LOCK_NAME, "someone-else", timedelta(minutes=5))
    answer = client.post("/admin/runs", data={"csrf_token": csrf_of(client)})
    assert answer.status_code == 303
    assert "Une synchronisation est déjà en cours" in client.get("/admin/runs").text
    with app.app_context():
        release_lock(db.session, LOCK_NAME, "someone-else")

    shop.transform((1, shop.documents("4712")[0][1]), 3)
    answer = client.post("/admin/runs", data={"csrf_token": csrf_of(client)})
    assert answer.status_code == 303
    assert "Synchronisation n°\u00a02 lancée." in client.get("/admin/runs").text
    runs = _wait_for_runs(app, 2)
    assert [run.status for run in runs] == ["succeeded", "succeeded"] and runs[1].updates_created == 1
    page = client.get("/admin/runs")
    assert page.text.count("réussie") >= 2


def test_preview_lists_what_would_be_sent_per_order_and_stores_nothing(app, client, keys, shop):
    login(client, keys["admin"])
    shop.transform((1, shop.documents("4712")[0][1]), 3, header={"DO_Coord01": "6A99999999999"})
    with app.app_context():
        updates_before = db.session.scalar(select(func.count()).select_from(Update))
    answer = client.post("/admin/runs/preview", data={"csrf_token": csrf_of(client)})
    assert answer.status_code == 303 and re.fullmatch(r"/admin/runs/\d+", answer.headers["Location"])
    page = client.get(answer.headers["Location"])
    assert "Ce qui serait envoyé" in unescape(page.text) and "rien n'a été enregistré ni envoyé" in unescape(page.text)
    assert 'data-order="4712"' in unescape(page.text) and "6A99999999999" in unescape(page.text) and "4 — Expédié" in unescape(page.text)
    assert 'data-order="4711"' not in unescape(page.text)  # unchanged: nothing to send
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Update)) == updates_before
        assert db.session.scalar(select(ShopOrder.stage).where(ShopOrder.order_key == "4712")) == "ordered"
    assert client.get("/admin/runs/999999").status_code == 404


# --- commandes -------------------------------------------------------------------------------------------------------


def test_an_order_by_key_by_id_order_or_by_reference(app, client, keys, shop):
    login(client, keys["admin"])
    page = client.get("/admin/orders")
    assert "Dernières commandes mises à jour" in unescape(page.text) and "4711" in unescape(page.text)
    for query in ("4711", " 4711 ", "KHWTQZXNB"):
        page = client.get("/admin/orders", query_string={"q": query})
        assert page.status_code == 200
        assert "Commande 4711" in unescape(page.text) and "Expédiée partiellement" in unescape(page.text)
        assert "BC00001" in unescape(page.text) and "BL00001" in unescape(page.text) and "Bon de livraison" in unescape(page.text)
        assert "T-shirt M" in unescape(page.text) and "6A12345678901" in unescape(page.text)
        assert "Mise à jour n°\u00a01" in unescape(page.text) and "en attente d'acquittement" in unescape(page.text)
    page = client.get("/admin/orders", query_string={"q": "NOSUCHREF"})
    assert "Aucune commande suivie ne correspond à « NOSUCHREF »." in unescape(page.text)
    # A reference in GesCom whose order the store does not follow yet.
    shop.create_order("4713", LINES, reference="NEWREF123")
    page = client.get("/admin/orders", query_string={"q": "NEWREF123"})
    assert "pas encore suivie : 4713" in unescape(page.text)


def test_dashboard_counts_stages_pushes_and_runs(app, client, keys, shop):
    login(client, keys["admin"])
    page = client.get("/admin/")
    assert page.status_code == 200
    assert "2 commandes suivies, dont 2 ouvertes." in unescape(page.text)
    assert re.search(r'stage-ordered">\s*<span class="count">1</span>', page.text)
    assert re.search(r'stage-partially_shipped">\s*<span class="count">1</span>', page.text)
    assert "Dernière synchronisation réussie" in unescape(page.text)
    assert "Aucune boutique configurée" in unescape(page.text) and "non configurée" in unescape(page.text)
    assert page.text.count("répond") >= 2  # store and GesCom

    from sync.services.dashboard import overview

    with app.app_context():
        data = overview(db.session)
    assert data.orders_total == 2 and data.pending_acks == 2 and data.push["pending"] == 2
    assert data.last_success is not None and data.last_success.status == "succeeded"


def test_with_a_shop_the_choices_are_its_states_and_the_dashboard_checks_it(app, client, keys, shop):
    from app import configure_shop
    from tests.simulator import ShopSimulator

    sim = ShopSimulator(version="8.1.5", key="S" * 32).start()
    try:
        app.config.update(PRESTASHOP_URL=sim.url, PRESTASHOP_API_KEY="S" * 32)
        configure_shop(app)
        login(client, keys["admin"])
        page = client.get("/admin/")
        assert "Boutique PrestaShop" in unescape(page.text) and "En attente d'envoi" in unescape(page.text)
        assert 'class="conn ok"' in unescape(page.text) and "non configurée" not in unescape(page.text)
        settings = client.get("/admin/settings")
        assert "Statuts lus dans votre boutique." in unescape(settings.text)
        assert "Expédié" in unescape(settings.text)
    finally:
        sim.stop()
    page = client.get("/admin/")  # the shop has gone: said, not a crash
    assert page.status_code == 200 and 'class="conn down"' in unescape(page.text)


def test_over_https_a_post_must_come_from_this_site(app, client, keys):
    # Flask-WTF's check behind HTTPS (a proxy sending X-Forwarded-Proto): the Referer must be this host, so the
    # proxy must pass the Host header on.
    site = "https://admin.example"
    page = client.get("/admin/login", base_url=site).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = {"key": keys["admin"], "csrf_token": token}
    for referrer in (None, "https://elsewhere.example/admin/login", "http://admin.example/admin/login"):
        headers = {"Referer": referrer} if referrer else {}
        answer = client.post("/admin/login", data=form, base_url=site, headers=headers)
        assert answer.status_code == 400 and "Ce formulaire a expiré" in unescape(answer.text), referrer
    answer = client.post("/admin/login", data=form, base_url=site, headers={"Referer": site + "/admin/login"})
    assert answer.status_code == 303 and answer.headers["Location"] == "/admin/"


def test_the_api_takes_no_csrf_token(client, keys):
    # The admin page's CSRF check stays on its blueprint: the API's callers prove themselves with keys.
    login(client, keys["admin"])
    answer = client.post("/api/v1/webhooks/prestashop", json={}, headers=bearer(keys["write"]))
    assert answer.status_code == 503 and answer.json["code"] == "webhooks_not_configured"
