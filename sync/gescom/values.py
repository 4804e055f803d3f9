"""How a Sage value is read: leniently, so that one odd row cannot fail a whole statement.

Each reader is a column type given with `type_coerce` (no CAST reaches the SQL). A value that cannot be read
becomes `Malformed`, and the shop order it belongs to is skipped whole rather than guessed.
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


class TextValue(TypeDecorator):
    """Text: "" for NULL, cp1252 bytes decoded, padding dropped."""

    impl = String
    cache_ok = True

    def process_result_value(self, value, dialect):
        if value is None:
            return ""
        if isinstance(value, bytes):
            value = value.decode("cp1252", "replace")
        return str(value).rstrip()  # char(n) columns come back padded


class DayValue(TypeDecorator):
    """A Sage date read leniently: datetime, date or ISO text -> date; sentinels -> None; junk -> Malformed."""

    impl = String
    cache_ok = True

    def process_result_value(self, value, dialect):
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.strip().replace("/", "-"))
            except ValueError:
                return Malformed(value)
        try:
            return as_date(value)
        except ValueError:
            return Malformed(value)


class StampValue(TypeDecorator):
    """A timestamp (GesCom's clock): datetime or None."""

    impl = String
    cache_ok = True

    def process_result_value(self, value, dialect):
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.strip())
            except ValueError:
                return None
        if isinstance(value, datetime):
            return value.replace(tzinfo=None)
        return None


class NumberValue(TypeDecorator):
    """A quantity: Decimal; NULL or junk -> Malformed."""

    impl = String
    cache_ok = True

    def process_result_value(self, value, dialect):
        if value is None:
            return Malformed(None)
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return Malformed(value)


class IntValue(TypeDecorator):
    """An integer (type, cbMarq, flags): 0 for NULL; junk -> Malformed."""

    impl = String
    cache_ok = True

    def process_result_value(self, value, dialect):
        try:
            return int(value) if value is not None else 0
        except (TypeError, ValueError):
            return Malformed(value)
