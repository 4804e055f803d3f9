"""The stored settings document: read (defaults until saved once), typed for the services, saved under a version."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from models import Setting, utcnow
from sync.core.settings import Settings, default_settings, merge
from sync.gescom.settings_check import GesComSchema, check_settings

SETTINGS_ID = 1


def current_settings(session: Session) -> tuple[dict, int]:
    """The stored settings document (defaults until saved once) and its version: what an editor shows and changes."""
    row = session.get(Setting, SETTINGS_ID)
    if row is None:
        return default_settings(), 0
    # A document saved by an older release may lack newer keys: defaults fill them.
    return merge(default_settings(), row.document), row.version


def load_settings(session: Session) -> Settings:
    """The stored settings, typed: what the services read."""
    return Settings.from_document(current_settings(session)[0])


class VersionConflict(RuntimeError):
    """The settings changed since the editor read them."""


def save_settings(
    session: Session, patch: dict, schema: GesComSchema | None, *, expected_version: int | None = None, known_states: set[int] | None = None
) -> tuple[dict, int]:
    """Apply a partial document, check the whole, store it (the caller commits). Raises SettingsError or VersionConflict."""
    document, version = current_settings(session)
    if expected_version is not None and expected_version != version:
        raise VersionConflict(f"settings are at version {version}, not {expected_version}")
    saved, document = document, check_settings(merge(document, patch), schema, known_states).to_document()
    if document == saved:
        return saved, version  # nothing changes: no new version, so readers' ETags stay good
    row = session.get(Setting, SETTINGS_ID)
    if row is None:
        session.add(Setting(id=SETTINGS_ID, document=document, version=1))
    else:
        # Compare-and-set on the version so two editors cannot both win.
        result = session.execute(
            update(Setting)
            .where(Setting.id == SETTINGS_ID, Setting.version == version)
            .values(document=document, version=version + 1, updated_at=utcnow())
        )
        if result.rowcount != 1:
            raise VersionConflict("settings were changed by someone else meanwhile")
    session.flush()
    return document, version + 1
