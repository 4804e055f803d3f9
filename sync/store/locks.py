"""Named leases in our store (the run lock, the push lock).

Each works in a short session of its own on the caller's store: a lease is taken, extended or released at once,
whatever the caller's transaction holds (a chunk in progress, or a session broken by a disk or network error),
and never commits the caller's work as a side effect. A lease the store would not let go of is remembered by its
exact holder, and this process's next acquire of that lease takes it over: a broken store never keeps it for the TTL."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from models import SyncLock, utcnow

log = logging.getLogger(__name__)

# (lease, holder) of the leases this process is done with but could not release (the store refused at that moment).
# Exact holders only: other threads of this process may hold the same lease, and their leases are theirs.
_done_with: set[tuple[str, str]] = set()
_done_with_guard = threading.Lock()


def _own_session(session: Session) -> Session:
    """A short session of its own on the same store as `session`."""
    return Session(session.get_bind())


def new_holder() -> str:
    """A holder name for one taking of a lease, unique to it: "host:pid:thread:random" (host and pid for holder_is_dead)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex}"


def acquire_lock(session: Session, name: str, holder: str, ttl: timedelta) -> bool:
    """Take the named lease if it is free, expired, its holder's process is dead, or this process is done with it.
    Atomic on SQLite and PostgreSQL (one conditional UPDATE): of two takers of one lease, one only gets it."""
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
        if current is not None and (_still_done_with(name, current) or holder_is_dead(current)):
            free = or_(free, SyncLock.holder == current)  # its run is over or its process was killed: no need to wait
        result = own.execute(
            update(SyncLock)
            .where(SyncLock.name == name, free)
            .values(holder=holder, acquired_at=now, expires_at=now + ttl)
            .execution_options(synchronize_session=False)
        )
        own.commit()
    if result.rowcount == 1:
        _forget(name, current)  # taken over, or released since: either way no longer ours to give back
    return result.rowcount == 1


def _still_done_with(name: str, current: str) -> bool:
    """Whether this process is done with the lease's `current` holder; the others it remembers lost the lease since."""
    with _done_with_guard:
        _done_with.difference_update({(lease, holder) for lease, holder in _done_with if lease == name and holder != current})
        return (name, current) in _done_with


def _forget(name: str, holder: str | None) -> None:
    with _done_with_guard:
        _done_with.discard((name, holder))


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


def release_lock(session: Session, name: str, holder: str) -> bool:
    """Give the lease back. When the store refuses, the holder is remembered as done with (see `acquire_lock`) and
    False returned: releasing is what a run does last, in a `finally`, and must not hide what went wrong before."""
    try:
        with _own_session(session) as own:
            own.execute(
                update(SyncLock)
                .where(SyncLock.name == name, SyncLock.holder == holder)
                .values(holder=None, expires_at=None)
                .execution_options(synchronize_session=False)
            )
            own.commit()
    except SQLAlchemyError as error:
        with _done_with_guard:
            _done_with.add((name, holder))
        log.error("the %s lock could not be released (this process takes it over at its next try): %s", name, _first_line(error))
        return False
    _forget(name, holder)
    return True


def _first_line(error: BaseException) -> str:
    """An SQLAlchemy error without the statement and parameters it carries on the next lines."""
    return (str(error).splitlines() or [error.__class__.__name__])[0]


def lock_holder(session: Session, name: str) -> str | None:
    # Columns, not the mapped row: a row the caller's session loaded earlier would not show a lease taken since.
    row = session.execute(select(SyncLock.holder, SyncLock.expires_at).where(SyncLock.name == name)).first()
    if row is None or row.holder is None or (row.expires_at and row.expires_at < utcnow()):
        return None
    return row.holder
