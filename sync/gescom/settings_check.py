"""The settings checked against the customer's own GesCom: every field they name must be a real text column of
F_DOCENTETE or F_DOCLIGNE, never one of Sage's technical cb… columns, and is kept as GesCom spells it. So nothing
reaches SQL unless it is a real column of the customer's base.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from sync.core.sage import is_technical_column
from sync.core.settings import Settings, SettingsError, check_document
from sync.core.shops import ShopError


@dataclass(frozen=True)
class Column:
    name: str
    is_text: bool
    length: int | None = None
    free: bool = False  # an "information libre" declared in cbSysLibre


@dataclass(frozen=True)
class GesComSchema:
    """The columns of the customer's F_DOCENTETE and F_DOCLIGNE, as reflected."""

    header: dict[str, Column] = field(default_factory=dict)
    line: dict[str, Column] = field(default_factory=dict)


# The settings that name a column, and its table.
COLUMN_SETTINGS = (("link_field", "F_DOCENTETE"), ("tracking.header_field", "F_DOCENTETE"), ("tracking.line_field", "F_DOCLIGNE"))


def check_settings(document: dict, schema: GesComSchema | None, known_states: set[int] | None = None) -> Settings:
    """The settings `document` describes, each column named as GesCom spells it. Raises SettingsError naming each
    field at fault. Without a schema (GesCom unreachable) the field names cannot be checked, and are refused."""
    document, errors = check_document(document, known_states)
    column_errors: dict[str, str] = {}
    for path, table in COLUMN_SETTINGS:
        parent, name = _parent(document, path)
        if path in errors or parent is None or parent.get(name) is None:
            continue  # refused by its shape already, or not set
        columns = None if schema is None else schema.header if table == "F_DOCENTETE" else schema.line
        try:
            parent[name] = real_column(parent[name], table, columns)
        except ValueError as problem:
            column_errors[path] = str(problem)
    errors = {**column_errors, **errors}
    if errors:
        raise SettingsError(errors)
    return Settings.from_document(document)


def _parent(document: dict, path: str) -> tuple[dict | None, str]:
    """The object holding the value at `path`, and the value's name in it (None when the path is broken)."""
    *parents, name = path.split(".")
    for parent in parents:
        document = document.get(parent)
        if not isinstance(document, dict):
            return None, name
    return document, name


def real_column(value: str, table: str, columns: dict[str, Column] | None) -> str:
    """GesCom's spelling of the text column `value` of `table`; ValueError saying why when there is none."""
    if not value.strip():
        raise ValueError(f"must be the name of a {table} column")
    if columns is None:
        raise ValueError("GesCom is unreachable: field names cannot be checked now")
    column = _lookup(columns, value)
    if column is None or is_technical_column(column.name) or not column.is_text:
        candidates = sorted(name for name, c in columns.items() if c.is_text and not is_technical_column(name))
        close = difflib.get_close_matches(value, candidates, n=3, cutoff=0.6)
        reason = "is not a text column" if column is not None else "does not exist"
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"{value!r} {reason} in {table}.{hint} Text columns that exist: {', '.join(candidates)}")
    return column.name


def _lookup(columns: dict[str, Column], name: str) -> Column | None:
    # SQL Server's usual collation is case-insensitive: accept "do_coord01" but store the real spelling.
    if name in columns:
        return columns[name]
    lowered = {key.lower(): value for key, value in columns.items()}
    return lowered.get(name.lower())


def gescom_column(columns: dict, name: str) -> str:
    """GesCom's spelling of the F_DOCENTETE column `name` (compared as SQL Server does, ignoring case); ShopError
    (field `rule.field`) when there is none, or only one of Sage's technical cb... columns."""
    found = name if name in columns else {column.casefold(): column for column in columns}.get(name.casefold())
    if is_technical_column(name) or (found is not None and is_technical_column(found)):
        raise ShopError("rule.field", f"{name} is one of Sage's technical columns (cb...): choose a header field or a free field")
    if found is None:
        candidates = sorted(column for column in columns if not is_technical_column(column))
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        free = sorted(column.name for column in columns.values() if column.free and not is_technical_column(column.name))
        raise ShopError("rule.field", f"{name!r} does not exist in F_DOCENTETE.{hint} Its free fields: {', '.join(free) or 'none'}")
    return found
