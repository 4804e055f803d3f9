"""Named leases in our store (the run lock, the push lock), and the store's own health check.

Each works in a short session of its own on the caller's store: a lease is taken, extended or released at once,
whatever the caller's transaction holds (a chunk in progress, or a session broken by a disk or network error),
and never commits the caller's work as a side effect."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from sqlalchemy import or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import SyncLock, utcnow


def _own_session(session: Session) -> Session:
    """A short session of its own on the same store as `session`."""
    return Session(session.get_bind())


def acquire_lock(session: Session, name: str, holder: str, ttl: timedelta) -> bool:
    """Take the named lease if it is free or expired. Atomic on SQLite and PostgreSQL (one conditional UPDATE)."""
    with _own_session(session) as own:
        if own.get(SyncLock, name) is None:
            try:
                with own.begin_nested():
                    own.add(SyncLock(name=name))
            except IntegrityError:
                pass  # another process created it first
        now = utcnow()
        current = own.execute(select(SyncLock.holder).where(SyncLock.name == name)).scalar()
        free = or_(SyncLock.holder.is_(None), SyncLock.expires_at < now)
        if current is not None and holder_is_dead(current):
            free = or_(free, SyncLock.holder == current)  # its process was killed: no need to wait for the expiry
        result = own.execute(
            update(SyncLock)
            .where(SyncLock.name == name, free)
            .values(holder=holder, acquired_at=now, expires_at=now + ttl)
            .execution_options(synchronize_session=False)
        )
        own.commit()
    return result.rowcount == 1


def holder_is_dead(holder: str) -> bool:
    """True when a lock holder ("host:pid:...") is a process of this host that no longer runs."""
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
    with _own_session(session) as own:
        result = own.execute(
            update(SyncLock)
            .where(SyncLock.name == name, SyncLock.holder == holder)
            .values(expires_at=utcnow() + ttl)
            .execution_options(synchronize_session=False)
        )
        own.commit()
    return result.rowcount == 1


def release_lock(session: Session, name: str, holder: str) -> None:
    with _own_session(session) as own:
        own.execute(
            update(SyncLock)
            .where(SyncLock.name == name, SyncLock.holder == holder)
            .values(holder=None, expires_at=None)
            .execution_options(synchronize_session=False)
        )
        own.commit()


def lock_holder(session: Session, name: str) -> str | None:
    # Columns, not the mapped row: a row the caller's session loaded earlier would not show a lease taken since.
    row = session.execute(select(SyncLock.holder, SyncLock.expires_at).where(SyncLock.name == name)).first()
    if row is None or row.holder is None or (row.expires_at and row.expires_at < utcnow()):
        return None
    return row.holder


def ping_store(session: Session) -> None:
    """Raises when our own store cannot answer (asked in a session of its own: the caller's stays usable)."""
    with _own_session(session) as own:
        own.execute(text("SELECT 1"))
