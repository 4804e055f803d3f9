"""Shops: rules that claim GesCom documents, their validation, and order keys (pure, no database)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.core.shops import Shop, ShopClaims, ShopError, ShopRule, claim, order_key_of, split_order_key, validate_shops


def shop(code: str, kind: str, values=(), field: str | None = None, **extra) -> Shop:
    return Shop(code=code, name=code.upper(), rule=ShopRule(kind, tuple(values), field), **extra)


def error_of(call, *args) -> tuple[str, str]:
    with pytest.raises(ShopError) as caught:
        call(*args)
    return caught.value.field, caught.value.message


# --- each kind claims and refuses ------------------------------------------------------------------------------


def test_a_single_shop_with_rule_all_claims_every_document():
    alone = shop("web", "all", is_default=True)
    assert claim([alone], {}, "4711") == (alone, "4711")
    assert claim([alone], {"DO_Souche": 3}, "4711  ") == (alone, "4711")


def test_souche_claims_by_numbering_series_as_int_decimal_or_text():
    b2c, b2b = shop("b2c", "souche", [0], is_default=True), shop("b2b", "souche", [1, 2])
    claims = ShopClaims([b2c, b2b])
    assert claims.columns == ["DO_Souche"]
    assert claims.claim({"DO_Souche": 0}, "4711") == (b2c, "4711")
    assert claims.claim({"DO_Souche": Decimal("2")}, "4711") == (b2b, "4711")
    assert claims.claim({"DO_Souche": Decimal("1.000")}, "12") == (b2b, "12")
    assert claims.claim({"DO_Souche": " 1 "}, "12") == (b2b, "12")
    assert claims.claim({"DO_Souche": 2.0}, "12") == (b2b, "12")


@pytest.mark.parametrize("souche", [3, None, Decimal("1.5"), Decimal("NaN"), True, "x", "", -1, 1.5])
def test_souche_no_shop_lists_claims_nothing(souche):
    claims = ShopClaims([shop("b2c", "souche", [0], is_default=True), shop("b2b", "souche", [1, 2])])
    assert claims.claim({"DO_Souche": souche}, "4711") is None


def test_tiers_compares_like_sql_server_case_and_trailing_spaces_ignored():
    b2c, b2b = shop("b2c", "tiers", ["CWEB"], is_default=True), shop("b2b", "tiers", ["pro001", "PRO002 "])
    claims = ShopClaims([b2c, b2b])
    assert claims.columns == ["DO_Tiers"]
    assert claims.claim({"DO_Tiers": "cweb   "}, "4711") == (b2c, "4711")
    assert claims.claim({"DO_Tiers": "PRO001"}, "9") == (b2b, "9")
    assert claims.claim({"DO_Tiers": "pro002"}, "9") == (b2b, "9")
    assert claims.claim({"DO_Tiers": "PRO003"}, "9") is None
    assert claims.claim({"DO_Tiers": None}, "9") is None
    assert claims.claim({"DO_Tiers": "CWEBX"}, "9") is None


def test_field_claims_by_a_free_field_with_spaces_and_accents_in_its_name():
    fr = shop("fr", "field", ["FR"], field="Boutique Pays é", is_default=True)
    be = shop("be", "field", ["Belgique", "BE"], field="Boutique Pays é")
    claims = ShopClaims([fr, be])
    assert claims.columns == ["Boutique Pays é"]
    assert claims.claim({"Boutique Pays é": "fr  "}, "4711") == (fr, "4711")
    assert claims.claim({"Boutique Pays é": "BELGIQUE"}, "4711") == (be, "4711")
    assert claims.claim({"Boutique Pays é": None}, "4711") is None
    assert claims.claim({"Boutique Pays é": "DE"}, "4711") is None


def test_field_reads_a_numeric_free_field_as_its_digits():
    one, two = shop("one", "field", ["1"], field="Magasin", is_default=True), shop("two", "field", ["2"], field="Magasin")
    claims = ShopClaims([one, two])
    assert claims.claim({"Magasin": Decimal("2.000000")}, "8") == (two, "8")
    assert claims.claim({"Magasin": 1}, "8") == (one, "8")
    assert claims.claim({"Magasin": 1.5}, "8") is None


def test_prefix_claims_case_insensitively_and_the_shop_sees_the_rest_of_the_link_value():
    web, b2b = shop("web", "prefix", ["WEB-"], is_default=True), shop("b2b", "prefix", ["B2B-"])
    claims = ShopClaims([web, b2b])
    assert claims.columns == []
    assert claims.claim({}, "B2B-4711") == (b2b, "4711")
    assert claims.claim({}, "b2b- 4711  ") == (b2b, "4711")
    assert claims.claim({}, "web-12") == (web, "12")
    assert claims.claim({}, "4711") is None
    assert claims.claim({}, "B2B4711") is None
    assert claims.claim({}, "B2B-") is None  # no order number after the prefix


def test_a_header_missing_the_rules_column_is_a_programming_error_not_a_silent_refusal():
    claims = ShopClaims([shop("b2c", "souche", [0], is_default=True)])
    with pytest.raises(KeyError):
        claims.claim({"DO_Tiers": "X"}, "1")


def test_a_default_link_value_that_would_read_as_another_shops_order_key_is_not_claimed():
    claims = ShopClaims([shop("b2c", "souche", [0], is_default=True), shop("b2b", "souche", [1])])
    assert claims.claim({"DO_Souche": 0}, "b2b:4711") is None
    assert claims.claim({"DO_Souche": 0}, "AB:4711")[1] == "AB:4711"
    assert claims.claim({"DO_Souche": 1}, "b2b:4711")[1] == "b2b:4711"


# --- rules and shops as documents ----------------------------------------------------------------------------


def test_documents_round_trip():
    document = {
        "code": "b2b",
        "name": "Boutique pro",
        "rule": {"kind": "field", "field": "Boutique", "values": ["PRO"]},
        "is_default": False,
        "id_shop": 2,
        "prestashop_url": "https://shop.example.com/",
    }
    parsed = Shop.from_document(document)
    assert parsed.rule == ShopRule("field", ("PRO",), "Boutique") and parsed.rule.columns() == ["Boutique"]
    assert parsed.to_document() == document
    assert Shop.from_document({"code": "web", "name": "Web", "rule": {"kind": "all"}}).to_document() == {
        "code": "web",
        "name": "Web",
        "rule": {"kind": "all", "field": None, "values": []},
        "is_default": False,
        "id_shop": None,
        "prestashop_url": None,
    }
    assert ShopRule("souche", [1, 2]).values == (1, 2) and ShopRule("prefix", ["B2B-"]).columns() == []


VALID = {"code": "b2b", "name": "Pro", "rule": {"kind": "souche", "values": [1]}}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"code": "B2B"}, "code"),
        ({"code": "2b"}, "code"),
        ({"code": "b2b:x"}, "code"),
        ({"code": "b" * 21}, "code"),
        ({"code": "b2b\n"}, "code"),
        ({"code": None}, "code"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"is_default": 1}, "is_default"),
        ({"id_shop": 0}, "id_shop"),
        ({"id_shop": True}, "id_shop"),
        ({"id_shop": "2"}, "id_shop"),
        ({"prestashop_url": "ftp://shop.example.com"}, "prestashop_url"),
        ({"prestashop_url": "https://user:secret@shop.example.com"}, "prestashop_url"),
        ({"prestashop_url": "https://shop.example.com/?ws_key=x"}, "prestashop_url"),
        ({"prestashop_url": "https://shop.example.com:port"}, "prestashop_url"),
        ({"prestashop_url": " https://shop.example.com"}, "prestashop_url"),
        ({"prestashop_url": "https://"}, "prestashop_url"),
        ({"colour": "red"}, "colour"),
        ({"rule": []}, "rule"),
        ({"rule": {"values": [1]}}, "rule.kind"),
        ({"rule": {"kind": "country", "values": ["FR"]}}, "rule.kind"),
        ({"rule": {"kind": "souche", "values": 1}}, "rule.values"),
        ({"rule": {"kind": "souche", "values": []}}, "rule.values"),
        ({"rule": {"kind": "souche", "values": [1, -1]}}, "rule.values.1"),
        ({"rule": {"kind": "souche", "values": [32768]}}, "rule.values.0"),
        ({"rule": {"kind": "souche", "values": [True]}}, "rule.values.0"),
        ({"rule": {"kind": "souche", "values": ["1"]}}, "rule.values.0"),
        ({"rule": {"kind": "souche", "values": [1, 1]}}, "rule.values.1"),
        ({"rule": {"kind": "souche", "values": [1], "field": "DO_Souche"}}, "rule.field"),
        ({"rule": {"kind": "souche", "values": [1], "extra": 1}}, "rule.extra"),
        ({"rule": {"kind": "tiers", "values": ["C" * 18]}}, "rule.values.0"),
        ({"rule": {"kind": "tiers", "values": ["  "]}}, "rule.values.0"),
        ({"rule": {"kind": "tiers", "values": ["CWEB", "cweb "]}}, "rule.values.1"),
        ({"rule": {"kind": "prefix", "values": ["A-", "B-"]}}, "rule.values"),
        ({"rule": {"kind": "prefix", "values": [""]}}, "rule.values.0"),
        ({"rule": {"kind": "prefix", "values": ["B2B- "]}}, "rule.values.0"),
        ({"rule": {"kind": "prefix", "values": ["P" * 21]}}, "rule.values.0"),
        ({"rule": {"kind": "field", "values": ["FR"]}}, "rule.field"),
        ({"rule": {"kind": "field", "field": "", "values": ["FR"]}}, "rule.field"),
        ({"rule": {"kind": "field", "field": "cbDO_Piece", "values": ["FR"]}}, "rule.field"),
        ({"rule": {"kind": "field", "field": "Boutique", "values": [3]}}, "rule.values.0"),
        ({"rule": {"kind": "field", "field": "Boutique", "values": ["x" * 70]}}, "rule.values.0"),
        ({"rule": {"kind": "all", "values": [1]}}, "rule.values"),
    ],
)
def test_every_invalid_shop_document_names_its_field(change, field):
    assert error_of(Shop.from_document, {**VALID, **change})[0] == field


@pytest.mark.parametrize("missing", ["code", "name", "rule"])
def test_required_keys_are_named(missing):
    document = {key: value for key, value in VALID.items() if key != missing}
    assert error_of(Shop.from_document, document) == (missing, "is required")
    assert error_of(Shop.from_document, "b2b") == ("shop", "must be an object")


def test_errors_read_like_settings_errors():
    error = pytest.raises(ShopError, Shop.from_document, {**VALID, "id_shop": 0}).value
    assert isinstance(error, ValueError) and error.errors == {"id_shop": error.message}
    assert str(error).startswith("id_shop: must be a PrestaShop shop id")


# --- sets of shops -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shops, field, words",
    [
        ([], "shops", "at least one"),
        ([shop("a", "souche", [0], is_default=True), shop("a", "souche", [1])], "shops.1.code", "already the code"),
        ([shop("a", "souche", [0]), shop("b", "souche", [1])], "shops", "default"),
        ([shop("a", "souche", [0], is_default=True), shop("b", "souche", [1], is_default=True)], "shops.1.is_default", "'a' already"),
        ([shop("a", "all", is_default=True), shop("b", "souche", [1])], "shops.0.rule.kind", "alone"),
        ([shop("a", "souche", [0], is_default=True), shop("b", "tiers", ["PRO"])], "shops.1.rule.kind", "one document could match two shops"),
        (
            [shop("a", "field", ["FR"], "Boutique", is_default=True), shop("b", "field", ["BE"], "Pays")],
            "shops.1.rule.field",
            "two fields",
        ),
        ([shop("a", "souche", [0, 1], is_default=True), shop("b", "souche", [2, 1])], "shops.1.rule.values.1", "shop 'a'"),
        ([shop("a", "tiers", ["CWEB"], is_default=True), shop("b", "tiers", ["cweb  "])], "shops.1.rule.values.0", "shop 'a'"),
        ([shop("a", "field", ["FR"], "Boutique", is_default=True), shop("b", "field", [" fr"], "BOUTIQUE")], "shops.1.rule.values.0", "shop 'a'"),
        ([shop("a", "prefix", ["B2B-"], is_default=True), shop("b", "prefix", ["b2b-"])], "shops.1.rule.values.0", "shop 'a'"),
        ([shop("a", "prefix", ["B2B-"], is_default=True), shop("b", "prefix", ["b2b-pro-"])], "shops.1.rule.values.0", "could match both"),
        ([shop("a", "prefix", ["W-EU"], is_default=True), shop("b", "prefix", ["w-"])], "shops.0.rule.values.0", "could match both"),
        (
            [
                shop("a", "souche", [0], is_default=True, prestashop_url="https://shop.example.com", id_shop=1),
                shop("b", "souche", [1], prestashop_url="http://SHOP.example.com/", id_shop=None),
            ],
            "shops.1.id_shop",
            "share one PrestaShop installation",
        ),
        (
            [
                shop("a", "souche", [0], is_default=True, prestashop_url="https://shop.example.com/fr", id_shop=1),
                shop("b", "souche", [1], prestashop_url="https://shop.example.com/fr/", id_shop=1),
            ],
            "shops.1.id_shop",
            "already the id_shop of shop 'a'",
        ),
    ],
)
def test_validation_refuses_any_set_where_two_shops_could_claim_one_document(shops, field, words):
    found, message = error_of(validate_shops, shops)
    assert found == field and words in message
    if shops:
        with pytest.raises(ShopError):
            ShopClaims(shops)


def test_valid_sets_pass_including_separate_installations_and_one_multistore():
    validate_shops([shop("web", "all", is_default=True)])
    validate_shops([shop("a", "field", ["FR"], "Boutique", is_default=True), shop("b", "field", ["BE"], "boutique")])
    validate_shops([shop("a", "prefix", ["B2B-"], is_default=True), shop("b", "prefix", ["B2C-"]), shop("c", "prefix", ["BX-"])])
    validate_shops(
        [
            shop("a", "souche", [0], is_default=True, prestashop_url="https://fr.example.com"),
            shop("b", "souche", [1], prestashop_url="https://be.example.com"),
            shop("c", "souche", [2], prestashop_url="https://shop.example.com", id_shop=1),
            shop("d", "souche", [3], prestashop_url="https://shop.example.com:443/", id_shop=2),
            shop("e", "souche", [4], id_shop=1),
        ]
    )
    with pytest.raises(ShopError, match="share one PrestaShop installation"):  # the webservice's /api is the same installation
        validate_shops(
            [
                shop("a", "souche", [0], is_default=True, prestashop_url="https://shop.example.com/api/", id_shop=1),
                shop("b", "souche", [1], prestashop_url="https://shop.example.com"),
            ]
        )


# --- order keys ----------------------------------------------------------------------------------------------


def test_order_keys_round_trip_and_the_default_shop_keeps_todays_keys():
    web, b2b = shop("web", "souche", [0], is_default=True), shop("b2b", "souche", [1])
    codes = frozenset({"b2b"})
    assert order_key_of(web, "4711") == "4711" and order_key_of(b2b, "4711") == "b2b:4711"
    assert split_order_key("4711", codes) == (None, "4711")
    assert split_order_key("b2b:4711", codes) == ("b2b", "4711")
    assert split_order_key("b2b:12:34", codes) == ("b2b", "12:34")
    assert split_order_key(order_key_of(web, "AB:12"), codes) == (None, "AB:12")
    assert split_order_key("web:12", codes) == (None, "web:12")  # the default's code never prefixes a key
    assert split_order_key("B2B:12", codes) == (None, "B2B:12")


# --- property: at most one shop claims a document, as a naive reading says ---------------------------------------

TEXTS = st.text(alphabet="abAB1-é ", min_size=1, max_size=5).filter(lambda text: text.strip())


VALUES = {
    "all": st.just([]),
    "souche": st.lists(st.integers(0, 6), min_size=1, max_size=3, unique=True),
    "tiers": st.lists(TEXTS, min_size=1, max_size=3, unique_by=lambda text: text.strip().casefold()),
    "field": st.lists(TEXTS, min_size=1, max_size=3, unique_by=lambda text: text.strip().casefold()),
    "prefix": st.lists(TEXTS.map(str.strip), min_size=1, max_size=1),
}


@st.composite
def shop_sets(draw) -> list[Shop]:
    """1..4 shops of one kind, each listing values of its own: two shops may claim alike, validation decides."""
    kind = draw(st.sampled_from(sorted(VALUES)))
    count = 1 if kind == "all" else draw(st.integers(1, 4))
    default = draw(st.integers(0, count - 1))
    field = "Boutique" if kind == "field" else None
    return [shop(f"s{index}", kind, draw(VALUES[kind]), field, is_default=index == default) for index in range(count)]


def naive_overlap(shops: list[Shop]) -> bool:
    """Whether two shops list values that could claim one document, comparing every pair of values."""
    for one in shops:
        for other in shops:
            for a in one.rule.values if other is not one else ():
                for b in other.rule.values:
                    if one.rule.kind == "souche" and a == b:
                        return True
                    if one.rule.kind == "prefix" and b.lower().startswith(a.lower()):
                        return True
                    if one.rule.kind in ("tiers", "field") and a.strip().lower() == b.strip().lower():
                        return True
    return False


def naive_claims(shop: Shop, header: dict, link_value: str) -> str | None:
    """The link value the shop sees if it claims the document, read straight from the rule, value by value."""
    rule = shop.rule
    if rule.kind == "prefix":
        prefix = rule.values[0]
        return link_value[len(prefix) :].strip(" ") if link_value.lower().startswith(prefix.lower()) else None
    if rule.kind == "souche":
        souche = header["DO_Souche"]
        matched = souche is not None and souche == int(souche) and int(souche) in rule.values
    elif rule.kind == "all":
        matched = True
    else:
        text = header[rule.columns()[0]]
        matched = text is not None and any(text.strip().lower() == value.strip().lower() for value in rule.values)
    return link_value.rstrip(" ") if matched else None


HEADERS = st.fixed_dictionaries(
    {
        "DO_Souche": st.one_of(st.none(), st.integers(0, 8), st.integers(0, 8).map(Decimal), st.sampled_from([Decimal("1.5")])),
        "DO_Tiers": st.one_of(st.none(), TEXTS, TEXTS.map(str.upper), TEXTS.map(lambda text: text + "  ")),
        "Boutique": st.one_of(st.none(), TEXTS, TEXTS.map(str.swapcase), TEXTS.map(lambda text: text + "  ")),
    }
)
LINKS = st.one_of(st.text(alphabet="abAB1-é: #0123", max_size=9), st.sampled_from(["s1:12", "s0:1", "AB:12"]))


@st.composite
def documents(draw, shops: list[Shop]) -> tuple[dict, str]:
    """A header and a link value, every other time built on one of the shops' values (case or trailing spaces changed)."""
    values = [value for shop in shops for value in shop.rule.values]
    known = draw(st.sampled_from(values)) if values and draw(st.booleans()) else None
    header, link_value, kind = draw(HEADERS), draw(LINKS), shops[0].rule.kind
    if known is not None and kind == "souche":
        header["DO_Souche"] = draw(st.sampled_from([known, Decimal(known), Decimal(f"{known}.000")]))
    elif known is not None and kind in ("tiers", "field"):
        header[shops[0].rule.columns()[0]] = draw(st.sampled_from([known, known.swapcase(), f"{known}  "]))
    elif known is not None:
        link_value = draw(st.sampled_from([known, known.swapcase()])) + link_value
    return header, link_value


@settings(max_examples=300, deadline=None)
@given(shops=shop_sets(), data=st.data())
def test_validation_refuses_exactly_the_overlaps_and_then_claim_matches_a_naive_reading(shops, data):
    header, link_value = data.draw(documents(shops))
    try:
        claims = ShopClaims(shops)
    except ShopError:
        assert naive_overlap(shops)
        return
    assert not naive_overlap(shops)
    seen = {shop.code: naive_claims(shop, header, link_value) for shop in shops}
    claimants = [shop for shop in shops if seen[shop.code] is not None]
    assert len(claimants) <= 1
    codes = frozenset(shop.code for shop in shops if not shop.is_default)
    expected = None
    if claimants and seen[claimants[0].code]:
        winner, link = claimants[0], seen[claimants[0].code]
        ambiguous = winner.is_default and link.partition(":")[0] in codes and ":" in link
        expected = None if ambiguous else (winner, link)
    assert claims.claim(header, link_value) == expected
    if expected is not None:
        assert split_order_key(order_key_of(*expected), codes) == (None if expected[0].is_default else expected[0].code, expected[1])
