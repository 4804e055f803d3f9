"""The Boutiques page (issue 16): the shops of the Sage company, each with the rule that tells its documents apart;
create one, change one. The rules and the checks of the whole set are the store's (sync/store/shops.py)."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from models import db
from sync.core.shops import ShopError
from sync.gescom.adapter import GesComError
from sync.gescom.settings_check import gescom_column
from sync.prestashop.connections import key_variable
from sync.services.choices import live_schema
from sync.services.unit_of_work import UnitOfWork
from sync.store.shops import create_shop, get_shop, list_shops, order_counts, pushes, update_shop

from . import _, bp, lang
from .i18n import shop_error

KINDS = ("all", "souche", "tiers", "prefix", "field")
CONTROLS = ("code", "name", "kind", "field", "values", "id_shop", "prestashop_url")


def rule_words(rule: dict | None) -> str:
    """A shop's rule as a person says it: « Souche 1 », « Compte client CB2B », « Préfixe B2B- », « Champ Boutique = FR »."""
    rule = rule or {}
    kind = rule.get("kind", "all")
    values = ", ".join(str(value) for value in rule.get("values") or [])
    return _(f"shops.rule.{kind}", values=values, field=rule.get("field") or "") if kind in KINDS else str(rule)


def _values_of(kind: str, text: str) -> list:
    """The rule's values typed one per line; a numbering series as a number when it is one (else as typed, for the check to name)."""
    values = [line.strip() for line in text.replace("\r", "").split("\n") if line.strip()]
    if kind == "souche":
        return [int(value) if value.isdigit() and len(value) <= 6 else value for value in values]
    return values


def shop_document(form) -> dict:
    """The shop the form describes, as sync/store/shops.py takes it (`code` only when the form has one)."""
    kind = form.get("kind", "").strip()
    id_shop = form.get("id_shop", "").strip()
    document = {
        "name": form.get("name", "").strip(),
        "rule": {
            "kind": kind,
            "field": (form.get("field", "").strip() or None) if kind == "field" else None,
            "values": [] if kind == "all" else _values_of(kind, form.get("values", "")),
        },
        "id_shop": (int(id_shop) if id_shop.isdigit() and len(id_shop) <= 9 else id_shop) if id_shop else None,
        "prestashop_url": form.get("prestashop_url", "").strip() or None,
    }
    if "code" in form:
        document["code"] = form.get("code", "").strip()
    return document


def form_values(row=None, form=None) -> dict:
    """What the form's controls show: what was typed (after a refusal), else the stored shop, else empty."""
    if form is not None:
        return {name: form.get(name, "") for name in CONTROLS}
    if row is None:
        return {name: "" for name in CONTROLS} | {"kind": "souche"}
    rule = row.rule or {}
    return {
        "code": row.code,
        "name": row.name or "",
        "kind": rule.get("kind", "all"),
        "field": rule.get("field") or "",
        "values": "\n".join(str(value) for value in rule.get("values") or []),
        "id_shop": "" if row.id_shop is None else str(row.id_shop),
        "prestashop_url": row.prestashop_url or "",
    }


def control_of(field: str) -> str:
    """The form control a ShopError's field belongs to ("rule.values.0" -> "values"; "rule" -> "kind")."""
    name = field.removeprefix("rule.").split(".")[0]
    return {"rule": "kind", "shop": "name"}.get(name, name)


def shop_errors(error: ShopError, adding: bool = False) -> dict[str, str]:
    """The store's refusal, in the page's language, next to its control; adding a second shop while the default one
    takes every document is said plainly."""
    default = next((row for row in list_shops(db.session) if row.is_default), None)
    if adding and error.field in ("rule", "rule.kind") and default is not None and (default.rule or {}).get("kind") == "all":
        return {"kind": _("shops.default_takes_all")}
    return {control_of(error.field): shop_error(error.message, lang())}


def _listing() -> list[dict]:
    """Each shop with its rule in words, its webservice address (the key never shown), push or pull, its shop orders."""
    connections = current_app.extensions.get("shops")
    counts = order_counts(db.session)
    listing = []
    rows = list_shops(db.session)
    for row in rows:
        address = connections.address_of(row, rows)[0] if connections is not None else row.prestashop_url
        listing.append(
            {
                "row": row,
                "rule": rule_words(row.rule),
                "address": address,
                "from_environment": bool(row.is_default and not row.prestashop_url and address),
                "pushes": pushes(row, connections, rows),
                "key_variable": "PRESTASHOP_API_KEY" if row.is_default and not row.prestashop_url else key_variable(row.code),
                "orders": counts.get(row.id, 0),
            }
        )
    return listing


def _render(template: str, status: int = 200, **context):
    default = next((row for row in list_shops(db.session) if row.is_default), None)
    takes_all = default is not None and (default.rule or {}).get("kind") == "all"
    page = render_template(template, kinds=KINDS, default_takes_all=takes_all, default_shop=default, active="admin.shops", **context)
    return page, status


def _as_gescom_spells_it(document: dict) -> dict:
    """A rule of the kind 'field' names a F_DOCENTETE column: it must exist in GesCom (a free field may have been
    added in Sage since), and is kept as GesCom spells it. Raises ShopError (field `rule.field`)."""
    rule = document.get("rule") or {}
    if rule.get("kind") != "field" or not rule.get("field"):
        return document
    try:
        columns = live_schema(current_app.extensions["gescom"]).header
    except GesComError as error:
        raise ShopError("rule.field", f"the field is checked against GesCom, which is unreachable: {error}") from None
    return {**document, "rule": {**rule, "field": gescom_column(columns, rule["field"])}}


@bp.route("/shops", methods=["GET", "POST"])
def shops():
    """The list of shops and the form that adds one (committed here, the store checks the whole set)."""
    values, errors = form_values(), {}
    if request.method == "POST":
        values = form_values(form=request.form)
        with UnitOfWork(db.session) as uow:
            try:
                row = create_shop(uow.session, _as_gescom_spells_it(shop_document(request.form)))
            except ShopError as error:
                uow.rollback()
                errors = shop_errors(error, adding=True)
            else:
                code = row.code
                uow.commit()
                flash(_("shops.created", code=code), "ok")
                return redirect(url_for("admin.shops"), code=303)
    return _render("admin/shops.html", 422 if errors else 200, listing=_listing(), values=values, errors=errors)


@bp.route("/shops/<string(maxlength=20):code>", methods=["GET", "POST"])
def shop(code: str):
    """One shop's form: its name, rule, id_shop and webservice address (its code and being the default never change)."""
    row = get_shop(db.session, code)
    if row is None:
        abort(404)
    values, errors = form_values(row), {}
    if request.method == "POST":
        values = form_values(form=request.form) | {"code": code}
        patch = {name: value for name, value in shop_document(request.form).items() if name != "code"}
        with UnitOfWork(db.session) as uow:
            try:
                update_shop(uow.session, code, _as_gescom_spells_it(patch))
            except ShopError as error:
                uow.rollback()
                errors = shop_errors(error)
            else:
                uow.commit()
                flash(_("shops.saved", code=code), "ok")
                return redirect(url_for("admin.shops"), code=303)
    return _render("admin/shop.html", 422 if errors else 200, row=get_shop(db.session, code), values=values, errors=errors)
