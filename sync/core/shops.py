"""Shops: which PrestaShop shop a GesCom document belongs to, and the order keys that say so (issue 16).

Pure rules, no I/O. Values are compared the way SQL Server compares them on a Sage base: case-insensitively,
trailing spaces ignored. `validate_shops` refuses any set of shops where two could claim one document, and
`ShopClaims` answers, per document, which shop claims it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

from sync.core.sage import is_technical_column

KINDS = ("all", "souche", "tiers", "prefix", "field")
CODE_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,19}")
NAME_MAX = 100
SOUCHE_MAX = 32767  # DO_Souche is a smallint
TIERS_MAX = 17  # DO_Tiers is a varchar(17)
PREFIX_MAX = 20
TEXT_VALUE_MAX = 69
COLUMN_MAX = 128
URL_MAX = 255
KEY_SEPARATOR = ":"

_RULE_KEYS = ("kind", "field", "values")
_SHOP_KEYS = ("code", "name", "rule", "is_default", "id_shop", "prestashop_url")
_REQUIRED_SHOP_KEYS = ("code", "name", "rule")


class ShopError(ValueError):
    """An invalid shop or set of shops; `field` is the dotted path of the offending value (`errors` as SettingsError)."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        self.errors = {field: message}
        super().__init__(f"{field}: {message}")

    def within(self, path: str) -> ShopError:
        """The same error, its field seen from a containing document."""
        return ShopError(f"{path}.{self.field}", self.message)


# --- comparing values as SQL Server does ---------------------------------------------------------------------


def fold(text: str) -> str:
    """A text's comparison key: surrounding spaces dropped, case ignored."""
    return text.strip().casefold()


def value_key(kind: str, value) -> object:
    """The comparison key of a rule value of `kind`: two values with one key would claim the same documents."""
    if kind == "souche":
        return value
    if kind == "prefix":
        return value.casefold()
    return fold(value)


def souche_of(value) -> int | None:
    """A DO_Souche as read (int, Decimal, float or text), or None when it is no numbering series."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return int(value) if value.is_finite() and value == value.to_integral_value() else None
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return None


def text_of(value) -> str | None:
    """A header value as text (a number read from a numeric free field as its digits), or None for NULL."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("cp1252", "replace")
    if isinstance(value, (Decimal, float)) and souche_of(value) is not None:
        return str(int(value))
    return str(value)


# --- a rule --------------------------------------------------------------------------------------------------


def _souche_problem(value) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= SOUCHE_MAX:
        return None
    return f"must be a numbering series (DO_Souche): an integer from 0 to {SOUCHE_MAX}"


def _tiers_problem(value) -> str | None:
    if isinstance(value, str) and 1 <= len(value.strip()) <= TIERS_MAX:
        return None
    return f"must be a customer account (DO_Tiers): 1 to {TIERS_MAX} characters"


def _prefix_problem(value) -> str | None:
    if isinstance(value, str) and 1 <= len(value) <= PREFIX_MAX and value == value.strip():
        return None
    return f"must be the start of the link value (e.g. B2B-): 1 to {PREFIX_MAX} characters, no leading or trailing spaces"


def _field_value_problem(value) -> str | None:
    if isinstance(value, str) and 1 <= len(value.strip()) <= TEXT_VALUE_MAX:
        return None
    return f"must be a text of 1 to {TEXT_VALUE_MAX} characters"


_VALUE_PROBLEMS = {"souche": _souche_problem, "tiers": _tiers_problem, "prefix": _prefix_problem, "field": _field_value_problem}


def _column_problem(name) -> str | None:
    if not isinstance(name, str) or not 1 <= len(name) <= COLUMN_MAX or name != name.strip():
        return f"must be the name of a F_DOCENTETE column (1 to {COLUMN_MAX} characters, no leading or trailing spaces)"
    if is_technical_column(name):
        return f"{name} is one of Sage's technical columns (cb...): choose a header field or a free field"
    return None


def _check_rule(rule: ShopRule) -> None:
    if rule.kind not in KINDS:
        raise ShopError("kind", f"must be one of {', '.join(KINDS)}")
    if rule.kind == "field":
        problem = _column_problem(rule.field)
        if problem:
            raise ShopError("field", problem)
    elif rule.field is not None:
        raise ShopError("field", "is only for the kind 'field' (must be null)")
    if rule.kind == "all":
        if rule.values:
            raise ShopError("values", "must be empty: 'all' claims every document")
        return
    if not rule.values:
        raise ShopError("values", "must list at least one value")
    if rule.kind == "prefix" and len(rule.values) != 1:
        raise ShopError("values", "must hold exactly one prefix")
    seen: dict[object, int] = {}
    for position, value in enumerate(rule.values):
        problem = _VALUE_PROBLEMS[rule.kind](value)
        if problem:
            raise ShopError(f"values.{position}", problem)
        key = value_key(rule.kind, value)
        if key in seen:
            raise ShopError(f"values.{position}", f"{value!r} repeats values.{seen[key]} (compared ignoring case and trailing spaces)")
        seen[key] = position


@dataclass(frozen=True)
class ShopRule:
    """How Sage tells this shop's documents apart: `kind` "all", "souche", "tiers", "prefix" or "field" (then
    `field` names the F_DOCENTETE column), and the `values` that claim a document."""

    kind: str
    values: tuple = ()
    field: str | None = None

    def __post_init__(self):
        if isinstance(self.values, list):
            object.__setattr__(self, "values", tuple(self.values))
        if not isinstance(self.values, tuple):
            raise ShopError("values", "must be a list")
        _check_rule(self)

    @classmethod
    def from_document(cls, document) -> ShopRule:
        """The rule a document describes. Raises ShopError naming the field."""
        if not isinstance(document, Mapping):
            raise ShopError("rule", "must be an object")
        _refuse_unknown(document, _RULE_KEYS)
        if "kind" not in document:
            raise ShopError("kind", f"is required: one of {', '.join(KINDS)}")
        values = document.get("values", [])
        if not isinstance(values, (list, tuple)):
            raise ShopError("values", "must be a list")
        return cls(kind=document["kind"], values=tuple(values), field=document.get("field"))

    def to_document(self) -> dict:
        return {"kind": self.kind, "field": self.field, "values": list(self.values)}

    def columns(self) -> list[str]:
        """The F_DOCENTETE columns this rule reads."""
        return {"souche": ["DO_Souche"], "tiers": ["DO_Tiers"], "field": [self.field]}.get(self.kind, [])


def _refuse_unknown(document: Mapping, known: Sequence[str]) -> None:
    for key in document:
        if key not in known:
            raise ShopError(str(key), f"unknown key; known: {', '.join(known)}")


# --- a shop --------------------------------------------------------------------------------------------------


def _is_http_url(url) -> bool:
    if not isinstance(url, str) or not url or len(url) > URL_MAX or url != url.strip():
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is no number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and "@" not in parts.netloc and not parts.query and not parts.fragment


def _check_shop(shop: Shop) -> None:
    if not isinstance(shop.code, str) or not CODE_PATTERN.fullmatch(shop.code):
        raise ShopError("code", "must be 1 to 20 characters: a lowercase letter, then lowercase letters, digits, '_' or '-'")
    if not isinstance(shop.name, str) or not 1 <= len(shop.name.strip()) <= NAME_MAX:
        raise ShopError("name", f"must be 1 to {NAME_MAX} characters")
    if not isinstance(shop.rule, ShopRule):
        raise ShopError("rule", "must be a shop rule")
    if not isinstance(shop.is_default, bool):
        raise ShopError("is_default", "must be true or false")
    if shop.id_shop is not None and (not isinstance(shop.id_shop, int) or isinstance(shop.id_shop, bool) or shop.id_shop < 1):
        raise ShopError("id_shop", "must be a PrestaShop shop id (a positive integer) or null")
    if shop.prestashop_url is not None and not _is_http_url(shop.prestashop_url):
        raise ShopError("prestashop_url", f"must be the shop's http(s):// address (at most {URL_MAX} characters, no user, query or fragment) or null")


@dataclass(frozen=True)
class Shop:
    """A PrestaShop shop on the Sage company: its stable `code` (in order keys and URLs), its `name`, the `rule`
    that claims its documents, whether it is the default shop, its `id_shop` in a multistore installation and the
    address of its webservice (push mode)."""

    code: str
    name: str
    rule: ShopRule
    is_default: bool = False
    id_shop: int | None = None
    prestashop_url: str | None = None

    def __post_init__(self):
        _check_shop(self)

    @classmethod
    def from_document(cls, document) -> Shop:
        """The shop a document describes. Raises ShopError naming the field."""
        if not isinstance(document, Mapping):
            raise ShopError("shop", "must be an object")
        _refuse_unknown(document, _SHOP_KEYS)
        for key in _REQUIRED_SHOP_KEYS:
            if key not in document:
                raise ShopError(key, "is required")
        try:
            rule = ShopRule.from_document(document["rule"])
        except ShopError as error:
            raise (error if error.field == "rule" else error.within("rule")) from None
        return cls(
            code=document["code"],
            name=document["name"],
            rule=rule,
            is_default=document.get("is_default", False),
            id_shop=document.get("id_shop"),
            prestashop_url=document.get("prestashop_url"),
        )

    def to_document(self) -> dict:
        return {
            "code": self.code,
            "name": self.name,
            "rule": self.rule.to_document(),
            "is_default": self.is_default,
            "id_shop": self.id_shop,
            "prestashop_url": self.prestashop_url,
        }


# --- a set of shops ------------------------------------------------------------------------------------------


def validate_shops(shops: Iterable[Shop]) -> None:
    """Raises ShopError (field `shops.N....`) unless at most one of these shops can claim any document."""
    shops = list(shops)
    if not shops:
        raise ShopError("shops", "must list at least one shop")
    for position, shop in enumerate(shops):
        if not isinstance(shop, Shop):
            raise ShopError(f"shops.{position}", "must be a shop")
    _check_codes(shops)
    _check_default(shops)
    _check_discriminator(shops)
    _check_values(shops)
    if shops[0].rule.kind == "prefix":
        _check_prefixes(shops)
    _check_installations(shops)


def _check_codes(shops: list[Shop]) -> None:
    seen: dict[str, int] = {}
    for position, shop in enumerate(shops):
        if shop.code in seen:
            raise ShopError(f"shops.{position}.code", f"'{shop.code}' is already the code of shops.{seen[shop.code]}")
        seen[shop.code] = position


def _check_default(shops: list[Shop]) -> None:
    defaults = [position for position, shop in enumerate(shops) if shop.is_default]
    if not defaults:
        raise ShopError("shops", "one shop must be the default (its order keys stay the plain link value)")
    if len(defaults) > 1:
        raise ShopError(f"shops.{defaults[1]}.is_default", f"only one shop can be the default; '{shops[defaults[0]].code}' already is")


def _check_discriminator(shops: list[Shop]) -> None:
    first = shops[0]
    for position, shop in enumerate(shops):
        if shop.rule.kind == "all" and len(shops) > 1:
            raise ShopError(f"shops.{position}.rule.kind", "'all' claims every document: only a shop alone can use it")
        if shop.rule.kind != first.rule.kind:
            raise ShopError(
                f"shops.{position}.rule.kind",
                f"must be '{first.rule.kind}' like shop '{first.code}': every shop must tell documents apart the same way, "
                "since with two kinds (say a numbering series and a customer account) one document could match two shops",
            )
        if first.rule.kind == "field" and shop.rule.field.casefold() != first.rule.field.casefold():
            raise ShopError(
                f"shops.{position}.rule.field",
                f"must be {first.rule.field} like shop '{first.code}': with two fields one document could match two shops",
            )


def _check_values(shops: list[Shop]) -> None:
    owners: dict[object, Shop] = {}
    for position, shop in enumerate(shops):
        for index, value in enumerate(shop.rule.values):
            key = value_key(shop.rule.kind, value)
            owner = owners.setdefault(key, shop)
            if owner is not shop:
                raise ShopError(
                    f"shops.{position}.rule.values.{index}",
                    f"{value!r} is already claimed by shop '{owner.code}' (compared ignoring case and trailing spaces)",
                )


def _check_prefixes(shops: list[Shop]) -> None:
    for position, shop in enumerate(shops):
        prefix = shop.rule.values[0]
        for other in shops:
            if other is not shop and prefix.casefold().startswith(other.rule.values[0].casefold()):
                raise ShopError(
                    f"shops.{position}.rule.values.0",
                    f"{prefix!r} starts with {other.rule.values[0]!r}, the prefix of shop '{other.code}': a link value could match both",
                )


def installation_of(url: str) -> tuple:
    """What tells PrestaShop installations apart in a webservice address (host, port, path; not http/https, nor the
    webservice's own `/api` at the end: `https://shop.example` and `https://shop.example/api/` are one installation)."""
    parts = urlsplit(url)
    port = parts.port if parts.port not in (80, 443) else None
    return parts.hostname.lower(), port, parts.path.rstrip("/").removesuffix("/api")


def _check_installations(shops: list[Shop]) -> None:
    installations: dict[tuple, list[int]] = {}
    for position, shop in enumerate(shops):
        if shop.prestashop_url is not None:
            installations.setdefault(installation_of(shop.prestashop_url), []).append(position)
    for positions in installations.values():
        if len(positions) < 2:
            continue
        codes = ", ".join(f"'{shops[position].code}'" for position in positions)
        owners: dict[int, str] = {}
        for position in positions:
            shop = shops[position]
            if shop.id_shop is None:
                raise ShopError(f"shops.{position}.id_shop", f"is required: shops {codes} share one PrestaShop installation (multistore)")
            owner = owners.setdefault(shop.id_shop, shop.code)
            if owner != shop.code:
                raise ShopError(f"shops.{position}.id_shop", f"{shop.id_shop} is already the id_shop of shop '{owner}' on the same installation")


# --- claiming documents --------------------------------------------------------------------------------------


class ShopClaims:
    """Which shop claims a document, for a valid set of shops (checked here); built once per run, asked per document."""

    def __init__(self, shops: Iterable[Shop]):
        self.shops = tuple(shops)
        validate_shops(self.shops)
        rule = self.shops[0].rule
        self.kind = rule.kind
        self.columns = rule.columns()
        self.default = next(shop for shop in self.shops if shop.is_default)
        self.codes = frozenset(shop.code for shop in self.shops if not shop.is_default)
        self._by_key = {value_key(shop.rule.kind, value): shop for shop in self.shops for value in shop.rule.values}
        self._prefixes = tuple((len(shop.rule.values[0]), shop.rule.values[0].casefold(), shop) for shop in self.shops if shop.rule.kind == "prefix")

    def claim(self, header: Mapping[str, object], link_value: str) -> tuple[Shop, str] | None:
        """The shop that claims a document (`header`: at least `self.columns`, as read) and the link value as that
        shop sees it, or None when no shop does. A default shop's link value that would read as another shop's order
        key (`b2c:4711` while shop b2c exists) is not claimed: its order key would be ambiguous."""
        if self.kind == "prefix":
            return self._claim_by_prefix(link_value)
        if self.kind == "all":
            shop = self.default
        elif self.kind == "souche":
            shop = self._by_key.get(souche_of(header[self.columns[0]]))
        else:
            text = text_of(header[self.columns[0]])
            shop = None if text is None else self._by_key.get(fold(text))
        return None if shop is None else self._seen_by(shop, link_value.rstrip(" "))

    def _claim_by_prefix(self, link_value: str) -> tuple[Shop, str] | None:
        for length, prefix, shop in self._prefixes:
            if link_value[:length].casefold() == prefix:
                return self._seen_by(shop, link_value[length:].strip(" "))
        return None

    def _seen_by(self, shop: Shop, link_value: str) -> tuple[Shop, str] | None:
        if not link_value:
            return None
        if shop.is_default and split_order_key(link_value, self.codes)[0] is not None:
            return None
        return shop, link_value


def claim(shops: Iterable[Shop], header: Mapping[str, object], link_value: str) -> tuple[Shop, str] | None:
    """`ShopClaims(shops).claim(header, link_value)`; build a ShopClaims once to claim many documents."""
    return ShopClaims(shops).claim(header, link_value)


# --- order keys ----------------------------------------------------------------------------------------------


def order_key_of(shop: Shop, link_value: str) -> str:
    """A shop order's key: the link value itself for the default shop (as before shops existed), else `code:link`."""
    return link_value if shop.is_default else f"{shop.code}{KEY_SEPARATOR}{link_value}"


def split_order_key(key: str, codes: Collection[str]) -> tuple[str | None, str]:
    """(shop code, link value) of an order key, given the codes of the non-default shops; code None: the default
    shop's (whose link value may itself hold a ':')."""
    code, separator, link_value = key.partition(KEY_SEPARATOR)
    if separator and code in codes:
        return code, link_value
    return None, key
