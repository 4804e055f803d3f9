"""The simulator against a real PrestaShop 8.1.2: the 95 recorded exchanges replayed in order, over HTTP, on the
shop the recording started from (tests/simulator/recordings/prestashop-8.1.2/: transcripts.jsonl, README.md,
date_upd.md, order-page-messages.md).

Each exchange is compared on: status, Content-Type, PSWS-Version, WWW-Authenticate, X-Powered-By, Location; the
presence and shape of Access-Time, Execution-Time, Content-Sha1 (and Content-Sha1 is the body's sha1); the body
parsed (JSON: keys in order, values with their JSON type; XML: tags, attributes, texts), with the recorded base
URL replaced by the simulator's and dates compared by shape (a date, the zero date). Where the recording has a
`db_effect`, the simulator's tables are read the way its SQL reads them, before and after the request: same rows,
same values, and every date column moved or not as it did on the real shop.

What guards what:
* orders.date_upd: order_carrier_put_full_sendemail, order_carrier_put_full_json, order_carrier_patch_json,
  order_carrier_patch_xml_sendemail, ps_method_put_via_post, ps_method_patch_via_post fail if an order_carrier
  write moves the order's date_upd (the simulator's former behaviour); order_patch_shipping_number fails if a PATCH
  of the order does not; the order_history_post_* exchanges fail if a state change does not.
* messages: customer_thread_post, customer_message_post_private / _xml and message_post_legacy fail if a thread or
  message moves orders.date_upd, customer_message_post_* if a message moves the thread's date_upd (the simulator
  used to move the order's on every message); the back-office test below checks the thread re-use and the order
  page against order-page-messages.md.
The clock is pinned to each exchange's recorded instant (db_utc_now, else Access-Time, in PS_TIMEZONE), so a
moved date shows as a different second as it did in the recording.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import datetime, timezone
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.simulator import ShopSimulator
from tests.simulator.recorded import transcripts

KEY = "K" * 32
WRONG_KEY = "Z" * 32  # README: "a 32-character wrong key"
RECORDED_BASE = "http://127.0.0.1:8081/api/"
PARIS = ZoneInfo("Europe/Paris")
DATE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
HEADER_SHAPES = {"Access-Time": r"\d+", "Execution-Time": r"\d+(\.\d+)?", "Content-Sha1": r"[0-9a-f]{40}"}


@pytest.fixture(scope="module")
def replay():
    """The recorded shop after every exchange was replayed, in order; and what differed, per exchange."""
    sim = ShopSimulator.recorded_8_1_2(key=KEY).start()
    clock = _Clock(sim)
    try:
        results = [(t["name"], _replay_one(sim, clock, t)) for t in transcripts()]
        yield sim, clock, results
    finally:
        sim.stop()


def test_every_recorded_exchange_conforms(replay):
    sim, _, results = replay
    failures = {name: problems for name, problems in results if problems}
    report = "\n".join(f"{name}:\n  " + "\n  ".join(problems) for name, problems in failures.items())
    assert len(results) == 95
    assert not failures, f"{len(results) - len(failures)}/{len(results)} exchanges conform; differences:\n{report}"
    assert sim.internal_errors == []


def test_the_back_office_after_the_run_as_recorded(replay):
    """date_upd.md rows 9, 10, 13, 14 and order-page-messages.md: what the merchant's own actions, done after
    the webservice exchanges, left in the tables and on the order page."""
    sim, clock, _ = replay
    clock.at("2026-12-01 11:10:36")
    sim.back_office_set_tracking(1, "TRK-BO-0001")  # row 9: same carrier
    clock.at("2026-12-01 11:10:38")
    sim.back_office_set_tracking(5, "TRK-BO-0005", carrier_id=1)  # row 10: carrier 2 → 1
    clock.at("2026-12-01 11:10:39")
    sim.back_office_add_message(5, "BO private note order 5")  # row 14: no thread yet
    clock.at("2026-12-01 11:10:41")
    sim.back_office_add_message(2, "BO private note order 2")  # row 13: the webservice's thread 1

    one, five = sim.orders[1], sim.orders[5]
    assert (one["date_upd"], sim.carrier_rows(1)[0]["tracking_number"]) == ("2026-12-01 11:09:59", "TRK-BO-0001")
    assert (five["date_upd"], five["id_carrier"], sim.carrier_rows(5)[0]["id_carrier"]) == ("2026-12-01 11:10:38", 1, 1)
    assert (five["total_shipping_tax_incl"], five["total_paid_tax_incl"]) == ("0.000000", "18.900000")
    assert sim.carrier_rows(5)[0]["tracking_number"] == "TRK-BO-0005"

    threads = [
        (t["id"], t["id_order"], t["id_customer"], t["id_contact"], t["email"], t["status"], t["date_add"], t["date_upd"])
        for t in sim.customer_threads.values()
    ]
    assert threads == [
        (1, 2, 2, 0, "pub@prestashop.com", "open", "2026-12-01 11:10:21", "2026-12-01 11:10:21"),
        (2, 3, 2, 0, "pub@prestashop.com", "open", "2026-12-01 11:10:24", "2026-12-01 11:10:24"),
        (3, 4, 0, 0, "pub@prestashop.com", "open", "2026-12-01 11:10:24", "2026-12-01 11:10:24"),
        (4, 5, 2, 0, "pub@prestashop.com", "open", "2026-12-01 11:10:39", "2026-12-01 11:10:39"),
    ]
    tokens = [t["token"] for t in sim.customer_threads.values()]
    assert tokens[:3] == ["Ab3dEf6hIj9k", "middlewareto", "Zx9yWv8uTs7r"] and re.fullmatch(r"[A-Za-z0-9]{12}", tokens[3])
    assert [
        (m["id"], m["id_customer_thread"], m["id_employee"], m["message"], m["private"], m["date_add"]) for m in sim.customer_messages.values()
    ] == [
        (1, 1, 1, "Colis expedie, suivi TRK-PATCH-0002", 1, "2026-12-01 11:10:23"),
        (2, 1, 1, "Second message (public)", 0, "2026-12-01 11:10:24"),
        (3, 3, 1, "Message on a thread without id_customer (order 4)", 1, "2026-12-01 11:10:24"),
        (4, 4, 1, "BO private note order 5", 1, "2026-12-01 11:10:39"),
        (5, 1, 1, "BO private note order 2", 1, "2026-12-01 11:10:41"),
    ]
    assert [(m["id"], m["id_order"], m["id_customer"], m["id_employee"], m["message"], m["private"], m["date_add"]) for m in sim.messages] == [
        (1, 2, 2, 1, "Legacy message for order 2", 1, "2026-12-01 11:10:26")
    ]

    def page(id_order):
        return [
            (r["id"], r["message"], r["private"], r["id_employee"], r["efirstname"], r["cfirstname"], r["date_add"])
            for r in sim.order_page_messages(id_order)
        ]

    assert page(2) == [
        (5, "BO private note order 2", 1, 1, "Admin", "John", "2026-12-01 11:10:41"),
        (2, "Second message (public)", 0, 1, "Admin", "John", "2026-12-01 11:10:24"),
        (1, "Colis expedie, suivi TRK-PATCH-0002", 1, 1, "Admin", "John", "2026-12-01 11:10:23"),
    ]
    assert page(4) == []  # thread 3 has id_customer 0
    assert page(5) == [(4, "BO private note order 5", 1, 1, "Admin", "John", "2026-12-01 11:10:39")]
    assert all(r["table"] == "customer_message" for r in sim.order_page_messages(2))  # never the legacy table


# --- replaying one exchange ------------------------------------------------------------------------------------


class _Clock:
    """Pins the simulator's clock (shop-local time) to a recorded instant."""

    def __init__(self, sim: ShopSimulator):
        self.sim = sim
        self.now = datetime(2026, 12, 1, 11, 9, 59)
        sim.clock = lambda: self.now

    def at(self, local: str) -> None:
        self.now = datetime.strptime(local, "%Y-%m-%d %H:%M:%S")

    def at_utc(self, moment: datetime) -> None:
        self.now = moment.astimezone(PARIS).replace(tzinfo=None)

    def pin(self, exchange: dict) -> None:
        before = (exchange.get("db_effect") or {}).get("before") or [{}]
        if before[0].get("db_utc_now"):
            self.at_utc(datetime.strptime(before[0]["db_utc_now"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc))
        elif "Access-Time" in exchange["response"]["headers"]:
            self.at_utc(datetime.fromtimestamp(int(exchange["response"]["headers"]["Access-Time"]), timezone.utc))


def _replay_one(sim: ShopSimulator, clock: _Clock, exchange: dict) -> list[str]:
    problems: list[str] = []
    clock.pin(exchange)
    effect = exchange.get("db_effect")
    before = _query(sim, clock, effect["sql"]) if effect else None
    if effect:
        problems += _rows_differ("db before", effect["before"], before)
    response = _send(sim, exchange["request"])
    problems += _response_differs(sim, exchange, response)
    if effect:
        after = _query(sim, clock, effect["sql"])
        problems += _rows_differ("db after", effect["after"], after)
        problems += _moves_differ(effect["before"], effect["after"], before, after)
    return problems


def _send(sim: ShopSimulator, request: dict) -> requests.Response:
    headers = {}
    for name, value in request["headers"].items():
        if name == "Authorization":
            credentials = value[len("Basic ") :].replace("<wrong-key>", WRONG_KEY).replace("<key>", KEY)
            value = "Basic " + base64.b64encode(credentials.encode()).decode()
        headers[name] = value
    params = [(name, value.replace("<key>", KEY)) for name, value in request["query"].items()]
    body = request["body"].replace(RECORDED_BASE, sim.api_url).encode() if request["body"] is not None else None
    return requests.request(
        request["method"], sim.url.rstrip("/") + request["path"], params=params, headers=headers, data=body, allow_redirects=False, timeout=10
    )


def _response_differs(sim: ShopSimulator, exchange: dict, response: requests.Response) -> list[str]:
    recorded, method = exchange["response"], exchange["request"]["method"]
    headers = recorded["headers"]
    problems = []
    if response.status_code != recorded["status"]:
        problems.append(f"status {response.status_code}, recorded {recorded['status']}")
    for name in ("Content-Type", "PSWS-Version", "WWW-Authenticate", "X-Powered-By", "Location"):
        if response.headers.get(name) != headers.get(name):
            problems.append(f"{name}: {response.headers.get(name)!r}, recorded {headers.get(name)!r}")
    for name, shape in HEADER_SHAPES.items():
        value = response.headers.get(name)
        if (value is None) != (name not in headers) or (value is not None and not re.fullmatch(shape, value)):
            problems.append(f"{name}: {value!r}, recorded {headers.get(name)!r}")
    if "Content-Sha1" in response.headers and method != "HEAD" and hashlib.sha1(response.content).hexdigest() != response.headers["Content-Sha1"]:
        problems.append("Content-Sha1 is not the body's sha1")
    if ("Content-Length" in response.headers) != ("Content-Length" in headers) and (method == "HEAD" or "Content-Length" in headers):
        problems.append(f"Content-Length: {response.headers.get('Content-Length')!r}, recorded {headers.get('Content-Length')!r}")
    return problems + _bodies_differ(
        headers.get("Content-Type") or "", recorded["body"].replace(RECORDED_BASE, sim.api_url), response.content.decode("utf-8")
    )


def _bodies_differ(content_type: str, recorded: str, body: str) -> list[str]:
    if not recorded or not content_type.startswith(("application/json", "text/xml")):
        return [] if body == recorded else [f"body {body[:200]!r}, recorded {recorded[:200]!r}"]
    try:
        if content_type.startswith("application/json"):
            return _json_differs("$", json.loads(recorded), json.loads(body))
        return _xml_differs("/", ET.fromstring(recorded.encode()), ET.fromstring(body.encode()))
    except (ValueError, ET.ParseError) as error:
        return [f"body does not parse ({error}): {body[:200]!r}"]


def _shape(value):
    """Dates are compared by shape: a date, or the zero date."""
    if isinstance(value, str) and DATE.fullmatch(value):
        return "<zero date>" if value.startswith("0000") else "<date>"
    return value


def _json_differs(path: str, recorded, got) -> list[str]:
    if isinstance(recorded, dict) and isinstance(got, dict):
        if list(recorded) != list(got):
            return [f"{path}: keys {list(got)}, recorded {list(recorded)}"]
        return [p for key in recorded for p in _json_differs(f"{path}.{key}", recorded[key], got[key])]
    if isinstance(recorded, list) and isinstance(got, list):
        if len(recorded) != len(got):
            return [f"{path}: {len(got)} items, recorded {len(recorded)}"]
        return [p for i, (a, b) in enumerate(zip(recorded, got)) for p in _json_differs(f"{path}[{i}]", a, b)]
    if type(recorded) is not type(got) or _shape(recorded) != _shape(got):
        return [f"{path}: {got!r}, recorded {recorded!r}"]
    return []


def _xml_differs(path: str, recorded: ET.Element, got: ET.Element) -> list[str]:
    here = f"{path}{recorded.tag}"
    if recorded.tag != got.tag or recorded.attrib != got.attrib:
        return [f"{here}: <{got.tag} {got.attrib}>, recorded <{recorded.tag} {recorded.attrib}>"]
    texts = [_shape((element.text or "") if (element.text or "").strip() else "") for element in (recorded, got)]
    if texts[0] != texts[1]:
        return [f"{here}: text {got.text!r}, recorded {recorded.text!r}"]
    if len(recorded) != len(got):
        return [f"{here}: children {[c.tag for c in got]}, recorded {[c.tag for c in recorded]}"]
    return [p for a, b in zip(recorded, got) for p in _xml_differs(here + "/", a, b)]


# --- the simulator's tables, read as the recording's SQL reads them -------------------------------------------


def _query(sim: ShopSimulator, clock: _Clock, sql: str) -> list[dict]:
    utc_now = clock.now.replace(tzinfo=PARIS).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    with sim.lock:
        for pattern, reader in _READERS:
            match = re.search(pattern, sql)
            if match:
                return reader(sim, utc_now, *map(int, match.groups()))
    raise AssertionError(f"no reader for the recorded query {sql!r}")


def _text(value):
    return None if value is None else str(value)


def _orders_carriers(sim, utc_now, id_order):
    order = sim.orders[id_order]
    history = [h["id"] for h in sim.histories if h["id_order"] == id_order]
    return [
        {
            "id_order": str(id_order),
            "current_state": _text(order["current_state"]),
            "date_upd": order["date_upd"],
            "valid": _text(order["valid"]),
            "invoice_number": _text(order["invoice_number"]),
            "invoice_date": order["invoice_date"],
            "delivery_number": _text(order["delivery_number"]),
            "delivery_date": order["delivery_date"],
            "id_order_carrier": _text(row and row["id"]),
            "id_carrier": _text(row and row["id_carrier"]),
            "tracking_number": row and row["tracking_number"],
            "id_order_invoice": _text(row and row["id_order_invoice"]),
            "history_rows": str(len(history)),
            "last_history_id": _text(max(history, default=None)),
            "db_utc_now": utc_now,
        }
        for row in sim.carrier_rows(id_order) or [None]
    ]


def _history_count(sim, utc_now):
    return [{"history_rows": str(len(sim.histories)), "last_history_id": _text(max((h["id"] for h in sim.histories), default=None))}]


def _orders_threads(sim, utc_now, id_order):
    threads = sorted((t for t in sim.customer_threads.values() if t["id_order"] == id_order), key=lambda t: t["id"])
    return [
        {
            "id_order": str(id_order),
            "order_date_upd": sim.orders[id_order]["date_upd"],
            "id_customer_thread": _text(t and t["id"]),
            "id_customer": _text(t and t["id_customer"]),
            "id_contact": _text(t and t["id_contact"]),
            "token": t and t["token"],
            "status": t and t["status"],
            "thread_date_add": t and t["date_add"],
            "thread_date_upd": t and t["date_upd"],
            "thread_messages": str(len(sim.thread_messages(t["id"])) if t else 0),
            "db_utc_now": utc_now,
        }
        for t in threads or [None]
    ]


def _threads(sim, utc_now):
    return [
        {"id_customer_thread": str(t["id"]), "id_order": str(t["id_order"]), "token": t["token"]}
        for t in sorted(sim.customer_threads.values(), key=lambda t: t["id"])
    ]


def _orders_messages(sim, utc_now, id_order):
    messages = [m for m in sim.messages if m["id_order"] == id_order]
    return [
        {
            "id_order": str(id_order),
            "order_date_upd": sim.orders[id_order]["date_upd"],
            "id_message": _text(m and m["id"]),
            "id_customer": _text(m and m["id_customer"]),
            "id_employee": _text(m and m["id_employee"]),
            "message": m and m["message"],
            "private": _text(m and m["private"]),
            "message_date_add": m and m["date_add"],
            "db_utc_now": utc_now,
        }
        for m in messages or [None]
    ]


_READERS = (
    (r"FROM ps_orders o LEFT JOIN ps_order_carrier oc .* WHERE o\.id_order=(\d+)$", _orders_carriers),
    (r"^SELECT COUNT\(\*\) AS history_rows, MAX\(id_order_history\) AS last_history_id FROM ps_order_history$", _history_count),
    (r"FROM ps_orders o LEFT JOIN ps_customer_thread ct .* WHERE o\.id_order=(\d+) ORDER BY", _orders_threads),
    (r"^SELECT id_customer_thread, id_order, token FROM ps_customer_thread ORDER BY", _threads),
    (r"FROM ps_orders o LEFT JOIN ps_message m .* WHERE o\.id_order=(\d+)$", _orders_messages),
)


def _rows_differ(what: str, recorded: list[dict], rows: list[dict]) -> list[str]:
    if len(recorded) != len(rows) or any(list(a) != list(b) for a, b in zip(recorded, rows)):
        return [f"{what}: {rows}, recorded {recorded}"]
    return [
        f"{what} row {i} {key}: {row[key]!r}, recorded {expected[key]!r}"
        for i, (expected, row) in enumerate(zip(recorded, rows))
        for key in expected
        if _shape(expected[key]) != _shape(row[key])
    ]


def _moves_differ(recorded_before, recorded_after, before, after) -> list[str]:
    """Every date column moved, or stayed, as on the real shop (date_upd.md)."""
    problems = []
    for i, (rb, ra, b, a) in enumerate(zip(recorded_before, recorded_after, before, after)):
        for key in rb:
            if key == "db_utc_now" or not any(isinstance(v, str) and DATE.fullmatch(v) for v in (rb[key], ra[key])):
                continue
            if (rb[key] != ra[key]) != (b.get(key) != a.get(key)):
                moved = "moved" if b.get(key) != a.get(key) else "stayed"
                problems.append(f"row {i} {key} {moved} ({b.get(key)} → {a.get(key)}), recorded {rb[key]} → {ra[key]}")
    return problems
