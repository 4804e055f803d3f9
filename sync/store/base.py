"""Service functions over our own store that every face (CLI, API, scheduler) shares: settings and the run lock."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Setting, SyncLock, utcnow

from sync.core.settings import GesComSchema, default_settings, merge, validate

SETTINGS_ID = 1


def current_settings(session: Session) -> tuple[dict, int]:
    """The stored settings document (defaults until saved once) and its version."""
    row = session.get(Setting, SETTINGS_ID)
    if row is None:
        return default_settings(), 0
    # A document saved by an older release may lack newer keys: defaults fill them.
    return merge(default_settings(), row.document), row.version


class VersionConflict(RuntimeError):
    """The settings changed since the editor read them."""


def save_settings(session: Session, patch: dict, schema: GesComSchema | None, *, expected_version: int | None = None, known_states: set[int] | None = None) -> tuple[dict, int]:
    """Apply a partial document, validate the whole, store it. Raises SettingsError or VersionConflict."""
    document, version = current_settings(session)
    if expected_version is not None and expected_version != version:
        raise VersionConflict(f"settings are at version {version}, not {expected_version}")
    document = validate(merge(document, patch), schema, known_states)
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
            session.rollback()
            raise VersionConflict("settings were changed by someone else meanwhile")
    session.commit()
    return document, version + 1


def acquire_lock(session: Session, name: str, holder: str, ttl: timedelta) -> bool:
    """Take the named lease if it is free or expired. Atomic on SQLite and PostgreSQL (one conditional UPDATE)."""
    if session.get(SyncLock, name) is None:
        try:
            with session.begin_nested():
                session.add(SyncLock(name=name))
        except IntegrityError:
            pass  # another process created it first
    now = utcnow()
    current = session.execute(select(SyncLock.holder).where(SyncLock.name == name)).scalar()
    free = or_(SyncLock.holder.is_(None), SyncLock.expires_at < now)
    if current is not None and holder_is_dead(current):
        free = or_(free, SyncLock.holder == current)  # its process was killed: no need to wait for the expiry
    result = session.execute(
        update(SyncLock)
        .where(SyncLock.name == name, free)
        .values(holder=holder, acquired_at=now, expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


def holder_is_dead(holder: str) -> bool:
    """True when a lock holder ("host:pid:...") is a process of this host that no longer runs."""
    import os
    import socket

    parts = holder.split(":")
    if len(parts) < 2 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False  # another machine's, or not ours to judge: wait for the expiry
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def extend_lock(session: Session, name: str, holder: str, ttl: timedelta) -> bool:
    result = session.execute(
        update(SyncLock)
        .where(SyncLock.name == name, SyncLock.holder == holder)
        .values(expires_at=utcnow() + ttl)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


def release_lock(session: Session, name: str, holder: str) -> None:
    session.execute(
        update(SyncLock)
        .where(SyncLock.name == name, SyncLock.holder == holder)
        .values(holder=None, expires_at=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def lock_holder(session: Session, name: str) -> str | None:
    row = session.execute(select(SyncLock).where(SyncLock.name == name)).scalar_one_or_none()
    if row is None or row.holder is None or (row.expires_at and row.expires_at < utcnow()):
        return None
    return row.holder


def ping_store(session: Session) -> None:
    """Raises when our own store cannot answer."""
    from sqlalchemy import text

    try:
        session.execute(text("SELECT 1"))
    except Exception:
        session.rollback()
        raise
