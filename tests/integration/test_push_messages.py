"""GesCom text never breaks the push (issue 13, item 7), against the PrestaShop simulator over real HTTP.

A carrier name, an article reference or a tracking field holding what Validate::isCleanHtml refuses, or a text
longer than the shop takes, used to make the message POST answer 400 code 85 and fail the whole update for
good. Now the message is made acceptable (sync/prestashop/messages.py), and a message the shop refuses anyway
leaves the update pushed, its state and tracking number in the shop, with a warning."""

from __future__ import annotations

import pytest
from sqlalchemy import MetaData, Table, select, update

from models import Update
from sync.prestashop.client import PrestaShopClient
from sync.services.push import push_pending
from sync.services.unit_of_work import UnitOfWork
from tests.simulator import ShopSimulator
from tests.simulator.php import is_clean_html

KEY = "K" * 32
TRACKING = "6A11111111111"
ORDER = 4711

# What the GesCom fields hold; each is within its Sage column (carrier name 35, AR_Ref 19, DO_Coord01 25).
HOSTILE = {
    "carrier <script>": {"carrier": "<script>alert(1)</script>"},
    "carrier <b> and quotes": {"carrier": 'Colis <b>"express"</b>'},
    "article onload=": {"sku": "X onload=alert(1)"},
    "article javascript:": {"sku": "javascript:alert(1)"},
    "tracking <iframe>": {"tracking": f"{TRACKING};<iframe>"},
    "tracking quote onload=": {"tracking": f'{TRACKING};"onload=1'},
}
# 1.7.6: the legacy `messages` table; 1.7.8 and 9.0: customer_messages with isCleanHtml; 8.1: without.
VERSIONS = ["1.7.6.9", "1.7.8.11", "8.1.5", "9.0.0"]


@pytest.fixture
def shop_of():
    started: list[ShopSimulator] = []

    def start(version: str) -> ShopSimulator:
        sim = ShopSimulator(version=version, key=KEY).start()
        started.append(sim)
        sim.add_order(ORDER, current_state=2)
        return sim

    yield start
    for sim in started:
        sim.stop()


def client_for(sim) -> PrestaShopClient:
    return PrestaShopClient(sim.url, KEY, timeout=(2.0, 2.0), sleep=lambda seconds: None)


def readable(text: str) -> str:
    """What a reader of the order page sees: the stand-ins read as the characters they replace."""
    return text.replace("‹", "<").replace("›", ">").replace("＝", "=").replace("：", ":")


def ship(sync, warehouse, clock, *, carrier: str | None = None, lines=(("MUG", "Mug", 1),), tracking: str = TRACKING) -> None:
    """An order delivered in one BL carrying `tracking`, by carrier 2 named `carrier`, messages for every change."""
    sync.settings(options__send_piece_number=True, options__send_delivery_date=True, options__send_delivery_details=True)
    if carrier is not None:
        _rename_carrier(warehouse, carrier)
    piece = warehouse.create_order(str(ORDER), list(lines))
    sync.run()
    clock.tick()
    warehouse.transform((1, piece), 3, header={"DO_Coord01": tracking})
    sync.run()


def _rename_carrier(warehouse, name: str) -> None:
    table = Table("P_EXPEDITION", MetaData(), autoload_with=warehouse.engine)
    with warehouse.engine.begin() as conn:
        conn.execute(update(table).where(table.c.cbIndice == 2).values(E_Intitule=name))


def push(sync, sim):
    report = push_pending(UnitOfWork(sync.session), client_for(sim))
    sync.session.expire_all()
    return report


def updates(sync) -> list[Update]:
    return list(sync.session.scalars(select(Update).order_by(Update.id)))


def assert_state_and_tracking_pushed(sync, sim) -> None:
    assert [u.push_status for u in updates(sync)] == ["pushed"] * len(updates(sync)), [(u.push_status, u.push_error) for u in updates(sync)]
    assert int(sim.orders[ORDER]["current_state"]) == 4
    carrier_row = next(row for row in sim.order_carriers.values() if int(row["id_order"]) == ORDER)
    assert carrier_row["tracking_number"] == TRACKING
    assert not sim.internal_errors


def page(sim) -> list[str]:
    """The order page's Messages panel, oldest first."""
    return [m["message"] for m in reversed(sim.order_page_messages(ORDER))]


def deliveries(sim) -> list[str]:
    """The delivery's message (or its numbered parts): neither the piece's nor the date's."""
    return [text for text in page(sim) if not text.startswith("Sage : document") and "date de livraison" not in text]


# --- hostile text is made acceptable, its information kept ------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_gescom_text_is_posted_readable(sync, warehouse, clock, shop_of, version, case):
    sim = shop_of(version)
    hostile = HOSTILE[case]
    lines = ((hostile["sku"], "Article", 2), ("MUG", "Mug", 1)) if "sku" in hostile else (("MUG", "Mug", 1),)
    ship(sync, warehouse, clock, carrier=hostile.get("carrier"), lines=lines, tracking=hostile.get("tracking", TRACKING))
    report = push(sync, sim)
    assert report.failed == 0 and report.error is None, report.details
    assert_state_and_tracking_pushed(sync, sim)
    refused = [r for r in sim.requests if r["effective_method"] == "POST" and (r["status"] or 0) >= 400]
    assert refused == []  # the shop refused nothing
    delivery = [text for text in page(sim) if text.startswith("Sage : livraison BL")]
    assert len(delivery) == 1 and is_clean_html(delivery[0])
    shown = hostile.get("carrier") or hostile.get("sku") or hostile["tracking"].split(";")[1]  # the second parcel's "number"
    assert shown in readable(delivery[0])  # the information kept
    assert push(sync, sim).pushed == 0 and len(page(sim)) == 3  # piece, date, delivery: each once


@pytest.mark.parametrize("version", ["1.7.6.9", "8.1.5"])
def test_a_5000_character_delivery_is_posted_whole_or_in_parts_that_fit(sync, warehouse, clock, shop_of, version):
    sim = shop_of(version)
    lines = [(f"ART-{n:05d}-XXXXXXXX", f"Article {n}", 1) for n in range(1, 211)]
    ship(sync, warehouse, clock, lines=lines)
    push(sync, sim)
    assert_state_and_tracking_pushed(sync, sim)
    delivery = deliveries(sim)
    if version == "8.1.5":  # a customer thread takes 16777216 characters
        assert len(delivery) == 1 and len(delivery[0]) > 5000
    else:  # the legacy table takes 1600: numbered parts, every line in one of them
        assert len(delivery) == 4 and all(len(text) <= 1600 for text in delivery)
        assert [text.split(" ", 1)[0] for text in delivery] == ["(1/4)", "(2/4)", "(3/4)", "(4/4)"]
    body = " ".join(delivery)
    assert all(f"1 × ART-{n:05d}-XXXXXXXX" in body for n in range(1, 211))
    assert push(sync, sim).pushed == 0 and deliveries(sim) == delivery


# --- a message refused anyway never fails the state or the tracking number ---------------------------------------


@pytest.mark.parametrize("version, resource", [("8.1.5", "customer_messages"), ("1.7.6.9", "messages")])
def test_a_message_the_shop_refuses_leaves_the_update_pushed_with_a_warning(sync, warehouse, clock, shop_of, version, resource):
    sim = shop_of(version)
    ship(sync, warehouse, clock)
    sim.fail_next("POST", resource, "refuse")  # a validator stricter than ours (a module, a later version)
    report = push(sync, sim)
    assert report.failed == 0 and report.error is None
    assert_state_and_tracking_pushed(sync, sim)
    shipped = updates(sync)[-1]
    answer = shipped.push_answer
    assert answer["state"]["action"] == "posted" and answer["tracking"]["action"] == "written"
    assert answer["messages"]["posted"] == 2 and len(answer["messages"]["refused"]) == 1
    refusal = answer["messages"]["refused"][0]
    assert refusal["status"] == 400 and refusal["code"] == 85 and refusal["text"].startswith("Sage : document BL")
    assert len(answer["warnings"]) == 1 and "not sent again" in answer["warnings"][0] and "is not valid" in answer["warnings"][0]
    assert any("pushed with a warning" in line for line in report.details)
    assert len(page(sim)) == 2 and not any(text.startswith("Sage : document") for text in page(sim))
    # Not retried: neither by a later pass, nor when a full run produces the same texts again.
    sim.reset_log()
    assert push(sync, sim).pushed == 0
    sync.run(full=True)
    sync.session.execute(update(Update).values(next_attempt_at=None))
    sync.session.commit()
    push(sync, sim)
    assert not [r for r in sim.requests if r["effective_method"] == "POST" and r["resource"] == resource]
    assert len(page(sim)) == 2 and [u.push_status for u in updates(sync)] == ["pushed"] * len(updates(sync))


def test_no_thread_for_the_messages_is_a_warning_not_a_failure(sync, warehouse, clock, shop_of):
    sim = shop_of("8.1.5")
    sim.customers[sim.orders[ORDER]["id_customer"]]["email"] = ""  # a thread carries the customer's e-mail
    ship(sync, warehouse, clock)
    report = push(sync, sim)
    assert report.failed == 0
    assert_state_and_tracking_pushed(sync, sim)
    answer = updates(sync)[-1].push_answer
    assert len(answer["messages"]["refused"]) == 3 and "no e-mail" in answer["warnings"][0]
    assert page(sim) == []
