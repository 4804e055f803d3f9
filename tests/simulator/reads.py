"""GET and HEAD: which records, in what order, typed as PHP holds them (WebserviceRequest::executeEntityGetAndHead,
manageFilters, SQLUtils). Mixed into ShopSimulator."""

from __future__ import annotations

import re
from functools import lru_cache

from .php import did_you_mean, mysql_number, php_int, php_truthy
from .protocol import Ctx, Response, WsError
from .render import Entity, records_body, schema_body
from .resources import HOOKS
from .shopdata import Field, Resource

NUMERIC_KINDS = {"id", "int", "bool", "float"}


class Reads:
    def _records(self, res: Resource) -> list[dict]:
        return list(HOOKS[res.name].rows(self))

    def _find(self, res: Resource, record_id: int) -> dict | None:
        for record in self._records(res):
            if int(record["id"]) == record_id:
                return record
        return None

    # --- typing: what PHP holds ----------------------------------------------------------------------------

    def loaded_value(self, f: Field, value):
        """A field of an object loaded from the database, as PHP holds it. Recorded on 8.1.2 (orders_full_json,
        order_carriers_by_order_json): ids and integer fields are ints, booleans "0"/"1", decimals strings with
        their scale, a NULL column stays null. 1.7 (reference §4.1: `"current_state":"3"`): strings but the id."""
        if f.kind == "ml":
            return self._ml(value or "") if not isinstance(value, dict) else {lang: str(v) for lang, v in value.items()}
        if value is None:
            return None
        if f.kind == "id":
            return int(value)
        if f.kind == "int":
            return int(value) if self.version_tuple >= (8,) else str(php_int(value))
        if f.kind == "bool":
            return str(php_int(value))
        if f.kind == "float":
            return f"{float(value):.{f.decimals}f}"
        return str(value)

    def entity(self, res: Resource, record: dict, values: dict | None = None) -> Entity:
        """The object the output builder renders: loaded values (or `values`, what a write left in the object),
        getters evaluated now, associations read now."""
        if values is None:
            values = {f.name: self.loaded_value(f, record.get(f.name)) for f in res.fields if not f.getter}
        hooks = HOOKS[res.name]
        values = {**values, **{name: get(self, record) for name, get in hooks.getters.items()}}
        associations = {}
        for assoc in res.associations:
            items = hooks.associations[assoc.name](self, record)
            associations[assoc.name] = [{f.name: self.loaded_value(f, item.get(f.name)) for f in assoc.fields} for item in items]
        return Entity(values, associations)

    def _text(self, f: Field, value) -> str | dict:
        """The value as text, for filters and sorts (multilingual: a dict per language)."""
        if f.kind == "ml":
            value = value if isinstance(value, dict) else self._ml(value or "")
            return {lang: "" if v is None else str(v) for lang, v in value.items()}
        loaded = self.loaded_value(f, value)
        return "" if loaded is None else str(loaded)

    def _view(self, res: Resource, record: dict) -> dict:
        """The record's fields as text, each computed when a filter or a sort first asks for it (a list request
        filters every row of the table: rendering every field of every row cost more than the request)."""
        return _View(self, res, record)

    # --- GET -----------------------------------------------------------------------------------------------

    def _display(self, ctx: Ctx, res: Resource):
        """setFieldsToDisplay: "full", "minimum" or a list of field names (codes 35, 36; recorded:
        orders_display_unknown_field)."""
        display = ctx.params.get("display")
        if display is None:
            return None
        if not isinstance(display, str):
            display = ""
        if display in ("full", "minimum"):
            return display
        match = re.match(r"^\[(.*)\]$", display)
        names = [f.name for f in res.fields]
        if not match:
            raise WsError(
                400,
                36,
                "The 'display' syntax is wrong. You can set 'full' or '[field_1,field_2,field_3,...]'. These are available: " + ", ".join(names),
            )
        wanted = []
        for part in match.group(1).split(","):
            name = part.split("[")[0].strip()
            if "[" in part or name not in names:
                raise WsError(400, 35, f'Unable to display this field "{name}". However, these are available: ' + ", ".join(names))
            wanted.append(name)
        return wanted

    def _in_shop(self, ctx: Ctx, res: Resource, record: dict) -> bool:
        # Simulator choice (§11 leaves it open): orders (Hooks.in_context_shop) are restricted to the context shop,
        # in lists as in details (detail of an order of another shop → 404 code 131, as getFilteredObjectDetails does).
        return not HOOKS[res.name].in_context_shop or record.get("id_shop") in ctx.shop_ids

    def get(self, ctx: Ctx, res: Resource) -> Response:
        out = self.output(ctx)
        if ctx.url_id:
            display = self._display(ctx, res)
            record = self._find(res, php_int(ctx.url_id))
            if record is None:
                return self.ok(ctx, 404, None)  # recorded: order_404_xml / order_404_json, empty body
            if not self._in_shop(ctx, res, record):
                raise WsError(404, 131, f"This {res.class_name} ({record['id']}) does not exists on this shop")
            fields = "full" if display in (None, "full", "minimum") else display
            # WebserviceOutputJSON: with `display` in the query the record goes into the plural list
            # (recorded: order_2_json_display_full).
            return self.ok(ctx, 200, records_body(out, res, [self.entity(res, record)], fields, single=True))
        schema = ctx.params.get("schema")
        if schema is not None:
            if schema not in ("blank", "synopsis"):
                raise WsError(
                    400,
                    28,
                    "Please select a schema of type 'synopsis' to get the whole schema informations "
                    "(which fields are required, which kind of content...) or 'blank' to get an "
                    "empty schema to fill before using POST request",
                )
            return self.ok(ctx, 200, schema_body(out, res, schema))
        records = [r for r in self._records(res) if self._in_shop(ctx, res, r)]
        records = self._filter_sort_limit(ctx, res, records)
        display = self._display(ctx, res) or "minimum"
        entities = [self.entity(res, r) for r in records]
        return self.ok(ctx, 200, records_body(out, res, entities, display, single=False))

    def _filter_sort_limit(self, ctx: Ctx, res: Resource, records: list[dict]) -> list[dict]:
        """WebserviceRequest::manageFilters: filters (29-34), display (35-36), sort (37-38), limit (39), in that
        order; syntax and codes from the reference §2.4, the error texts and field lists as recorded
        (orders_filter_unknown_field, orders_filter_date_upd_without_date_param: the virtual shipping_number is
        listed, the dates are not)."""
        params = ctx.params
        date_on = php_truthy(params.get("date")) if isinstance(params.get("date"), str) else bool(params.get("date"))
        available = [f.name for f in res.fields if f.kind != "ml"]
        i18n = [f.name for f in res.fields if f.kind == "ml"]
        if not date_on:  # date_add / date_upd only with date=1 (§2.4; recorded: orders_filter_date_upd_gt)
            available = [name for name in available if name not in ("date_add", "date_upd")]
        conditions = _conditions(res, params.get("filter"), available, i18n)
        self._display(ctx, res)  # display errors come after filter errors
        sorts = _sorts(res, params.get("sort"), available, i18n)
        bounds = _bounds(params.get("limit"))

        # Recorded: orders_filter_id_or ([2|4]), orders_filter_date_upd_range_sorted ([from,to] + sort),
        # orders_sort_id_desc, orders_limit_0_2 / orders_limit_2 (offset,count / count).
        views = [(record, self._view(res, record)) for record in records]
        for f, expression in conditions:
            views = [(r, v) for r, v in views if self._matches(ctx, f, v[f.name], expression)]
        if not HOOKS[res.name].stored_order:
            # MySQL primary key order by default. Order states come as the recorded shop gave them (2..17, then
            # 1 and 10: order_states_full_json): the states in the order they were stored.
            views.sort(key=lambda rv: int(rv[0]["id"]))
        for f, descending in reversed(sorts):
            views.sort(key=lambda rv, f=f: self._sort_key(ctx, f, rv[1][f.name]), reverse=descending)
        records = [r for r, _ in views]
        if bounds is not None:
            offset, count = max(bounds[0], 0), max(bounds[1], 0)
            records = records[offset : offset + count]
        return records

    # SQLUtils::getSQLRetrieveFilter semantics (§2.4 filter syntax), evaluated in Python with MySQL-like
    # comparisons (case-insensitive collation, §2.4 "exact (case-insensitive)").
    def _matches(self, ctx: Ctx, f: Field, value, expression: str) -> bool:
        if f.kind == "ml":
            return any(self._matches_one(f, value.get(lang, ""), expression) for lang in ctx.languages)
        return self._matches_one(f, value, expression)

    def _matches_one(self, f: Field, value: str, expression: str) -> bool:
        match = re.match(r"^(.*)\[(.*)\](.*)$", expression)
        if not match:
            return self._eq(f, value, expression)
        before, inner, after = match.groups()
        if before == "%" or after == "%":
            return self._like(value, before + inner + after)
        if before == "" and after == "":
            if inner.find("|") > 0:
                if f.kind in NUMERIC_KINDS:  # what _eq compares, as one set look-up: [1|2|...|n] over every row
                    return mysql_number(value) in _numbers(inner)
                return any(self._eq(f, value, v) for v in inner.split("|"))
            interval = re.fullmatch(r"([\d.:\-\s]+),([\d.:\-\s]+)", inner)
            if interval:
                low, high = sorted(interval.groups(), key=lambda x: (mysql_number(x), x))
                return self._cmp(f, value, low) >= 0 and self._cmp(f, value, high) <= 0
            return self._eq(f, value, inner)
        if before == ">":
            return self._cmp(f, value, inner) > 0
        if before == "<":
            return self._cmp(f, value, inner) < 0
        if before == "!":
            return all(not self._eq(f, value, v) for v in inner.split("|"))
        return True  # any other prefix adds no SQL condition

    def _cmp(self, f: Field, value: str, other: str) -> int:
        if f.kind in NUMERIC_KINDS:
            a, b = mysql_number(value), mysql_number(other)
        else:  # case-insensitive collation, trailing spaces ignored (PAD SPACE)
            a, b = value.rstrip(" ").casefold(), other.rstrip(" ").casefold()
        return (a > b) - (a < b)

    def _eq(self, f: Field, value: str, other: str) -> bool:
        return self._cmp(f, value, other) == 0

    @staticmethod
    def _like(value: str, pattern: str) -> bool:
        regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
        return re.fullmatch(regex, value, re.I | re.S) is not None

    def _sort_key(self, ctx: Ctx, f: Field, value):
        if f.kind == "ml":
            value = value.get(ctx.languages[0], "")
        if f.kind in NUMERIC_KINDS:
            return (mysql_number(value), "")
        return (0.0, value.casefold())


def _conditions(res: Resource, filters, available: list[str], i18n: list[str]) -> list[tuple[Field, str]]:
    """`filter[field]=expression` pairs (codes 31-34); a multilingual field is filtered on its own list."""
    conditions = []
    if filters is None:
        return conditions
    if not isinstance(filters, dict):
        filters = {}
    for name, value in filters.items():
        if name in ("sort", "limit"):
            continue
        if name not in available:
            if isinstance(value, str) and value != "" and name in i18n:
                conditions.append((res.field(name), value))
                continue
            if isinstance(value, dict):
                raise WsError(400, 31, "There is no existing linked table for this resource")
            raise WsError(400, 32, did_you_mean("This filter does not exist", name, available))
        if value == "" or isinstance(value, dict):
            raise WsError(400, 33, f'The filter "{name}" is malformed.')
        f = res.field(name)
        if f.getter:  # §2.4: a field with a custom getter is not filterable
            raise WsError(400, 34, f'The field "{name}" is dynamic. It is not possible to filter GET query with this field.')
        conditions.append((f, value))
    return conditions


def _sorts(res: Resource, sort, available: list[str], i18n: list[str]) -> list[tuple[Field, bool]]:
    """`sort=field_ASC` or `[field_1_DESC,field_2_ASC]` (codes 37, 38): (field, descending) pairs."""
    sorts = []
    if sort is None:
        return sorts
    sort = sort if isinstance(sort, str) else ""
    match = re.match(r"^\[(.*)\]$", sort)
    for item in match.group(1).split(",") if match else [sort]:
        name, _, direction = item.rpartition("_")
        if not name or direction.upper() not in ("ASC", "DESC"):
            raise WsError(
                400,
                37,
                'The "sort" value has to be formed as this example: "field_ASC" or '
                "'[field_1_DESC,field_2_ASC,field_3_ASC,...]' (\"field\" has to be an available field)",
            )
        if name not in available and name not in i18n:
            raise WsError(
                400,
                38,
                "Unable to filter by this field. However, these are available: " + ", ".join(available) + ", for i18n fields:" + ", ".join(i18n),
            )
        sorts.append((res.field(name), direction.upper() == "DESC"))
    return sorts


def _bounds(limit) -> tuple[int, int] | None:
    """`limit=count` or `limit=offset,count` (code 39): (offset, count), unclamped."""
    if limit is None:
        return None
    parts = (limit if isinstance(limit, str) else "").split(",")
    if len(parts) > 2:
        raise WsError(400, 39, 'The "limit" value has to be formed as this example: "5,25" or "10"')
    return (0, php_int(parts[0])) if len(parts) == 1 else (php_int(parts[0]), php_int(parts[1]))


class _View(dict):
    """Reads._view: a field's text (or getter's value) computed on first use, the same as computed up front."""

    def __init__(self, sim, res: Resource, record: dict):
        super().__init__()
        self.sim, self.res, self.record = sim, res, record

    def __missing__(self, name: str):
        getter = HOOKS[self.res.name].getters.get(name)
        if getter is not None:
            value = getter(self.sim, self.record)
        else:
            fields = [f for f in self.res.fields if f.name == name and not f.getter]
            if not fields:
                raise KeyError(name)
            value = self.sim._text(fields[0], self.record.get(name))
        self[name] = value
        return value


@lru_cache(maxsize=256)
def _numbers(alternatives: str) -> frozenset[float]:
    return frozenset(mysql_number(value) for value in alternatives.split("|"))
