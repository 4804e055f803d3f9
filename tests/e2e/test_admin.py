"""End to end: the admin page in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright),
against the real app served by gunicorn, in a scratch instance directory (SQLite files, demo GesCom).

Without /usr/bin/chromium these tests are skipped, except in CI (CI=true) where that is a failure.
`UPDATE_SCREENSHOTS=1` also rewrites the screenshots of docs/screenshots/ shown in the README.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_serve import ROOT, _free_port, _health, _wait_for

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 900}


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _need_browser() -> None:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium) to run the browser tests"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail("the playwright package is missing: pip install -r requirements-dev.txt (make test does it)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """gunicorn serving a demo GesCom of 30 orders, one run done, then a warehouse shift; an admin key."""
    _need_browser()
    home = tmp_path_factory.mktemp("admin-e2e")
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("SECRET_KEY", "PRESTASHOP_URL", "PRESTASHOP_API_KEY")}
    env.update(
        {
            "INSTANCE_PATH": str(home / "instance"),
            "DATABASE_URL": f"sqlite:///{home / 'store.db'}",
            "GESCOM_DATABASE_URL": f"sqlite:///{home / 'gescom.db'}",
            "GESCOM_SCHEMA": "",
            "SYNC_SCHEDULER": "off",
            "BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": "2",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            "CONSUMER_WEBHOOK_ALLOW_HTTP": "1",  # the webhook page's test registers an endpoint on this machine
        }
    )
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    outputs = {}
    for command in (
        ["db", "upgrade"],
        ["demo", "init", "--orders", "30"],
        ["sync", "run"],
        ["demo", "advance", "--count", "12", "--seed", "3"],
        ["apikey", "create", "admin-e2e", "--scope", "admin"],
    ):
        done = subprocess.run(flask + command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"flask {' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
        outputs[command[0]] = done.stdout
    key = outputs["apikey"].strip().splitlines()[-1]

    log = (home / "gunicorn.log").open("wb")
    master = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert _wait_for(lambda: _health(port) == 200 or master.poll() is not None, 30), (home / "gunicorn.log").read_text()
        assert master.poll() is None, (home / "gunicorn.log").read_text()
        yield {
            "url": f"http://127.0.0.1:{port}",
            "key": key,
            "gescom": home / "gescom.db",
            "store": home / "store.db",
            "flask": lambda *args: subprocess.run(flask + list(args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True),
        }
    finally:
        master.terminate()
        try:
            master.wait(30)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait(10)
        log.close()


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT, locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def log_in(page, server, path: str = "/admin/"):
    from playwright.sync_api import expect

    page.goto(server["url"] + path)
    expect(page.get_by_role("heading", name="Connexion")).to_be_visible()
    page.get_by_label("Clé API").fill(server["key"])
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("link", name="Tableau de bord")).to_be_visible()


def richest_order(gescom: Path) -> str:
    """The shop order with the most documents in the demo GesCom (the longest chain to show)."""
    with sqlite3.connect(f"file:{gescom}?mode=ro", uri=True) as conn:
        row = conn.execute(
            'SELECT "DO_NoWeb", COUNT(DISTINCT "DO_Type") AS kinds, COUNT(*) FROM "F_DOCENTETE" '
            'WHERE "DO_NoWeb" != \'\' GROUP BY "DO_NoWeb" ORDER BY kinds DESC, COUNT(*) DESC, "DO_NoWeb" LIMIT 1'
        ).fetchone()
    return row[0]


# --- the tests ---------------------------------------------------------------------------------------------------


def test_logged_out_access_goes_to_login_then_back(page, server):
    from playwright.sync_api import expect

    page.goto(server["url"] + "/admin/settings")
    assert "/admin/login?next=/admin/settings" in page.url
    expect(page.get_by_role("heading", name="Connexion")).to_be_visible()
    page.get_by_label("Clé API").fill("sgps_wrong")
    page.get_by_role("button", name="Se connecter").click()
    expect(page.locator("#key-error")).to_have_text("Cette clé est inconnue ou révoquée.")
    page.get_by_label("Clé API").fill(server["key"])
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("heading", name="Mettre à jour les Statuts des Commandes sur la boutique")).to_be_visible()
    assert page.url.endswith("/admin/settings")


def test_dashboard_then_logout(page, server):
    from playwright.sync_api import expect

    log_in(page, server)
    expect(page.get_by_role("heading", name="Tableau de bord", level=1)).to_be_visible()
    expect(page.locator(".stage-count")).to_have_count(7)
    expect(page.get_by_text("Dernière synchronisation réussie")).to_be_visible()
    expect(page.locator(".conn.ok")).to_have_count(2)  # store and GesCom; no shop configured
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    page.get_by_role("link", name="Français").click()
    page.get_by_role("button", name="Se déconnecter").click()
    expect(page.get_by_text("Vous êtes déconnecté.")).to_be_visible()
    page.goto(server["url"] + "/admin/runs")
    assert "/admin/login" in page.url


def test_settings_are_saved_and_kept_after_reload(page, server):
    from playwright.sync_api import expect

    log_in(page, server, "/admin/settings")
    header = page.get_by_label("Champ Numéro de transporteur (document)")
    expect(header).to_have_value("DO_Coord01")
    header.select_option("DO_Coord02")
    option = page.get_by_label("Envoyer la date de livraison dans la boutique")
    expect(option).not_to_be_checked()
    option.check()
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("status").filter(has_text="Réglages enregistrés")).to_be_visible()
    page.reload()
    expect(page.get_by_label("Champ Numéro de transporteur (document)")).to_have_value("DO_Coord02")
    expect(page.get_by_label("Envoyer la date de livraison dans la boutique")).to_be_checked()


def test_a_validation_error_is_shown_next_to_its_field(page, server):
    from playwright.sync_api import expect

    log_in(page, server, "/admin/settings")
    # Sending tracking numbers with neither field: refused, said at the header field.
    page.get_by_label("Champ Numéro de transporteur (document)").select_option("")
    page.get_by_label("Champ Numéro de transporteur (ligne)").select_option("")
    page.get_by_label("Envoyer le détail des livraisons dans la boutique").check()
    page.get_by_role("button", name="Enregistrer").click()
    error = page.locator("#f-tracking-header-field-control .error")
    expect(error).to_have_text("pour envoyer le numéro de suivi, choisissez un champ d'entête ou un champ de ligne")
    expect(page.get_by_label("Champ Numéro de transporteur (document)")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#error-summary")).to_be_focused()
    expect(page.get_by_label("Envoyer le détail des livraisons dans la boutique")).to_be_checked()  # input kept

    # A state the shop does not know, forged into the drop-down: refused, said on its row.
    page.get_by_label("Champ Numéro de transporteur (document)").select_option("DO_Coord01")
    page.eval_on_selector("#f-stage-states-shipped", "select => { select.add(new Option('999', '999')); select.value = '999'; }")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.locator("#f-stage-states-shipped-control .error")).to_contain_text("le statut 999 n'existe pas dans la boutique")
    expect(page.locator(".control.invalid, tr.invalid")).to_have_count(1)


def test_a_post_without_the_csrf_token_is_refused(page, server):
    from playwright.sync_api import expect

    log_in(page, server, "/admin/settings")
    page.eval_on_selector("form.settings input[name=csrf_token]", "input => input.remove()")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("heading", name="Erreur 400")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Ce formulaire a expiré")
    answer = page.request.post(server["url"] + "/admin/runs", form={"csrf_token": "forged"}, max_redirects=0)
    assert answer.status == 400


def test_a_dry_run_lists_what_would_be_sent(page, server):
    from playwright.sync_api import expect

    log_in(page, server, "/admin/runs")
    expect(page.get_by_role("heading", name="Dernières synchronisations")).to_be_visible()
    page.get_by_role("button", name="Prévisualiser").click()
    expect(page.get_by_role("heading", name="Ce qui serait envoyé")).to_be_visible()
    expect(page.get_by_text("rien n'a été enregistré ni envoyé à la boutique")).to_be_visible()
    orders = page.locator("table.preview tbody.order")
    assert orders.count() > 0
    first = orders.first
    expect(first.locator("th a")).to_have_attribute("href", re.compile(r"/admin/orders\?q=\d+"))
    page.get_by_role("link", name="Toutes les synchronisations").click()
    expect(page.locator("table.data tbody tr").first.get_by_text("aperçu")).to_be_visible()


def test_run_now_starts_a_run(page, server):
    from playwright.sync_api import expect

    log_in(page, server, "/admin/runs")
    page.get_by_role("button", name="Lancer maintenant").click()
    expect(page.get_by_role("status").filter(has_text="lancée")).to_be_visible()
    # The page refreshes itself while the run goes on; it ends succeeded.
    expect(page.locator("table.data tbody tr").first.locator(".status")).to_have_text("réussie", timeout=30000)


def test_an_orders_chain_is_displayed(page, server):
    from playwright.sync_api import expect

    key = richest_order(server["gescom"])
    log_in(page, server, "/admin/orders")
    page.get_by_label("Commande de la boutique").fill(key)
    page.get_by_role("button", name="Rechercher").click()
    expect(page.get_by_role("heading", name=f"Commande {key}")).to_be_visible()
    documents = page.locator("ol.chain > li.doc")
    assert documents.count() >= 2
    expect(documents.first.locator("table.lines tbody tr").first).to_be_visible()
    expect(page.get_by_role("heading", name="Historique")).to_be_visible()
    assert page.locator("ol.timeline > li").count() >= 1


def test_a_consumers_webhook_endpoint_is_shown(page, server):
    """A key registers its endpoint through the API; the Webhooks page lists it, with no attempt yet (no scheduler)."""
    import requests
    from playwright.sync_api import expect

    url = "http://127.0.0.1:9/module/webhook"
    answer = requests.put(
        server["url"] + "/api/v1/consumer/webhook", json={"url": url}, headers={"Authorization": f"Bearer {server['key']}"}, timeout=10
    )
    assert answer.status_code in (200, 201), answer.text
    log_in(page, server)
    page.get_by_role("link", name="Webhooks").click()
    expect(page.get_by_role("heading", name="Webhooks vers le module", level=1)).to_be_visible()
    section = page.get_by_role("region", name="admin-e2e")
    expect(section.get_by_text(url)).to_be_visible()
    expect(section.get_by_text("Aucun envoi pour l'instant.")).to_be_visible()


def hold_an_update(store: Path) -> tuple[int, str]:
    """The default shop's latest update held in open conflict (its order cancelled in the shop, as the push finds
    it), with its timeline event, straight in the server's store: (its id, its order's key)."""
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from models import Update, utcnow
    from sync.services.conflicts import hold, record_opened

    engine = create_engine(f"sqlite:///{store}")
    try:
        with Session(engine) as session:
            item = session.scalars(select(Update).where(Update.shop_id == 1).order_by(Update.id.desc()).limit(1)).one()
            hold(item, 6, "PS_OS_CANCELED", utcnow(), "push")
            session.flush()
            record_opened(session, item.order_key, [item], 6, "PS_OS_CANCELED", "push")
            session.commit()
            return item.id, item.order_key
    finally:
        engine.dispose()


def push_status_of(store: Path, update_id: int) -> str:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT push_status FROM updates WHERE id = ?", (update_id,)).fetchone()[0]


def test_a_conflict_is_dismissed_from_the_dashboard_and_the_order_s_timeline_says_who(page, server):
    from urllib.parse import quote

    from playwright.sync_api import expect

    update_id, order_key = hold_an_update(server["store"])
    log_in(page, server)
    section = page.get_by_role("region", name="Conflits avec la boutique")
    expect(section).to_be_visible()
    conflict = section.locator(f"#conflict-{update_id}")
    expect(conflict).to_contain_text(f"Commande {order_key}")
    expect(conflict.locator(".shop-says dd")).to_have_text("Annulé (6)")
    expect(conflict.locator(".why dd")).to_have_text("Annulée dans la boutique")
    expect(conflict.get_by_role("button", name="Appliquer quand même")).to_be_visible()
    conflict.get_by_role("button", name="Ignorer").click()
    expect(page.get_by_role("status").filter(has_text=f"de la commande {order_key} ignorée")).to_be_visible()
    expect(page.locator(f"#conflict-{update_id}")).to_have_count(0)
    expect(page.get_by_role("region", name="Conflits avec la boutique")).to_have_count(0)  # nothing else to decide
    assert push_status_of(server["store"], update_id) == "dismissed"

    page.goto(server["url"] + "/admin/orders?q=" + quote(order_key))
    expect(page.get_by_role("heading", name=f"Commande {order_key}")).to_be_visible()
    expect(page.locator("#order-conflicts")).to_have_count(0)
    expect(page.locator("ol.timeline .conflict_dismissed .entry-head strong")).to_have_text("Ignorée par admin-e2e")
    expect(page.locator("ol.timeline .conflict_opened .entry-head strong")).to_have_text("Conflit : mise à jour retenue")
    expect(page.locator("ol.timeline .update-conflict dd").first).to_contain_text("ignorée")


@pytest.mark.skipif(os.environ.get("UPDATE_SCREENSHOTS") != "1", reason="set UPDATE_SCREENSHOTS=1 to rewrite docs/screenshots")
def test_screenshots_for_the_readme(page, server):
    from playwright.sync_api import expect

    page.goto(server["url"] + "/admin/login")
    _shoot(page, "login.png", height=520)
    log_in(page, server)
    _shoot(page, "dashboard.png", height=720)

    page.goto(server["url"] + "/admin/settings")
    page.get_by_label("Champ Numéro de transporteur (document)").select_option("")
    page.get_by_label("Champ Numéro de transporteur (ligne)").select_option("")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.locator("#f-tracking-header-field-control .error")).to_be_visible()
    page.locator("#error-summary").evaluate("summary => summary.blur()")  # the focus ring is not the point here
    _shoot(page, "settings-error.png", height=1250)

    page.get_by_label("Champ Numéro de transporteur (document)").select_option("DO_Coord01")
    page.get_by_label("Envoyer le numéro de la pièce dans la boutique").check()
    page.get_by_label("Envoyer la date de livraison dans la boutique").check()
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("status").filter(has_text="Réglages enregistrés")).to_be_visible()
    server["flask"]("demo", "advance", "--count", "15", "--seed", "5")  # something new to preview
    page.goto(server["url"] + "/admin/runs")
    page.get_by_role("button", name="Prévisualiser").click()
    expect(page.get_by_role("heading", name="Ce qui serait envoyé")).to_be_visible()
    _shoot(page, "runs-preview.png", height=1100)
    key = richest_order(server["gescom"])
    page.goto(server["url"] + f"/admin/orders?q={key}")
    expect(page.locator("ol.chain")).to_be_visible()
    _shoot(page, "order-chain.png", height=1300)


def _shoot(page, name: str, height: int) -> None:
    """The top `height` pixels of the page (the whole page if shorter), as docs/screenshots/<name>."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    full = page.evaluate("document.documentElement.scrollHeight")
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True, clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": min(full, height)})


# Last in the module: it adds a shop to the shared server, which every later page would show.
def test_a_third_shop_through_the_boutiques_page_then_a_shop_s_settings_and_dashboard(page, server):
    from playwright.sync_api import expect

    log_in(page, server)
    expect(page.get_by_label("Boutique affichée")).to_have_count(1)  # the demo's two shops: a selector
    page.get_by_role("link", name="Boutiques").click()
    expect(page.get_by_role("heading", name="Boutiques", level=1)).to_be_visible()
    expect(page.locator('tr[data-shop="default"] td.rule')).to_have_text("Souche 0")
    expect(page.locator('tr[data-shop="b2b"] td.rule')).to_have_text("Souche 1")

    # A shop claiming b2b's numbering series is refused, said next to the values.
    page.locator("#shop-code").fill("outlet")
    page.locator("#shop-name").fill("Déstockage")
    page.locator("#shop-kind").select_option("souche")
    page.locator("#shop-values").fill("1")
    page.get_by_role("button", name="Ajouter la boutique").click()
    expect(page.locator("#shop-values-error")).to_contain_text("b2b")
    expect(page.locator("#error-summary")).to_be_focused()

    # With a numbering series of its own, it is added.
    page.locator("#shop-values").fill("2")
    page.get_by_role("button", name="Ajouter la boutique").click()
    expect(page.get_by_role("status").filter(has_text="Boutique « outlet » ajoutée.")).to_be_visible()
    expect(page.locator('tr[data-shop="outlet"] td.rule')).to_have_text("Souche 2")

    # The selector appears; b2b's settings: the shared ones read-only, the rest its own.
    page.get_by_role("link", name="Réglages").click()
    before = page.get_by_label("Envoyer le détail des livraisons dans la boutique").is_checked()
    page.get_by_label("Boutique affichée").select_option("b2b")
    page.get_by_role("button", name="Afficher").click()
    expect(page.locator("#settings-shop")).to_have_text("Réglages de la boutique Boutique pro (b2b).")
    expect(page.get_by_label("Champ qui relie un document Sage à la commande de la boutique")).to_be_disabled()
    expect(page.locator("#f-link-field-shared")).to_contain_text("Commun à toutes les boutiques")
    details = page.get_by_label("Envoyer le détail des livraisons dans la boutique")
    details.set_checked(not before)
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("status").filter(has_text="Réglages enregistrés")).to_be_visible()
    page.reload()
    expect(page.get_by_label("Envoyer le détail des livraisons dans la boutique")).to_be_checked(checked=not before)
    page.get_by_label("Boutique affichée").select_option("default")
    page.get_by_role("button", name="Afficher").click()
    expect(page.locator("#settings-shop")).to_contain_text("(default)")
    expect(page.get_by_label("Envoyer le détail des livraisons dans la boutique")).to_be_checked(checked=before)  # untouched
    expect(page.get_by_label("Champ qui relie un document Sage à la commande de la boutique")).to_be_enabled()

    # The dashboard shows each shop.
    page.get_by_role("link", name="Tableau de bord").click()
    shops = page.locator("#shops table tbody tr")
    expect(shops).to_have_count(3)
    expect(page.locator('#shops tr[data-shop="outlet"] td.orders')).to_have_text("0")
    assert int(page.locator('#shops tr[data-shop="default"] td.orders').inner_text()) > 0
    assert int(page.locator('#shops tr[data-shop="b2b"] td.orders').inner_text()) > 0
    expect(page.locator('#shops tr[data-shop="default"]')).to_contain_text("affichée")
