"""Conflicts with the shop on the admin page: an update held because the shop holds its order in a conflict state
(cancelled, refunded, payment error, or a state of the `conflict_states` setting). The dashboard and the order
page list them; « Appliquer quand même » and « Ignorer » end one (sync/services/conflicts.py), as the signed-in key."""

from __future__ import annotations

from flask import current_app, flash, g, redirect, request, url_for

from api.schemas import MAX_ID
from models import db
from sync.services.choices import state_name
from sync.services.conflicts import NotInConflict, UpdateNotFound, apply_anyway, dismiss
from sync.services.dashboard import ShopConflicts
from sync.services.push_retry import Actor
from sync.services.unit_of_work import UnitOfWork

from . import _, bp, lang

# How each conflict ended, as NotInConflict says it (its `status`), for the message of a second click.
ENDED = {"applied_anyway", "dismissed", "released"}


def conflicts_shown(found: ShopConflicts) -> list[dict]:
    """The open conflicts as the page shows them: each with the shop's name of the state the shop holds the order in,
    and of the state the update would set."""
    names = {int(state["id"]): state_name(state, lang()) for state in found.states}
    shown = []
    for item in found.conflicts:
        sage_state = item["sage"]["state_id"]
        shown.append(
            {
                **item,
                "shop_state_name": names.get(item["shop_state_id"], "?") if item["shop_state_id"] is not None else None,
                "sage_state_name": names.get(sage_state, "?") if sage_state is not None else None,
            }
        )
    return shown


def _back(order_key: str | None):
    """Back to the order's page when the button was there, else to the dashboard."""
    if order_key:
        return redirect(url_for("admin.orders", q=order_key, _anchor="order"), code=303)
    return redirect(url_for("admin.dashboard", _anchor="conflicts"), code=303)


def _update_id() -> int | None:
    raw = request.form.get("update_id", "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 10 and int(raw) <= MAX_ID else None  # "²" is a digit too


def _end_conflict(decide, done_key: str):
    """End one conflict (`decide(session, update_id, actor)`), commit, say so, go back where the button was."""
    order_key = request.form.get("order_key", "").strip()[:100] or None
    update_id = _update_id()
    if update_id is None:
        flash(_("conflicts.not_found", id=request.form.get("update_id", "")[:20]), "error")
        return _back(order_key)
    with UnitOfWork(db.session) as uow:
        try:
            item = decide(uow.session, update_id, Actor(g.admin_key.name, "admin"))
        except UpdateNotFound:
            uow.rollback()
            flash(_("conflicts.not_found", id=update_id), "error")
            return _back(order_key)
        except NotInConflict as error:
            uow.rollback()
            flash(_("conflicts.ended." + error.status, id=update_id) if error.status in ENDED else _("conflicts.never", id=update_id), "error")
            return _back(order_key)
        uow.commit()
        key = item.order_key
    flash(_(done_key, id=update_id, key=key), "ok")
    return _back(order_key)


@bp.post("/conflicts/apply")
def conflict_apply():
    """« Appliquer quand même »: the update goes to the shop as usual, whatever the shop's state, once."""
    connections = current_app.extensions["shops"]
    return _end_conflict(lambda session, update_id, actor: apply_anyway(session, update_id, actor, connections), "conflicts.applied")


@bp.post("/conflicts/dismiss")
def conflict_dismiss():
    """« Ignorer »: nothing is ever sent for this update."""
    return _end_conflict(dismiss, "conflicts.dismissed")
