"""The stored settings documents, one per shop: read (defaults until saved once), typed for the services, saved
under a version.

Three settings say where the Sage company keeps things, not how a shop is served: `link_field`,
`tracking.header_field` and `tracking.line_field` (`SHARED`). They are the same for every shop: they are set in the
default shop's document, every other shop's document shows them, and changing them there is refused. Changing
them in the default shop's document moves every shop's version on, so no ETag stays current for a changed document.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import Setting, utcnow
from models.shops import DEFAULT_SHOP_ID, Shop
from sync.core.settings import Settings, SettingsError, default_settings, merge
from sync.gescom.settings_check import GesComSchema, check_settings

SETTINGS_ID = DEFAULT_SHOP_ID  # the default shop's row: the one row of every release before shops
SHARED = (("link_field",), ("tracking", "header_field"), ("tracking", "line_field"))
SHARED_PROBLEM = "is the same for every shop (it says where the Sage company keeps it): change it in the default shop's settings"


def _value_at(document: dict, path: tuple[str, ...]):
    for name in path:
        if not isinstance(document, dict) or name not in document:
            return None
        document = document[name]
    return document


def _with_shared(document: dict, company: dict) -> dict:
    """`document` with the shared settings of `company` (the default shop's document)."""
    for path in SHARED:
        parent = document
        for name in path[:-1]:
            parent = parent.setdefault(name, {})
        parent[path[-1]] = _value_at(company, path)
    return document


def _document_of(row: Setting | None) -> dict:
    # A document saved by an older release may lack newer keys: defaults fill them.
    return default_settings() if row is None else merge(default_settings(), row.document)


def current_settings(session: Session, shop_id: int = SETTINGS_ID) -> tuple[dict, int]:
    """A shop's stored settings document (defaults until saved once) and its version: what an editor shows and
    changes. Another shop than the default one shows the default shop's shared settings."""
    row = session.get(Setting, shop_id)
    document = _document_of(row)
    if shop_id != SETTINGS_ID:
        document = _with_shared(document, _document_of(session.get(Setting, SETTINGS_ID)))
    return document, 0 if row is None else row.version


def load_settings(session: Session, shop_id: int = SETTINGS_ID) -> Settings:
    """A shop's stored settings, typed: what the services read."""
    return Settings.from_document(current_settings(session, shop_id)[0])


def all_settings(session: Session, shop_ids) -> dict[int, dict]:
    """The settings document of each of these shops (one query), as `current_settings` gives them."""
    rows = {row.id: row for row in session.scalars(select(Setting).where(Setting.id.in_({SETTINGS_ID, *shop_ids})))}
    company = _document_of(rows.get(SETTINGS_ID))
    return {shop_id: company if shop_id == SETTINGS_ID else _with_shared(_document_of(rows.get(shop_id)), company) for shop_id in shop_ids}


def _move_other_shops_on(session: Session) -> None:
    """Every other shop's document shows the shared settings: it changed too, so its version moves on (a shop never
    saved gets its row, at version 1: its ETag at version 0 must not stay current)."""
    session.execute(update(Setting).where(Setting.id != SETTINGS_ID).values(version=Setting.version + 1, updated_at=utcnow()))
    saved = set(session.scalars(select(Setting.id)))
    for shop_id in session.scalars(select(Shop.id).where(Shop.id != SETTINGS_ID)):
        if shop_id not in saved:
            session.add(Setting(id=shop_id, document={}, version=1))


class VersionConflict(RuntimeError):
    """The settings changed since the editor read them."""


def _refuse_shared_changes(document: dict, patch: dict) -> None:
    errors = {}
    for path in SHARED:
        if path[-1] in _parent_of(patch, path) and _value_at(patch, path) != _value_at(document, path):
            errors[".".join(path)] = SHARED_PROBLEM
    if errors:
        raise SettingsError(errors)


def _parent_of(document: dict, path: tuple[str, ...]) -> dict:
    for name in path[:-1]:
        document = document.get(name) if isinstance(document, dict) else None
    return document if isinstance(document, dict) else {}


def save_settings(
    session: Session,
    patch: dict,
    schema: GesComSchema | None,
    *,
    shop_id: int = SETTINGS_ID,
    expected_version: int | None = None,
    known_states: set[int] | None = None,
) -> tuple[dict, int]:
    """Apply a partial document to a shop's settings, check the whole, store it (the caller commits). Raises
    SettingsError or VersionConflict."""
    document, version = current_settings(session, shop_id)
    if expected_version is not None and expected_version != version:
        raise VersionConflict(f"settings are at version {version}, not {expected_version}")
    if shop_id != SETTINGS_ID and isinstance(patch, dict):
        _refuse_shared_changes(document, patch)
    saved, document = document, check_settings(merge(document, patch), schema, known_states).to_document()
    if document == saved:
        return saved, version  # nothing changes: no new version, so readers' ETags stay good
    row = session.get(Setting, shop_id)
    if row is None:
        session.add(Setting(id=shop_id, document=document, version=1))
    else:
        # Compare-and-set on the version so two editors cannot both win.
        result = session.execute(
            update(Setting)
            .where(Setting.id == shop_id, Setting.version == version)
            .values(document=document, version=version + 1, updated_at=utcnow())
        )
        if result.rowcount != 1:
            raise VersionConflict("settings were changed by someone else meanwhile")
    if shop_id == SETTINGS_ID and any(_value_at(saved, path) != _value_at(document, path) for path in SHARED):
        _move_other_shops_on(session)
    session.flush()
    return document, version + 1
