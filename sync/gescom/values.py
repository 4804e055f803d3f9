"""How a Sage value is read: leniently, so that one odd row cannot fail a whole statement.

Each reader is a function (`read_text`...), given to a statement as a column type with `type_coerce` (no CAST
reaches the SQL), or applied to a whole column of rows at once. A value that cannot be read becomes `Malformed`,
and the shop order it belongs to is skipped whole rather than guessed.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import String
from sqlalchemy.types import TypeDecorator

from sync.core.sage import as_date


class Malformed:
    """A value that could not be read (odd date, NULL where Sage never puts one)."""

    def __init__(self, raw):
        self.raw = raw

    def __repr__(self) -> str:
        return f"Malformed({self.raw!r})"


def read_text(value) -> str:
    """Text: "" for NULL, cp1252 bytes decoded, padding dropped."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("cp1252", "replace")
    return str(value).rstrip()  # char(n) columns come back padded


def read_day(value):
    """A Sage date read leniently: datetime, date or ISO text -> date; sentinels -> None; junk -> Malformed."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("/", "-"))
        except ValueError:
            return Malformed(value)
    try:
        return as_date(value)
    except ValueError:
        return Malformed(value)


def read_stamp(value) -> datetime | None:
    """A timestamp (GesCom's clock): datetime or None."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return None


def read_number(value):
    """A quantity: Decimal; NULL or junk -> Malformed."""
    if value is None:
        return Malformed(None)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Malformed(value)


def read_int(value):
    """An integer (type, cbMarq, flags): 0 for NULL; junk -> Malformed."""
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError):
        return Malformed(value)


def read_texts(values) -> list[str]:
    """`read_text` of each value; a str (what drivers give) read in place."""
    return [value.rstrip() if value.__class__ is str else read_text(value) for value in values]


def read_ints(values) -> list:
    """`read_int` of each value; an int (what drivers give) kept as it is."""
    return [value if value.__class__ is int else read_int(value) for value in values]


def read_days(values) -> list:
    """`read_day` of each value, each distinct value read once (a batch's rows share few dates)."""
    read: dict = {}
    return [read[value] if value in read else read.setdefault(value, read_day(value)) for value in values]


class _Lenient(TypeDecorator):
    """A reader as a column type, for `type_coerce`; `read_all` reads a whole column of a batch at once."""

    impl = String
    cache_ok = True
    read = staticmethod(read_text)

    def process_result_value(self, value, dialect):
        return self.read(value)

    @classmethod
    def read_all(cls, values) -> list:
        """`read` of each value of a column, in order."""
        return list(map(cls.read, values))


class TextValue(_Lenient):
    cache_ok = True
    read = staticmethod(read_text)
    read_all = staticmethod(read_texts)


class DayValue(_Lenient):
    cache_ok = True
    read = staticmethod(read_day)
    read_all = staticmethod(read_days)


class StampValue(_Lenient):
    cache_ok = True
    read = staticmethod(read_stamp)


class NumberValue(_Lenient):
    cache_ok = True
    read = staticmethod(read_number)


class IntValue(_Lenient):
    cache_ok = True
    read = staticmethod(read_int)
    read_all = staticmethod(read_ints)
