"""The pull feed's page is written as text directly (api.schemas.feed_page_json): for any row the store can give,
odd ones included, it must be exactly what the app's JSON provider writes for dump_feed_page's dict."""

from __future__ import annotations

import json
import random
from datetime import date, datetime

import pytest

from api.schemas import dump_feed_page, feed_page_json

VALUES = [None, 0, 1, -5, 2**40, True, False, 1.5, "", 'a"b\\c', "é€😀\u2028", "\x00\n", datetime(2026, 1, 2, 3, 4, 5)]
VALUES += [datetime(2026, 1, 2, 3, 4, 5, 6), date(2026, 1, 1), [], ["x", 1, None], {"k": 1}, "2026-01-01"]
DELIVERIES = [None, [], [{}], [None], ["str"], [{"piece": "é", "lines": [{"sku": 1, "quantity": "2"}], "tracking_numbers": ["a", 3]}]]
CONFLICTS = [
    None,
    {},
    {"status": "open", "shop_state_id": 6, "reason": "PS_OS_CANCELED", "apply": False},
    {"apply": 1, "reissue_of": "7", "via": None, "x": 2},
]
LISTS = [None, [], ["a", "b"], ["a", 2], ["é\u0001"], "ab", ("t",)]


def provider_text(page: dict) -> str:
    """What Flask's default JSON provider writes (sorted keys, ASCII, compact)."""
    return json.dumps(page, sort_keys=True, ensure_ascii=True, separators=(",", ":"))


def random_row(rng: random.Random) -> list:
    row = [rng.choice(VALUES) for _ in range(13)]
    row[0] = rng.choice([1, 2**33, True, "7"])
    row[1] = rng.choice(["k", 5, "é"])
    row[5], row[9] = rng.choice(LISTS), rng.choice(LISTS)
    row[8] = rng.choice(DELIVERIES)
    row[11] = rng.choice(CONFLICTS)
    row[10] = rng.choice([datetime(2026, 1, 1), datetime(2026, 1, 1, 0, 0, 0, 5), "2026"])
    return row


@pytest.mark.parametrize("seed", range(4))
def test_the_page_text_is_the_providers_text_for_any_row(seed):
    rng = random.Random(seed)
    compared = 0
    for n in range(3000):
        rows = [random_row(rng) for _ in range(rng.randint(0, 3))]
        try:
            expected = provider_text(dump_feed_page(rows, n, n % 2 == 0, n + n % 3))
        except (TypeError, ValueError):  # a row the schema's helpers refuse: not a page the feed can give
            continue
        assert feed_page_json(rows, n, n % 2 == 0, n + n % 3) == expected, rows
        compared += 1
    assert compared > 500  # many rows were pages, so the comparison did compare


def test_an_empty_page_at_the_head():
    assert feed_page_json([], 42, False, 42) == '{"has_more":false,"head":42,"next":42,"updates":[]}'
