"""What goes wrong with GesCom, said so a person can act on it: broken (GesComError) or busy (GesComBusy)."""

from __future__ import annotations

import functools

from sqlalchemy.exc import SQLAlchemyError


class GesComError(RuntimeError):
    """GesCom cannot be read as needed (unreachable, table or column missing). The message says why."""


class GesComBusy(GesComError):
    """Rows are held by another transaction (a Sage user, a mass invoicing): the lock timeout ran out, or
    Sage's record lock refused the write. Nothing is wrong: retry later."""


# SQL Server: 1222 lock request time-out, 1205 deadlock victim; Sage's triggers raise its 80003 family when a
# record is locked in Sage. PostgreSQL: 55P03 lock_not_available, 40P01 deadlock. SQLite: database is locked.
_BUSY_CODES = {1222, 1205, 80003}
_BUSY_SQLSTATES = {"55P03", "40P01"}
_BUSY_WORDS = ("lock request time out", "database is locked", "database table is locked", "verrouill", "80003", "deadlock")


def is_busy(error: BaseException) -> bool:
    """Whether a database error says "held by another transaction" rather than "broken"."""
    original = getattr(error, "orig", error)
    if getattr(original, "sqlstate", None) in _BUSY_SQLSTATES or getattr(original, "pgcode", None) in _BUSY_SQLSTATES:
        return True
    for arg in getattr(original, "args", ()):
        if isinstance(arg, int) and arg in _BUSY_CODES:
            return True
    message = str(original).lower()
    return any(word in message for word in _BUSY_WORDS)


def reason_of(error: SQLAlchemyError) -> str:
    """The first line of what the driver said (no SQL, no parameters): for messages a person reads."""
    original = getattr(error, "orig", None)
    text = str(original if original is not None else error).strip().splitlines()
    return text[0] if text else error.__class__.__name__


def maps_errors(what: str):
    """Database errors inside an adapter method become GesComError ("GesCom <what> failed: ..."), or GesComBusy;
    the adapter's cached schema is dropped (`refresh()`), since a changed schema is a likely cause."""

    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except SQLAlchemyError as error:
                if is_busy(error):
                    raise GesComBusy(f"GesCom {what} waited too long for rows another transaction holds: {reason_of(error)}") from error
                self.refresh()
                raise GesComError(f"GesCom {what} failed: {reason_of(error)}") from error

        return wrapper

    return decorate


reads_gescom = maps_errors("query")
writes_gescom = maps_errors("write")
