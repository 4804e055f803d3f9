"""Messages PrestaShop accepts (sync/prestashop/messages.py): one test per rule, each checked against a port of
Validate::isCleanHtml (the simulator's) and the length the shop's version takes."""

from __future__ import annotations

import pytest

from sync.prestashop.messages import LEGACY_MAX, MAX_PARTS, THREAD_MAX, THREAD_MAX_9, clean_text, message_limit, shop_texts
from tests.simulator.php import is_clean_html

V8, V9, V176, V178 = (8, 1, 5), (9, 0, 0), (1, 7, 6, 9), (1, 7, 8, 11)

# Each one refused by isCleanHtml as it is (the reason of issue 13, item 7).
REFUSED = [
    "<script>alert(1)</script>",
    "< SCRIPT src=x>",
    "Colis onload=alert(1)",
    "x ONCLICK =1",
    "onmouseover\n=1",
    "lien javascript:alert(1)",
    "Postscript: voir BL",
    "<iframe src=x>",
    "<form action=x>",
    "< input>",
    "<embed>",
    "<object>",
    "<frameset>",
]


def readable(text: str) -> str:
    """What a reader sees: the stand-ins read as what they replace."""
    return text.replace("‹", "<").replace("›", ">").replace("＝", "=").replace("：", ":")


@pytest.mark.parametrize("text", REFUSED)
def test_what_is_clean_html_refuses_is_made_acceptable_and_kept(text):
    assert not is_clean_html(text)
    cleaned = clean_text(text)
    assert is_clean_html(cleaned)
    assert readable(cleaned) == text.strip()


def test_angle_brackets_become_guillemets():
    assert clean_text('<b>REF"1</b> & co') == '‹b›REF"1‹/b› & co'  # quotes and ampersands are fine as they are


def test_an_event_handler_keeps_its_name_and_loses_its_equals_sign():
    assert clean_text("X onload=alert(1)") == "X onload＝alert(1)"
    assert clean_text("onError  = 2") == "onError  ＝ 2"
    assert clean_text("Sonload=1") == "Sonload＝1"  # PrestaShop's pattern has no word boundary: neither has ours


def test_an_equals_sign_elsewhere_is_left_alone():
    assert clean_text("poids = 2 kg, on = oui") == "poids = 2 kg, on = oui"


def test_script_colon_gets_a_full_width_colon():
    assert clean_text("javascript:void(0)") == "javascript：void(0)"
    assert clean_text("VBScript:x") == "VBScript：x"
    assert clean_text("script : x") == "script : x"  # a space before the colon passes isCleanHtml


def test_control_characters_xml_cannot_carry_are_removed():
    assert clean_text("BL\x0000\x0112\x1a3\x0b") == "BL00123"
    assert clean_text("a\tb\nc") == "a\tb\nc"


def test_line_ends_are_those_xml_gives_back():
    assert clean_text("a\r\nb\rc") == "a\nb\nc"


def test_a_lone_surrogate_cannot_stop_the_push():
    cleaned = clean_text("ref \udc9c x")
    assert cleaned == "ref \ufffd x"
    cleaned.encode("utf-8")  # the body is sent as UTF-8


def test_characters_outside_the_bmp_are_kept_from_1_7_7_and_replaced_before():
    assert shop_texts("colis 📦 parti", V178, legacy=False) == ["colis 📦 parti"]
    assert shop_texts("colis 📦 parti", V176, legacy=True) == ["colis \ufffd parti"]  # utf8 tables cut the text there


def test_blank_text_gives_no_message():
    assert shop_texts(" \x01 \r\n", V8, legacy=False) == []


def test_cleaning_twice_changes_nothing():
    for text in [*REFUSED, 'a <b> "c" onload=1 javascript:x']:
        once = clean_text(text)
        assert clean_text(once) == once


def test_limits_per_version_and_resource():
    assert message_limit(V176, legacy=True) == message_limit(V8, legacy=True) == message_limit(V9, legacy=True) == LEGACY_MAX == 1600
    assert message_limit(V178, legacy=False) == message_limit(V8, legacy=False) == THREAD_MAX == 16777216
    assert message_limit(V9, legacy=False) == THREAD_MAX_9 == 4194303


def _delivery(lines: int) -> str:
    return "Sage : livraison BL00017 du 2026-11-08 (Colissimo) : " + ", ".join(f"{n} × ART-{n:05d}-XXXXXXXXX" for n in range(1, lines + 1))


def test_a_long_text_fits_a_customer_thread_whole():
    text = _delivery(200)
    assert len(text) > 5000
    assert shop_texts(text, V8, legacy=False) == [text]


def test_a_long_text_is_cut_in_numbered_parts_that_fit_the_legacy_table():
    text = _delivery(200)
    parts = shop_texts(text, V176, legacy=True)
    assert len(parts) == 4
    assert all(len(part) <= LEGACY_MAX for part in parts)
    assert [part.split(" ", 1)[0] for part in parts] == ["(1/4)", "(2/4)", "(3/4)", "(4/4)"]
    body = " ".join(part.split(" ", 1)[1] for part in parts)
    assert all(f"{n} × ART-{n:05d}-XXXXXXXXX" in body for n in range(1, 201))  # every line is in some part
    assert all(part.endswith(",") for part in parts[:-1])  # cut between two lines, not inside one


def test_a_text_too_long_for_ten_parts_ends_with_an_ellipsis():
    parts = shop_texts("x " * 20000, V176, legacy=True)
    assert len(parts) == MAX_PARTS and parts[-1].endswith("…") and all(len(part) <= LEGACY_MAX for part in parts)


def test_the_cut_parts_still_pass_the_validator():
    text = "<script>" + ", ".join("onload=1 javascript:x <iframe>" for _ in range(200))
    parts = shop_texts(text, V176, legacy=True)
    assert len(parts) > 1 and all(is_clean_html(part) and len(part) <= LEGACY_MAX for part in parts)
