"""The admin pages: each view reads its input, calls the sync/ services, and renders a template."""

from __future__ import annotations

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from api.background import execute_in_background
from api.ratelimit import limiter
from app import run_config_of
from models import SyncRun, db
from sync.core.settings import SettingsError
from sync.core.stages import STAGES
from sync.gescom.adapter import GesComError
from sync.prestashop.states import known_state_ids
from sync.services.choices import known_states, live_schema, state_name
from sync.services.dashboard import connectivity, overview, shop_conflicts, shop_figures
from sync.services.orders import find_order_keys, order_view, recently_updated
from sync.services.push_retry import Actor, NotPushed, UnknownOrder, pushing_shop_ids, retry_failed
from sync.services.runs import RunInProgress, execute_run, list_runs, start_run
from sync.services.unit_of_work import UnitOfWork
from sync.store.keys import scope_allows, touch_key, verify_key
from sync.store.settings import SHARED, VersionConflict, current_settings, save_settings
from sync.store.shops import order_shop_id, stored_shops

from . import _, admin_shops, bp, end_session, error_page, lang, safe_next, selected_shop, start_session
from .conflict_views import conflicts_shown
from .forms import CONTROLS, LABEL_KEYS, STAGE_NAMES, STATE_LISTS, control_id, flatten, patch_from_form, settings_choices, with_current, without
from .i18n import settings_error

PREVIEW_SHOWN = 500  # orders listed on a preview page; the run keeps them all


def _gescom():
    return current_app.extensions["gescom"]


def _state_labels() -> dict[int, str]:
    return {state["id"]: state_name(state, lang()) for state in known_states(current_app.extensions)[1]}


def _states_of(shop) -> tuple[str, list[dict]]:
    """("shop", this shop's order states) when it is connected and answers, else ("native", PrestaShop's native list)."""
    connections = current_app.extensions.get("shops")
    provider = connections.states_for(shop) if connections is not None else None
    states = provider() if provider is not None else None
    return ("shop", states) if states else known_states({})


def _shop_labels() -> dict[int, str]:
    """Shop id -> "Name (code)", to name each order's shop when there are several (empty when there is one)."""
    shops = admin_shops()
    return {shop.id: f"{shop.name or shop.code} ({shop.code})" for shop in shops} if len(shops) > 1 else {}


# --- signing in and out ----------------------------------------------------------------------------------------


def _login_limit() -> str:
    return current_app.config["ADMIN_LOGIN_LIMIT"]


def _refused(response) -> bool:
    return response.status_code == 401


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], deduct_when=_refused)  # wrong keys count; past the limit, 429
def login():
    problem = None
    if request.method == "POST":
        row = verify_key(db.session, request.form.get("key", "").strip())
        if row is not None:
            touch_key(db.engine, row)
        if row is None:
            problem = "login.invalid"
        elif not scope_allows(row.scope, "admin"):
            problem = "login.scope"
        else:
            start_session(row)
            return redirect(safe_next(request.form.get("next")), code=303)
    notice = "login.expired" if request.args.get("expired") else "login.logged_out" if request.args.get("logged_out") else None
    page = render_template("admin/login.html", problem=problem, notice=notice, next=request.values.get("next", ""))
    return page, 401 if problem else 200


@bp.post("/logout")
def logout():
    end_session()
    return redirect(url_for("admin.login", logged_out=1), code=303)


# --- tableau de bord ---------------------------------------------------------------------------------------------


@bp.get("/")
def dashboard():
    shop = current_app.extensions.get("shop")
    connections = current_app.extensions["shops"]
    figures = shop_figures(db.session, connections) if len(admin_shops()) > 1 else []
    conflicts = shop_conflicts(db.session, selected_shop(), connections)
    return render_template(
        "admin/dashboard.html",
        data=overview(db.session),
        shop_figures=figures,
        conflicts=conflicts_shown(conflicts),
        conflicts_total=conflicts.total,
        checks=connectivity(db.session, _gescom(), shop),
        push=bool(pushing_shop_ids(db.session, connections)),
        stages=[stage.value for stage in STAGES],
    )


# --- réglages -------------------------------------------------------------------------------------------------------


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    """The selected shop's settings; another shop than the default one shows the shared settings without changing them."""
    shop = selected_shop()
    shared = () if shop.is_default else tuple(".".join(path) for path in SHARED)
    source, states = _states_of(shop)
    schema, gescom_error = None, None
    try:
        schema = live_schema(_gescom())  # a free field may have been added in Sage since
    except GesComError as error:
        gescom_error = str(error)
    document, version = current_settings(db.session, shop.id)
    values, errors, conflict = flatten(document), {}, False
    if request.method == "POST":
        # The shared settings are shown read-only (not sent) on another shop's page: never part of its change.
        patch = without(patch_from_form(request.form), shared)
        sent_version = request.form.get("version", "")
        expected = int(sent_version) if sent_version.isdigit() else -1  # no version: never overwrite blindly
        with UnitOfWork(db.session) as uow:
            try:
                saved, new_version = save_settings(
                    uow.session, patch, schema, shop_id=shop.id, expected_version=expected, known_states=known_state_ids(states)
                )
            except VersionConflict:
                uow.rollback()
                conflict, values = True, {**values, **flatten(patch)}
                version = current_settings(uow.session, shop.id)[1]
            except SettingsError as error:
                errors, values, version = error.errors, {**values, **flatten(patch)}, expected
            else:
                uow.commit()
                flash(_("settings.saved", version=new_version), "ok")
                return redirect(url_for("admin.settings"), code=303)
    return _settings_page(shop, shared, values, version, errors, conflict, gescom_error, source, schema, states)


def _settings_page(shop, shared, values, version, errors, conflict, gescom_error, source, schema, states):
    shown_errors = {_control_of(name): settings_error(message, lang()) for name, message in errors.items()}
    page = render_template(
        "admin/settings.html",
        shop=shop,
        shared=shared,
        values=values,
        version=version,
        errors=shown_errors,
        other_errors={name: message for name, message in shown_errors.items() if name not in CONTROLS},
        conflict=conflict,
        gescom_error=gescom_error,
        states_source=source,
        choices=settings_choices(schema, states, lang()),
        with_current=lambda options, value: with_current(options, value, lang()),
        cid=control_id,
        label_keys=LABEL_KEYS,
        stage_names=STAGE_NAMES,
    )
    return page, 422 if errors else 409 if conflict else 200


def _control_of(name: str) -> str:
    """The control an error is about: a list's item ("conflict_states.0") is its list's."""
    head = name.rsplit(".", 1)[0]
    return head if head in STATE_LISTS and name != head else name


# --- synchronisations -----------------------------------------------------------------------------------------------


@bp.get("/runs")
def runs():
    recent, _older = list_runs(db.session, 25)
    return render_template("admin/runs.html", runs=recent, running=any(run.status == "running" for run in recent))


@bp.post("/runs")
def start_run_now():
    """Like POST /api/v1/sync/runs: take the run lock, then run in a background thread."""
    with UnitOfWork(db.session) as uow:
        try:
            run, holder = start_run(uow, config=run_config_of(current_app))  # committed: the run's first step
        except RunInProgress:
            flash(_("runs.in_progress"), "error")
            return redirect(url_for("admin.runs"), code=303)
        run_id = run.id
    execute_in_background(current_app._get_current_object(), run_id, holder)
    flash(_("runs.started", id=run_id), "ok")
    return redirect(url_for("admin.runs"), code=303)


@bp.post("/runs/preview")
def preview():
    """A dry run, done within the request; its page lists what would be sent. No update is stored."""
    config = run_config_of(current_app)
    with UnitOfWork(db.session) as uow:
        try:
            run, holder = start_run(uow, dry_run=True, config=config)
        except RunInProgress:
            flash(_("runs.in_progress"), "error")
            return redirect(url_for("admin.runs"), code=303)
        execute_run(uow, _gescom(), run, holder, config=config)  # each chunk rolled back, the run's record committed
        run_id = run.id
    return redirect(url_for("admin.run", run_id=run_id), code=303)


@bp.get("/runs/<int(max=2147483647):run_id>")
def run(run_id: int):
    found = db.session.get(SyncRun, run_id)
    if found is None:
        abort(404)
    updates = list(found.preview or []) if found.dry_run else []
    by_order: dict[str, list[dict]] = {}
    for update in updates[:PREVIEW_SHOWN]:
        by_order.setdefault(update["order_key"], []).append(update)
    return render_template(
        "admin/run.html",
        run=found,
        by_order=by_order,
        total=len({u["order_key"] for u in updates}),
        shown=PREVIEW_SHOWN,
        state_labels=_state_labels(),
        active="admin.runs",
        **_order_shops(list(by_order), None),
    )


# --- commandes ------------------------------------------------------------------------------------------------------


@bp.get("/orders")
def orders():
    query = request.args.get("q", "").strip()[:100]
    matches, unfollowed, view, problem, conflicts = [], [], None, None, []
    if query:
        try:
            matches, unfollowed = find_order_keys(db.session, _gescom(), query)
        except GesComError as error:
            problem = str(error)
        if len(matches) == 1:
            view = order_view(db.session, _gescom(), matches[0], connections=current_app.extensions["shops"])
        if view is not None:
            conflicts = _order_conflicts(view["order_key"])
    return render_template(
        "admin/orders.html",
        q=query,
        matches=matches,
        unfollowed=unfollowed,
        view=view,
        problem=problem,
        recent=[] if query else recently_updated(db.session),
        state_labels=_state_labels(),
        push=bool(pushing_shop_ids(db.session, current_app.extensions["shops"])),
        conflicts=conflicts,
        **_order_shops(matches, view),
    )


def _order_conflicts(order_key: str) -> list[dict]:
    """The order's open conflicts, named with its shop's states."""
    shop_id = order_shop_id(db.session, order_key)
    shop = next((row for row in admin_shops() if row.id == shop_id), None)
    return conflicts_shown(shop_conflicts(db.session, shop, current_app.extensions["shops"], order_key=order_key)) if shop else []


def _order_shops(matches: list[str], view: dict | None) -> dict:
    """With several shops, which shop each order shown belongs to: `shop_labels` (id -> words), `match_shops`
    (key -> id) and `view_shop` (the order's shop id)."""
    labels = _shop_labels()
    if not labels:
        return {"shop_labels": {}, "match_shops": {}, "view_shop": None}
    shops = stored_shops(db.session)
    return {
        "shop_labels": labels,
        "match_shops": {key: shops.shop_id_of(key) for key in matches},
        "view_shop": order_shop_id(db.session, view["order_key"]) if view else None,
    }


# --- renvoyer: failed pushes sent again ------------------------------------------------------------------------------


@bp.post("/push/retry")
def retry_push():
    """Like POST /api/v1/push/retry: the failed updates of one order (`order_key`) or of all, due at the next push."""
    order_key = request.form.get("order_key", "").strip()[:100] or None
    back = url_for("admin.orders", q=order_key, _anchor="order") if order_key else url_for("admin.dashboard")
    connections = current_app.extensions["shops"]
    if not pushing_shop_ids(db.session, connections):
        flash(_("push_retry.not_configured"), "error")
        return redirect(back, code=303)
    with UnitOfWork(db.session) as uow:
        try:
            result = retry_failed(uow, order_key, actor=Actor(g.admin_key.name, "admin"), connections=connections)
        except UnknownOrder:
            abort(404)
        except NotPushed:
            flash(_("push_retry.shop_not_connected"), "error")
            return redirect(back, code=303)
        uow.commit()
    flash(_("push_retry.done", count=result.retried) if result.retried else _("push_retry.none"), "ok")
    return redirect(back, code=303)


# --- errors inside the admin: pages, not problem documents --------------------------------------------------------------


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException):
    if error.code == 404:
        return error_page(404, "error.not_found")
    return render_template("admin/error.html", status=error.code, message=error.description), error.code or 500


@bp.errorhandler(Exception)
def unexpected(error: Exception):
    current_app.logger.exception("admin page failed")
    return error_page(500, "error.unexpected")


# --- webhooks to consumers (updates.available) ------------------------------------------------------------------------


@bp.get("/webhooks")
def consumer_webhooks():
    """Each consumer's endpoint and its latest delivery attempts (sync/services/notifications.py delivers)."""
    from sync.store.notifications import list_endpoints, recent_deliveries

    endpoints = [{"endpoint": row, "key": key, "deliveries": recent_deliveries(db.session, row.key_id)} for row, key in list_endpoints(db.session)]
    return render_template("admin/consumer_webhooks.html", endpoints=endpoints)
