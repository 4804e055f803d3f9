"""The PrestaShop webservice simulator (tests/simulator) against the PrestaShop reference, over real HTTP.

Plain `requests` calls, no middleware code: what is proven here is what other tests may rely on when they
point the middleware at a ShopSimulator.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

import pytest
import requests

from tests.simulator import REALM, ShopSimulator

KEY = "A" * 32


@pytest.fixture
def sim():
    shop = ShopSimulator(version="8.1.5", key=KEY, languages=(1, 2), seed=7).start()
    shop.add_order(1001)
    shop.add_order(1002, current_state=3, tracking_number="6A00000000002")
    yield shop
    shop.stop()
    assert shop.internal_errors == []


@pytest.fixture
def sim17():
    shop = ShopSimulator(version="1.7.8.11", key=KEY, seed=7).start()
    shop.add_order(1001)
    yield shop
    shop.stop()
    assert shop.internal_errors == []


def ws(shop: ShopSimulator, fmt: str | None = "JSON") -> requests.Session:
    session = requests.Session()
    session.auth = (shop.key, "")
    if fmt:
        session.headers["Output-Format"] = fmt
    return session


def body(entity: str, **fields) -> str:
    return f"<prestashop><{entity}>" + "".join(f"<{k}>{v}</{k}>" for k, v in fields.items()) + f"</{entity}></prestashop>"


def error_of(response: requests.Response) -> tuple[int, str]:
    if response.headers.get("Content-Type", "").startswith("application/json"):
        error = response.json()["errors"][0]
        return error["code"], error["message"]
    root = ET.fromstring(response.content)
    return int(root.find("errors/error/code").text), root.find("errors/error/message").text


def carrier_row(shop: ShopSimulator, id_order: int) -> dict:
    return shop.carrier_rows(id_order)[0]


def history_body(id_order: int, state: int) -> str:
    return body("order_history", id_order=id_order, id_order_state=state)


# --- authentication and permissions (§2.2) ---------------------------------------------------------------


def test_no_key_is_a_bare_401_text_with_the_basic_realm(sim):
    response = requests.get(sim.api_url + "orders")
    assert response.status_code == 401
    assert response.text == "401 Unauthorized"
    assert response.headers["WWW-Authenticate"] == REALM
    assert REALM == ('Basic realm="Welcome to PrestaShop Webservice, please enter the authentication key as the login. No password required."')
    assert "PSWS-Version" not in response.headers


def test_key_format_and_unknown_key(sim):
    # Before authentication PSWS-Version is "0", not absent (recorded on 8.1.2: auth_wrong_key).
    short = requests.get(sim.api_url + "orders", auth=("SHORT", ""), headers={"Output-Format": "JSON"})
    assert short.status_code == 401 and error_of(short)[0] == 18
    assert short.headers["WWW-Authenticate"] == REALM and short.headers["PSWS-Version"] == "0"
    wrong = requests.get(sim.api_url + "orders", auth=("B" * 32, ""), headers={"Output-Format": "JSON"})
    assert wrong.status_code == 401 and wrong.headers["PSWS-Version"] == "0"
    assert [e["code"] for e in wrong.json()["errors"]] == [20, 21]  # unknown key: not active, no permission
    sim.key_active = False
    inactive = ws(sim).get(sim.api_url + "orders")
    assert [e["code"] for e in inactive.json()["errors"]] == [20]
    empty = requests.get(sim.api_url + "orders", headers={"Authorization": "Basic " + base64.b64encode(b":").decode()})
    assert empty.status_code == 401 and error_of(empty)[0] == 17


def test_basic_auth_or_ws_key_and_the_webservice_headers(sim):
    by_basic = ws(sim).get(sim.api_url + "orders")
    by_query = requests.get(sim.api_url + "orders", params={"ws_key": KEY, "output_format": "JSON"})
    for response in (by_basic, by_query):
        assert response.status_code == 200
        assert response.headers["PSWS-Version"] == "8.1.5"
        assert response.headers["X-Powered-By"] == "PrestaShop Webservice"
        assert float(response.headers["Execution-Time"]) >= 0
        assert response.json() == {"orders": [{"id": 1001}, {"id": 1002}]}


def test_webservice_disabled_is_503_code_22_with_version_0(sim):
    sim.webservice_enabled = False
    response = ws(sim).get(sim.api_url + "orders")
    assert response.status_code == 503 and error_of(response)[0] == 22
    assert response.headers["PSWS-Version"] == "0"


def test_resource_not_granted_401_code_26_and_method_not_granted_405_code_25(sim):
    session = ws(sim)
    del sim.permissions["messages"]
    response = session.get(sim.api_url + "messages")
    assert response.status_code == 401 and error_of(response)[0] == 26
    assert response.headers["PSWS-Version"] == "8.1.5"  # authenticated: the version header is there
    response = session.put(sim.api_url + "orders/1001", data=body("order", id=1001))
    assert response.status_code == 405 and error_of(response)[0] == 25
    sim.permissions["order_carriers"].discard("PATCH")
    response = session.patch(sim.api_url + "order_carriers/1", data=body("order_carrier", id=1, tracking_number="X"))
    assert response.status_code == 405 and error_of(response)[0] == 25
    assert carrier_row(sim, 1001)["tracking_number"] == ""


def test_unknown_resource_400_code_27_with_a_suggestion(sim):
    response = ws(sim).get(sim.api_url + "order")
    assert response.status_code == 400
    code, message = error_of(response)
    assert code == 27 and 'Did you mean: "orders"' in message


def test_resource_list_with_per_method_permissions(sim, sim17):
    response = ws(sim, fmt=None).get(sim.api_url)
    api = ET.fromstring(response.content).find("api")
    assert api.get("shopName") == "Sim"
    carriers = api.find("order_carriers")
    assert carriers.get("{http://www.w3.org/1999/xlink}href") == sim.api_url + "order_carriers"
    assert {m: carriers.get(m) for m in ("get", "put", "post", "patch", "delete", "head")} == {
        "get": "true",
        "put": "true",
        "post": "false",
        "patch": "true",
        "delete": "false",
        "head": "true",
    }
    assert api.find("order_histories").get("post") == "true"
    assert api.find("products") is None  # only what the key may use
    as_json = ws(sim).get(sim.api_url)  # recorded on 8.1.2 (root_json): a PHP error, empty 500
    assert as_json.status_code == 500 and as_json.content == b"" and "PSWS-Version" not in as_json.headers
    assert ws(sim17).get(sim17.api_url).json() == sorted(sim17.permissions)
    old = ET.fromstring(ws(sim17, fmt=None).get(sim17.api_url).content).find("api/order_carriers")
    assert old.get("patch") is None and old.get("put") == "true"


# --- output formats (§2.3) ------------------------------------------------------------------------------


def test_json_shapes(sim):
    session = ws(sim)
    one = session.get(sim.api_url + "orders/1002").json()
    assert list(one) == ["order"]
    # Recorded on 8.1.2 (orders_full_json): integer fields are JSON ints, booleans "0"/"1".
    assert one["order"]["id"] == 1002 and one["order"]["current_state"] == 3 and one["order"]["valid"] == "1"
    assert one["order"]["shipping_number"] == "6A00000000002"
    assert "delivery_number" not in ws(sim).get(sim.api_url + "orders/1001").json()["order"]  # 0: array_filter drops it
    assert session.get(sim.api_url + "orders").json() == {"orders": [{"id": 1001}, {"id": 1002}]}
    full = session.get(sim.api_url + "orders", params={"display": "full"}).json()
    assert [o["reference"] for o in full["orders"]] == [sim.orders[1001]["reference"], sim.orders[1002]["reference"]]
    subset = session.get(sim.api_url + "orders", params={"display": "[id,current_state]"}).json()
    assert subset == {"orders": [{"id": 1001, "current_state": 2}, {"id": 1002, "current_state": 3}]}
    empty = session.get(sim.api_url + "orders", params={"filter[reference]": "[NOPE]", "display": "full"})
    assert empty.status_code == 200 and empty.text == "[]" and empty.json() == []
    assert session.get(sim.api_url + "orders", params={"filter[id]": "[9]"}).json() == []


def test_json_multilingual_values(sim):
    session = ws(sim)
    both = session.get(sim.api_url + "order_states/4").json()["order_state"]
    assert both["name"] == [{"id": "1", "value": "Shipped"}, {"id": "2", "value": "Expédié"}]
    french = session.get(sim.api_url + "order_states/4", params={"language": "2"}).json()["order_state"]
    assert french["name"] == "Expédié" and french["template"] == "shipped"
    assert session.get(sim.api_url + "order_states/4", params={"language": "7"}).status_code == 400


def test_io_format_header_and_query_select_json(sim):
    plain = requests.Session()
    plain.auth = (KEY, "")
    assert plain.get(sim.api_url + "orders", headers={"Io-Format": "JSON"}).json()["orders"]
    assert plain.get(sim.api_url + "orders", params={"io_format": "JSON"}).json()["orders"]
    assert plain.get(sim.api_url + "orders").headers["Content-Type"].startswith("text/xml")


def test_xml_shapes(sim):
    session = ws(sim, fmt=None)
    record = session.get(sim.api_url + "orders/1001")
    assert record.headers["Content-Type"].startswith("text/xml")
    assert 'xmlns:xlink="http://www.w3.org/1999/xlink"' in record.text
    root = ET.fromstring(record.content)
    assert root.tag == "prestashop" and root.find("order/current_state").text == "2"
    assert "<current_state xlink:href=" in record.text and "<![CDATA[2]]>" in record.text
    assert root.find("order/shipping_number").get("notFilterable") == "true"
    listing = ET.fromstring(session.get(sim.api_url + "orders").content)
    rows = listing.findall("orders/order")
    assert [r.get("id") for r in rows] == ["1001", "1002"]
    assert rows[0].get("{http://www.w3.org/1999/xlink}href") == sim.api_url + "orders/1001"
    empty = ET.fromstring(session.get(sim.api_url + "orders", params={"filter[id]": "[5]"}).content)
    assert empty.find("orders") is not None and list(empty.find("orders")) == []
    state = ET.fromstring(session.get(sim.api_url + "order_states/4").content)
    assert [lang.text for lang in state.findall("order_state/name/language")] == ["Shipped", "Expédié"]


def test_xml_error_body(sim):
    response = ws(sim, fmt=None).get(sim.api_url + "orders", params={"filter[nope]": "[1]"})
    assert response.status_code == 400
    assert "<code><![CDATA[32]]></code>" in response.text
    assert error_of(response)[0] == 32


def test_get_unknown_id_is_404_with_an_empty_body(sim):
    response = ws(sim).get(sim.api_url + "orders/999")
    assert response.status_code == 404 and response.content == b""
    assert response.headers["PSWS-Version"] == "8.1.5"


def test_content_sha1_and_304(sim):
    session = ws(sim)
    first = session.get(sim.api_url + "orders/1001")
    again = session.get(sim.api_url + "orders/1001", headers={"Local-Content-Sha1": first.headers["Content-Sha1"]})
    assert again.status_code == 304 and again.content == b""
    assert session.get(sim.api_url + "orders/1001").status_code == 200
    assert requests.get(sim.url).status_code == 200  # the shop front page


# --- query parameters (§2.4) ------------------------------------------------------------------------------


def test_filters(sim):
    sim.add_order(1003, reference="QWERTYUIO", current_state=4)
    sim.add_order(1004, reference="QWERTYUIO", current_state=6)
    session = ws(sim)

    def ids(**params):
        answer = session.get(sim.api_url + "orders", params=params).json()
        return [row["id"] for row in answer["orders"]] if answer else []

    assert ids(**{"filter[reference]": "[qwertyuio]"}) == [1003, 1004]  # exact, case-insensitive
    assert ids(**{"filter[current_state]": "[3|4]"}) == [1002, 1003]
    assert ids(**{"filter[id]": ">[1002]"}) == [1003, 1004]
    assert ids(**{"filter[id]": "<[1002]"}) == [1001]
    assert ids(**{"filter[id]": "[1002,1003]"}) == [1002, 1003]
    assert ids(**{"filter[current_state]": "![2|3]"}) == [1003, 1004]
    assert ids(**{"filter[reference]": "[QWE]%"}) == [1003, 1004]
    assert ids(**{"filter[reference]": "[QWE]%", "filter[current_state]": "[6]"}) == [1004]
    states = session.get(sim.api_url + "order_states", params={"filter[name]": "[Livré]", "display": "[id]"}).json()
    assert states == {"order_states": [{"id": 5}]}


def test_filter_errors(sim):
    session = ws(sim)
    unknown = session.get(sim.api_url + "orders", params={"filter[nope]": "[1]"})
    assert unknown.status_code == 400 and error_of(unknown)[0] == 32
    virtual = session.get(sim.api_url + "orders", params={"filter[shipping_number]": "[6A00000000002]"})
    assert virtual.status_code == 400 and error_of(virtual)[0] == 34
    malformed = session.get(sim.api_url + "orders", params={"filter[id]": ""})
    assert malformed.status_code == 400 and error_of(malformed)[0] == 33
    display = session.get(sim.api_url + "orders", params={"display": "[id,nope]"})
    assert display.status_code == 400 and error_of(display)[0] == 35
    syntax = session.get(sim.api_url + "orders", params={"display": "id"})
    assert syntax.status_code == 400 and error_of(syntax)[0] == 36
    sort = session.get(sim.api_url + "orders", params={"sort": "[id]"})
    assert sort.status_code == 400 and error_of(sort)[0] == 37
    limit = session.get(sim.api_url + "orders", params={"limit": "1,2,3"})
    assert limit.status_code == 400 and error_of(limit)[0] == 39


def test_date_filters_need_date_1(sim):
    session = ws(sim)
    old = (datetime.now() - timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")
    sim.orders[1001]["date_upd"] = old
    since = (datetime.now() - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    refused = session.get(sim.api_url + "orders", params={"filter[date_upd]": f">[{since}]"})
    assert refused.status_code == 400
    code, message = error_of(refused)
    assert code == 32 and "This filter does not exist" in message
    sort = session.get(sim.api_url + "orders", params={"sort": "[date_upd_ASC]"})
    assert sort.status_code == 400 and error_of(sort)[0] == 38
    answer = session.get(
        sim.api_url + "orders", params={"date": "1", "filter[date_upd]": f">[{since}]", "display": "[id,date_upd]", "sort": "[date_upd_ASC,id_ASC]"}
    )
    assert [row["id"] for row in answer.json()["orders"]] == [1002]


def test_sort_and_limit(sim):
    for id_order in range(1003, 1008):
        sim.add_order(id_order)
    session = ws(sim)

    def ids(**params):
        return [row["id"] for row in session.get(sim.api_url + "orders", params=params).json()["orders"]]

    assert ids(sort="[id_DESC]", limit="3") == [1007, 1006, 1005]
    assert ids(sort="[id_ASC]", limit="2,3") == [1003, 1004, 1005]
    assert ids(sort="[current_state_DESC,id_ASC]", limit="2") == [1002, 1001]
    assert session.get(sim.api_url + "orders", params={"limit": "10,5"}).json() == []


def test_configurations_and_order_states_and_carriers(sim):
    session = ws(sim)
    config = session.get(
        sim.api_url + "configurations", params={"filter[name]": "[PS_OS_SHIPPING|PS_OS_DELIVERED|PS_OS_CANCELED]", "display": "[name,value]"}
    ).json()
    assert {row["name"]: row["value"] for row in config["configurations"]} == {"PS_OS_SHIPPING": "4", "PS_OS_DELIVERED": "5", "PS_OS_CANCELED": "6"}
    assert sim.configuration["PS_OS_OUTOFSTOCK_PAID"] == sim.configuration["PS_OS_OUTOFSTOCK"] == "9"
    sim.add_state("Retour en cours", template="", deleted=1)
    sim.add_state({1: "Prepared by the ERP", 2: "Préparé par l'ERP"}, send_email=1, template="preparation")
    states = session.get(sim.api_url + "order_states", params={"display": "full", "filter[deleted]": "[0]"}).json()
    assert [s["id"] for s in states["order_states"]] == list(range(1, 14)) + [15]
    delivered = next(s for s in states["order_states"] if s["id"] == 5)
    assert delivered["send_email"] == "0" and delivered["delivery"] == "1"
    carrier = session.get(sim.api_url + "carriers/27").json()["carrier"]
    assert carrier["id_reference"] == 2 and "@" in carrier["url"] and carrier["active"] == "1"
    assert "deleted" not in carrier  # "0", dropped from a record read without `display` (array_filter)
    assert session.get(sim.api_url + "carriers/26").json()["carrier"]["deleted"] == "1"


def test_json_display_on_a_single_record_goes_into_the_plural_list(sim):
    answer = ws(sim).get(sim.api_url + "orders/1001", params={"display": "[id,current_state]"}).json()
    assert answer == {"orders": [{"id": 1001, "current_state": 2}]}


def test_schema_and_head(sim):
    session = ws(sim, fmt=None)
    blank = ET.fromstring(session.get(sim.api_url + "order_carriers", params={"schema": "blank"}).content)
    assert [child.tag for child in blank.find("order_carrier")][:3] == ["id", "id_order", "id_carrier"]
    assert all(not (child.text or "") for child in blank.find("order_carrier"))
    synopsis = ET.fromstring(session.get(sim.api_url + "order_carriers", params={"schema": "synopsis"}).content)
    tracking = synopsis.find("order_carrier/tracking_number")
    # Recorded on 8.1.2 (schema_synopsis_order_carriers): no maxSize; 9.x declares size 64 (§3.3).
    assert tracking.get("format") == "isTrackingNumber" and tracking.get("maxSize") is None
    assert synopsis.find("order_carrier/id_order").get("required") == "true"
    assert session.get(sim.api_url + "orders", params={"schema": "full"}).status_code == 400
    head = session.head(sim.api_url + "orders/1001")
    assert head.status_code == 200 and head.content == b"" and head.headers["PSWS-Version"] == "8.1.5"


def test_multistore_context(sim):
    sim.add_order(2001, id_shop=2)
    session = ws(sim)
    assert [o["id"] for o in session.get(sim.api_url + "orders").json()["orders"]] == [1001, 1002]
    assert [o["id"] for o in session.get(sim.api_url + "orders", params={"id_shop": "2"}).json()["orders"]] == [2001]
    assert len(session.get(sim.api_url + "orders", params={"id_shop": "all"}).json()["orders"]) == 3
    other_shop = session.get(sim.api_url + "orders/2001")
    assert other_shop.status_code == 404 and error_of(other_shop)[0] == 131
    assert error_of(session.get(sim.api_url + "orders", params={"id_shop": "x"}))[0] == 999
    sim.key_shops = {1}
    refused = session.get(sim.api_url + "orders", params={"id_shop": "2"})
    assert refused.status_code == 403 and error_of(refused)[0] == 132


def test_shipping_number_is_the_first_carrier_row(sim):
    sim.add_order_carrier(1001, 28, tracking_number="SECOND")
    first = carrier_row(sim, 1001)
    first["tracking_number"] = "FIRST"
    assert ws(sim).get(sim.api_url + "orders/1001").json()["order"]["shipping_number"] == "FIRST"
    rows = ws(sim).get(sim.api_url + "order_carriers", params={"filter[id_order]": "[1001]", "display": "full"}).json()
    assert [r["tracking_number"] for r in rows["order_carriers"]] == ["FIRST", "SECOND"]


# --- order_carriers writes: PUT full replacement, PATCH (§2.5, §3.3) -----------------------------------


def test_put_is_a_full_replacement(sim):
    row = carrier_row(sim, 1001)
    assert row["id_order_invoice"] > 0 and row["weight"] == "1.200000"
    before = row["date_add"]
    sim.clock = lambda: datetime(2030, 1, 2, 3, 4, 5)
    response = ws(sim).put(
        sim.api_url + f"order_carriers/{row['id']}",
        data=body("order_carrier", id=row["id"], id_order=1001, id_carrier=27, tracking_number="6A12345678901"),
    )
    assert response.status_code == 200
    answer = response.json()["order_carrier"]
    assert answer["tracking_number"] == "6A12345678901"
    # The answer echoes the object: the reset fields are null, dropped from the JSON (recorded:
    # order_carrier_put_full_json drops a falsy id_order_invoice).
    assert "id_order_invoice" not in answer and "weight" not in answer
    assert answer["date_add"] == "2030-01-02 03:04:05" != before
    saved = sim.order_carriers[row["id"]]
    assert saved["id_order_invoice"] == 0 and saved["weight"] == "0.000000"
    assert saved["shipping_cost_tax_excl"] == saved["shipping_cost_tax_incl"] == "0.000000"
    # The order is not saved: its date_upd stays (date_upd.md row 5; the simulator used to move it).
    assert sim.orders[1001]["date_upd"] != "2030-01-02 03:04:05"
    assert sim.mails == []  # no sendemail


def test_put_with_every_field_keeps_them(sim):
    row = dict(carrier_row(sim, 1001))
    fields = {k: v for k, v in row.items()}
    fields["tracking_number"] = "6A12345678901"
    response = ws(sim).put(sim.api_url + f"order_carriers/{row['id']}", data=body("order_carrier", **fields))
    assert response.status_code == 200
    saved = sim.order_carriers[row["id"]]
    assert saved == {**row, "tracking_number": "6A12345678901"}


def test_a_get_xml_document_can_be_put_back(sim):
    session = ws(sim, fmt=None)
    document = session.get(sim.api_url + "order_carriers/1").text
    changed = document.replace("<tracking_number><![CDATA[]]></tracking_number>", "<tracking_number>6A9</tracking_number>")
    assert session.put(sim.api_url + "order_carriers/1", data=changed.encode()).status_code == 200
    assert sim.order_carriers[1]["tracking_number"] == "6A9" and sim.order_carriers[1]["weight"] == "1.200000"
    # xlink:href attributes without the root's xmlns:xlink: a PHP warning, nothing saved.
    unbound = changed.replace(' xmlns:xlink="http://www.w3.org/1999/xlink"', "").replace("6A9", "6A10")
    response = session.put(sim.api_url + "order_carriers/1", data=unbound.encode())
    assert response.status_code == 500 and error_of(response)[0] == 3
    assert sim.order_carriers[1]["tracking_number"] == "6A9"


def test_put_id_rules(sim):
    session = ws(sim)
    missing_id = session.put(sim.api_url + "order_carriers/1", data=body("order_carrier", id_order=1001, id_carrier=27))
    assert missing_id.status_code == 400 and error_of(missing_id)[0] == 90
    unknown = session.put(sim.api_url + "order_carriers/1", data=body("order_carrier", id=99, id_order=1001, id_carrier=27))
    assert unknown.status_code == 404 and error_of(unknown)[0] == 92
    required = session.put(sim.api_url + "order_carriers/1", data=body("order_carrier", id=1, id_order=1001, tracking_number="X"))
    assert required.status_code == 400
    code, message = error_of(required)
    assert code == 41 and "id_carrier" in message
    # The URL id is ignored: the body's <id> decides which row is written.
    moved = session.put(sim.api_url + "order_carriers/1", data=body("order_carrier", id=2, id_order=1002, id_carrier=27, tracking_number="FROMBODY"))
    assert moved.status_code == 200
    assert sim.order_carriers[2]["tracking_number"] == "FROMBODY" and sim.order_carriers[1]["tracking_number"] == ""


def test_patch_applies_only_the_fields_sent(sim):
    row = dict(carrier_row(sim, 1001))
    response = ws(sim).patch(sim.api_url + f"order_carriers/{row['id']}", data=body("order_carrier", id=row["id"], tracking_number="6A12345678901"))
    assert response.status_code == 200
    assert response.json()["order_carrier"]["weight"] == "1.200000"
    assert sim.order_carriers[row["id"]] == {**row, "tracking_number": "6A12345678901"}
    no_id = ws(sim).patch(sim.api_url + "order_carriers/1", data=body("order_carrier", tracking_number="X"))
    assert no_id.status_code == 400 and error_of(no_id)[0] == 90


def test_patch_is_not_a_method_in_1_7(sim17):
    assert sim17.permissions["order_carriers"] == {"GET", "HEAD", "PUT"}
    sim17.permissions["order_carriers"].add("PATCH")  # even when granted, 1.7 does not know the method
    response = ws(sim17).patch(sim17.api_url + "order_carriers/1", data=body("order_carrier", id=1, tracking_number="X"))
    assert response.status_code == 405
    assert error_of(response) == (23, "Method PATCH is not valid")
    assert response.headers["PSWS-Version"] == "1.7.8.11"
    assert carrier_row(sim17, 1001)["tracking_number"] == ""


def test_ps_method_override(sim):
    row = carrier_row(sim, 1001)
    response = ws(sim).post(
        sim.api_url + "order_carriers",
        params={"ps_method": "PUT", "sendemail": "0"},
        data=body("order_carrier", id=row["id"], id_order=1001, id_carrier=27, tracking_number="WAF1"),
    )
    assert response.status_code == 200 and row["tracking_number"] == "WAF1"
    assert sim.requests[-1]["method"] == "POST" and sim.requests[-1]["effective_method"] == "PUT"
    lower = ws(sim).post(sim.api_url + "order_carriers", params={"ps_method": "put"}, data=body("order_carrier", id=1))
    assert lower.status_code == 405 and error_of(lower)[0] == 23


def test_tracking_number_validation(sim):
    session = ws(sim)
    row = carrier_row(sim, 1001)

    def put(number: str) -> requests.Response:
        return session.patch(
            sim.api_url + f"order_carriers/{row['id']}",
            data=f"<prestashop><order_carrier><id>{row['id']}</id><tracking_number>{number}</tracking_number></order_carrier></prestashop>",
        )

    refused = put("6A1;6A2")
    assert refused.status_code == 400
    code, message = error_of(refused)
    assert code == 85 and "OrderCarrier-&gt;tracking_number" in message  # recorded: the translator escapes it
    assert put("\n      6A12345678901\n    ").status_code == 400  # pretty-printed: kept verbatim, refused
    # Recorded on 8.1.2 (order_carrier_patch_65_chars): accepted, echoed whole, stored cut to varchar(64).
    long = put("A" * 65)
    assert long.status_code == 200 and long.json()["order_carrier"]["tracking_number"] == "A" * 65
    assert row["tracking_number"] == "A" * 64
    assert put("6A1 6A2 (colis 2/2) #x@y.fr").status_code == 200
    assert put("<![CDATA[6A99]]>").status_code == 200 and row["tracking_number"] == "6A99"
    assert put("").status_code == 200 and row["tracking_number"] == ""  # empty is allowed
    weight = session.patch(sim.api_url + f"order_carriers/{row['id']}", data=body("order_carrier", id=row["id"], weight="1,5"))
    assert weight.status_code == 400 and error_of(weight)[0] == 85


def test_sendemail_on_order_carriers_mails_in_transit_every_time(sim):
    row = carrier_row(sim, 1001)
    session = ws(sim)
    for _ in range(2):
        response = session.patch(
            sim.api_url + f"order_carriers/{row['id']}",
            params={"sendemail": "1"},
            data=body("order_carrier", id=row["id"], tracking_number="6A12345678901"),
        )
        assert response.status_code == 200
    assert [m["kind"] for m in sim.mails] == ["in_transit", "in_transit"]  # no same-number check
    assert sim.mails[0]["template"] == "in_transit" and sim.mails[0]["tracking_number"] == "6A12345678901"
    assert sim.mails[0]["followup"].endswith("code=6A12345678901")
    session.patch(
        sim.api_url + f"order_carriers/{row['id']}", params={"sendemail": "0"}, data=body("order_carrier", id=row["id"], tracking_number="6A2")
    )
    assert len(sim.mails) == 2


def test_in_transit_mail_needs_a_carrier_url_from_8_1_only(sim, sim17):
    for shop in (sim, sim17):
        shop.orders[1001]["id_carrier"] = 1  # click and collect: no tracking URL
        row = carrier_row(shop, 1001)
        response = ws(shop).put(
            shop.api_url + f"order_carriers/{row['id']}",
            params={"sendemail": "1"},
            data=body("order_carrier", id=row["id"], id_order=1001, id_carrier=1, tracking_number="X1"),
        )
        assert response.status_code == 200
    assert sim.mails == []
    assert [m["kind"] for m in sim17.mails] == ["in_transit"] and sim17.mails[0]["followup"] == ""


# --- order_histories (§3.2, §5) --------------------------------------------------------------------------


def test_order_histories_have_no_same_state_guard(sim):
    session = ws(sim)
    for _ in range(2):
        response = session.post(sim.api_url + "order_histories", params={"sendemail": "1"}, data=history_body(1001, 4))
        assert response.status_code == 201
        created = response.json()["order_history"]  # recorded: id_order as sent, id_order_state cast to int
        assert created["id_order"] == "1001" and created["id_order_state"] == 4
    rows = [h for h in sim.histories if h["id_order"] == 1001]
    assert [h["id_order_state"] for h in rows] == [2, 4, 4]
    assert [(m["kind"], m["template"], m["state_id"]) for m in sim.mails] == [("state", "shipped", 4)] * 2


def test_state_change_side_effects(sim):
    sim.clock = lambda: datetime(2030, 5, 6, 7, 8, 9)
    order = sim.orders[1001]
    assert order["delivery_date"] == "0000-00-00 00:00:00"
    response = ws(sim).post(sim.api_url + "order_histories", data=history_body(1001, 4))
    assert response.status_code == 201
    assert order["current_state"] == 4 and order["valid"] == 1
    assert order["delivery_date"] == order["date_upd"] == "2030-05-06 07:08:09"
    assert order["delivery_number"] > 0
    assert sim.mails == []  # no sendemail → silent
    ws(sim).post(sim.api_url + "order_histories", params={"sendemail": "1"}, data=history_body(1001, 6))
    assert order["current_state"] == 6 and order["valid"] == 0
    assert sim.mails[-1]["template"] == "order_canceled"
    ws(sim).post(sim.api_url + "order_histories", params={"sendemail": "1"}, data=history_body(1001, 5))
    assert len(sim.mails) == 1  # Delivered has send_email=0


def test_state_mail_carries_the_tracking_number_read_at_send_time(sim):
    session = ws(sim)
    row = carrier_row(sim, 1001)
    session.patch(sim.api_url + f"order_carriers/{row['id']}", data=body("order_carrier", id=row["id"], tracking_number="6A77"))
    session.post(sim.api_url + "order_histories", params={"sendemail": "1"}, data=history_body(1001, 4))
    assert sim.mails[-1]["tracking_number"] == "6A77" and sim.mails[-1]["followup"].endswith("=6A77")


def test_order_history_post_rules(sim):
    session = ws(sim)
    with_id = session.post(sim.api_url + "order_histories", data=body("order_history", id=5, id_order=1001, id_order_state=4))
    assert with_id.status_code == 400 and error_of(with_id)[0] == 91
    missing = session.post(sim.api_url + "order_histories", data=body("order_history", id_order=1001))
    assert missing.status_code == 400 and error_of(missing)[0] == 41
    # Recorded on 8.1.2 (order_history_post_order_999, _state_999): a PHP fatal error, 500 with an empty body.
    for unknown in (history_body(424242, 4), history_body(1001, 99)):
        answer = session.post(sim.api_url + "order_histories", data=unknown)
        assert answer.status_code == 500 and answer.content == b"" and "PSWS-Version" not in answer.headers
    as_json = session.post(sim.api_url + "order_histories", data=json.dumps({"order_history": {"id_order": 1001, "id_order_state": 4}}))
    assert as_json.status_code == 500 and error_of(as_json)[0] == 127
    assert sim.orders[1001]["current_state"] == 2 and len(sim.histories) == 2


def test_order_histories_list(sim):
    session = ws(sim)
    session.post(sim.api_url + "order_histories", data=history_body(1001, 3))
    session.post(sim.api_url + "order_histories", data=history_body(1001, 4))
    latest = session.get(
        sim.api_url + "order_histories", params={"filter[id_order]": "[1001]", "display": "full", "sort": "[id_DESC]", "limit": "1"}
    ).json()
    assert [(h["id_order_state"], h["id_employee"]) for h in latest["order_histories"]] == [(4, 0)]
    every = session.get(sim.api_url + "order_histories", params={"filter[id_order]": "[1001]"}).json()
    assert len(every["order_histories"]) == 3


def test_set_state_by_hand(sim):
    history = sim.set_state_by_hand(1001, 4, id_employee=3)
    assert history["id_employee"] == 3 and sim.histories[-1] is history
    assert sim.orders[1001]["current_state"] == 4
    assert sim.mails[-1]["kind"] == "state" and sim.mails[-1]["source"] == "back_office"
    with pytest.raises(ValueError):
        sim.set_state_by_hand(1001, 4)  # the BO refuses the current state
    rows = (
        ws(sim)
        .get(sim.api_url + "order_histories", params={"filter[id_order]": "[1001]", "display": "full", "sort": "[id_DESC]", "limit": "1"})
        .json()
    )
    assert rows["order_histories"][0]["id_employee"] == 3


def test_messages(sim):
    session = ws(sim)
    response = session.post(sim.api_url + "messages", data=body("message", id_order=1001, message="Colis 2/2 : 6A2", private=1))
    assert response.status_code == 201
    assert response.json()["message"]["message"] == "Colis 2/2 : 6A2"
    assert sim.messages[-1]["id_order"] == 1001 and sim.messages[-1]["private"] == 1
    listed = session.get(sim.api_url + "messages", params={"filter[id_order]": "[1001]", "display": "full"}).json()
    assert [m["message"] for m in listed["messages"]] == ["Colis 2/2 : 6A2"]
    assert session.post(sim.api_url + "messages", data=body("message", id_order=1001)).status_code == 400


def test_add_order_defaults(sim):
    order = sim.add_order(1100)
    assert len(order["reference"]) == 9 and order["reference"].isalpha() and order["reference"].isupper()
    assert order["current_state"] == 2
    rows = sim.carrier_rows(1100)
    assert len(rows) == 1 and rows[0]["id_carrier"] == 27 and rows[0]["weight"] == "1.200000"
    assert set(rows[0]) == {
        "id",
        "id_order",
        "id_carrier",
        "id_order_invoice",
        "weight",
        "shipping_cost_tax_excl",
        "shipping_cost_tax_incl",
        "tracking_number",
        "date_add",
    }
    assert [h for h in sim.histories if h["id_order"] == 1100][0]["id_employee"] == 0


# --- what moves date_upd, the back office, threads and messages (recorded on 8.1.2, date_upd.md) -----------------

OLD = "2030-01-01 00:00:00"


def at(shop: ShopSimulator, stamp: str) -> None:
    shop.clock = lambda: datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")


def test_order_carrier_writes_leave_the_order_date_upd_an_order_patch_moves_it(sim):
    """date_upd.md rows 5-8: PUT, PATCH, POST + ps_method on order_carriers do not save the order; a PATCH of
    the order's shipping_number does (and writes the first order_carrier row)."""
    sim.permissions["orders"].add("PATCH")
    order = sim.orders[1001]
    order["date_upd"] = OLD
    at(sim, "2030-01-02 10:00:00")
    session, row = ws(sim), carrier_row(sim, 1001)
    session.patch(sim.api_url + f"order_carriers/{row['id']}", data=body("order_carrier", id=row["id"], tracking_number="6A1"))
    session.post(sim.api_url + "order_carriers", params={"ps_method": "PATCH"}, data=body("order_carrier", id=row["id"], tracking_number="6A2"))
    assert row["tracking_number"] == "6A2" and order["date_upd"] == OLD
    answer = session.patch(sim.api_url + "orders/1001", data=body("order", id=1001, shipping_number="6A3"))
    assert answer.status_code == 200
    assert answer.json()["order"]["id"] == "1001" and answer.json()["order"]["shipping_number"] == "6A3"
    assert row["tracking_number"] == "6A3" and order["date_upd"] == "2030-01-02 10:00:00"


def test_patch_order_current_state_is_set_current_state(sim):
    """§5.3: through the order, a state change always mails and refuses the current state (1.7.8+)."""
    sim.permissions["orders"].add("PATCH")
    session = ws(sim)
    assert session.patch(sim.api_url + "orders/1001", data=body("order", id=1001, current_state=2)).status_code == 200
    assert len(sim.histories) == 2 and sim.mails == []
    assert session.patch(sim.api_url + "orders/1001", data=body("order", id=1001, current_state=4)).status_code == 200
    assert sim.orders[1001]["current_state"] == 4 and [m["template"] for m in sim.mails] == ["shipped"]


def test_back_office_tracking_moves_date_upd_on_a_carrier_change_and_on_1_7(sim, sim17):
    """date_upd.md rows 9 and 10 (8.x); reference §0 / §7.3 for 1.7 (the handler also saves the order)."""
    order = sim.orders[1001]
    order["date_upd"] = OLD
    at(sim, "2030-01-02 10:00:00")
    row = sim.back_office_set_tracking(1001, "6A1")
    assert row["tracking_number"] == "6A1" and order["date_upd"] == OLD
    assert [m["kind"] for m in sim.mails] == ["in_transit"]  # changed, not empty, carrier with a URL
    sim.back_office_set_tracking(1001, "6A1")
    assert len(sim.mails) == 1  # same number: no second mail
    paid = float(order["total_paid_tax_incl"])
    sim.back_office_set_tracking(1001, "6A2", carrier_id=28)
    assert order["date_upd"] == "2030-01-02 10:00:00" and order["id_carrier"] == row["id_carrier"] == 28
    assert order["total_shipping_tax_incl"] == row["shipping_cost_tax_incl"] == "9.900000"
    assert float(order["total_paid_tax_incl"]) == pytest.approx(paid + 2.0)
    old17 = sim17.orders[1001]
    old17["date_upd"] = OLD
    sim17.back_office_set_tracking(1001, "6A3")
    assert old17["date_upd"] != OLD and old17["shipping_number"] == "6A3"


def test_customer_threads_and_messages_over_the_webservice(sim):
    """Recorded: customer_thread_post, customer_thread_post_missing_token, customer_thread_post_long_token,
    customer_message_post_private; no date_upd moves (date_upd.md rows 11-12)."""
    session = ws(sim)
    sim.orders[1001]["date_upd"] = OLD
    at(sim, "2030-01-02 10:00:00")
    fields = {"id_lang": 1, "id_contact": 0, "id_customer": 1, "id_order": 1001, "id_shop": 1, "email": sim.customers[1]["email"], "status": "open"}
    missing = session.post(sim.api_url + "customer_threads", data=body("customer_thread", **fields))
    assert missing.status_code == 400 and error_of(missing) == (41, 'parameter "token" required')
    thread = session.post(sim.api_url + "customer_threads", data=body("customer_thread", token="middlewaretoken01", **fields))
    assert thread.status_code == 201
    answer = thread.json()["customer_thread"]
    assert answer["id"] == "1" and answer["token"] == "middlewaretoken01" and "id_contact" not in answer
    assert sim.customer_threads[1]["token"] == "middlewareto"  # varchar(12)
    at(sim, "2030-01-02 10:00:05")
    note = session.post(
        sim.api_url + "customer_messages", data=body("customer_message", id_customer_thread=1, id_employee=1, message="Colis 2/2 : 6A2", private=1)
    )
    assert note.status_code == 201 and note.json()["customer_message"]["private"] == "1"
    assert sim.customer_threads[1]["date_upd"] == "2030-01-02 10:00:00" and sim.orders[1001]["date_upd"] == OLD
    listed = session.get(sim.api_url + "customer_threads", params={"filter[id_order]": "[1001]", "display": "full"}).json()
    assert listed["customer_threads"][0]["associations"] == {"customer_messages": [{"id": 1}]}
    messages = session.get(sim.api_url + "customer_messages", params={"filter[id_customer_thread]": "[1]", "display": "full"})
    assert [(m["message"], m["private"], m["read"]) for m in messages.json()["customer_messages"]] == [("Colis 2/2 : 6A2", "1", "0")]
    assert [m["message"] for m in sim.order_page_messages(1001)] == ["Colis 2/2 : 6A2"]
    customer = session.get(sim.api_url + "customers", params={"filter[id]": "[1]", "display": "[id,email]"}).json()
    assert customer == {"customers": [{"id": 1, "email": sim.customers[1]["email"]}]}


def test_the_order_page_lists_the_threads_of_the_order_and_its_customer_only(sim):
    """order-page-messages.md: the back office re-uses the order's thread (email + shop + order), creates one
    otherwise; a thread without the order's customer and the legacy `message` table are not shown."""
    ws(sim).post(sim.api_url + "messages", data=body("message", id_order=1001, message="legacy", private=1))
    ws(sim).post(
        sim.api_url + "customer_threads",
        data=body("customer_thread", id_lang=1, id_contact=0, id_customer=0, id_order=1001, id_shop=1, token="x" * 12, status="open"),
    )
    ws(sim).post(sim.api_url + "customer_messages", data=body("customer_message", id_customer_thread=1, message="hidden"))
    at(sim, "2030-01-02 10:00:00")
    first = sim.back_office_add_message(1001, "first")
    at(sim, "2030-01-02 10:00:01")
    second = sim.back_office_add_message(1001, "second", private=False)
    assert first["id_customer_thread"] == second["id_customer_thread"] == 2  # created once, then re-used
    thread = sim.customer_threads[2]
    assert (thread["id_contact"], thread["id_customer"], thread["status"], len(thread["token"])) == (0, 1, "open", 12)
    assert [(m["message"], m["private"], m["efirstname"]) for m in sim.order_page_messages(1001)] == [("second", 0, "Admin"), ("first", 1, "Admin")]
    assert [m["template"] for m in sim.mails] == ["order_merchant_comment"]  # the public one is mailed


def test_the_order_page_before_1_7_7_reads_the_legacy_messages():
    shop = ShopSimulator(version="1.7.6.9", key=KEY)
    shop.add_order(1)
    shop.messages.append(
        {
            "id": 1,
            "id_cart": 0,
            "id_order": 1,
            "id_customer": 1,
            "id_employee": 1,
            "message": "legacy",
            "private": 1,
            "date_add": "2030-01-01 00:00:00",
        }
    )
    assert [m["message"] for m in shop.order_page_messages(1)] == ["legacy"]


def test_order_carriers_of_several_orders_and_an_order_with_two_rows(sim):
    sim.add_order(1003, id_carrier=27, carriers=(28,), tracking_number="FIRST")
    rows = ws(sim).get(sim.api_url + "order_carriers", params={"filter[id_order]": "[1001|1002|1003]", "display": "full"}).json()
    assert [(r["id_order"], r["id_carrier"], r["tracking_number"]) for r in rows["order_carriers"]] == [
        (1001, 27, ""),
        (1002, 27, "6A00000000002"),
        (1003, 27, "FIRST"),
        (1003, 28, ""),
    ]
    assert ws(sim).get(sim.api_url + "orders/1003").json()["order"]["shipping_number"] == "FIRST"


def test_tracking_numbers_over_64_characters_are_refused_from_9():
    with ShopSimulator(version="9.0.0", key=KEY) as shop:
        shop.add_order(1)
        answer = ws(shop).patch(shop.api_url + "order_carriers/1", data=body("order_carrier", id=1, tracking_number="A" * 65))
        assert answer.status_code == 400 and error_of(answer)[0] == 85


# --- the host in front of PrestaShop ----------------------------------------------------------------------------


def test_redirect_to_https_answers_before_prestashop(sim):
    sim.redirect_to_https(writes_only=True)
    assert ws(sim).get(sim.api_url + "orders").status_code == 200
    moved = ws(sim).post(sim.api_url + "order_histories", params={"sendemail": "1"}, data=history_body(1001, 4), allow_redirects=False)
    assert moved.status_code == 301 and "PSWS-Version" not in moved.headers
    assert moved.headers["Location"] == f"https://127.0.0.1:{sim.port}/api/order_histories?sendemail=1"
    assert sim.orders[1001]["current_state"] == 2 and sim.requests[-1]["fault"] == "redirect"
    sim.redirect_to_https()
    assert ws(sim).get(sim.api_url + "orders", allow_redirects=False).status_code == 301
    sim.clear_faults()
    assert ws(sim).get(sim.api_url + "orders").status_code == 200


def test_waf_refuses_put_and_patch_not_a_post_with_ps_method(sim):
    row = carrier_row(sim, 1001)
    for status in (403, 405):
        sim.waf_block(status=status)
        refused = ws(sim).patch(sim.api_url + f"order_carriers/{row['id']}", data=body("order_carrier", id=row["id"], tracking_number="W1"))
        assert refused.status_code == status and refused.headers["Content-Type"].startswith("text/html")
        assert "PSWS-Version" not in refused.headers and "<html>" in refused.text and row["tracking_number"] == ""
    assert refused.headers["Allow"] == "GET,POST,HEAD"
    passed = ws(sim).post(
        sim.api_url + f"order_carriers/{row['id']}", params={"ps_method": "PATCH"}, data=body("order_carrier", id=row["id"], tracking_number="W2")
    )
    assert passed.status_code == 200 and row["tracking_number"] == "W2"


# --- faults -----------------------------------------------------------------------------------------------


def test_fault_500_before_applies_nothing(sim):
    sim.fail_next("POST", "order_histories", "500")
    response = ws(sim).post(sim.api_url + "order_histories", params={"sendemail": "1"}, data=history_body(1001, 4))
    assert response.status_code == 500 and error_of(response)[0] == 2
    assert sim.orders[1001]["current_state"] == 2 and sim.mails == []
    assert sim.requests[-1]["fault"] == "500" and sim.requests[-1]["status"] == 500
    assert ws(sim).post(sim.api_url + "order_histories", data=history_body(1001, 4)).status_code == 201  # used up


def test_fault_500_after_commit_keeps_the_row_but_no_mail(sim):
    sim.fail_next("POST", "order_histories", "500_after_commit")
    response = ws(sim).post(sim.api_url + "order_histories", params={"sendemail": "1"}, data=history_body(1001, 4))
    assert response.status_code == 500 and error_of(response)[0] == 46
    assert sim.orders[1001]["current_state"] == 4
    assert sim.histories[-1]["id_order_state"] == 4
    assert sim.mails == []
    sim.fail_next("PATCH", "order_carriers", "500_after_commit")
    row = carrier_row(sim, 1001)
    response = ws(sim).patch(
        sim.api_url + f"order_carriers/{row['id']}", params={"sendemail": "1"}, data=body("order_carrier", id=row["id"], tracking_number="6A5")
    )
    assert response.status_code == 500 and row["tracking_number"] == "6A5" and sim.mails == []


def test_fault_after_commit_does_not_hide_a_refusal(sim):
    sim.fail_next("POST", "order_histories", "500_after_commit")
    response = ws(sim).post(sim.api_url + "order_histories", data=body("order_history", id_order=1001))
    assert response.status_code == 400 and error_of(response)[0] == 41


def test_fault_reset_gives_no_answer(sim):
    sim.fail_next("POST", "order_histories", "reset")
    with pytest.raises(requests.ConnectionError):
        ws(sim).post(sim.api_url + "order_histories", data=history_body(1001, 4), timeout=5)
    assert sim.orders[1001]["current_state"] == 2
    sim.fail_next("*", "order_histories", "reset_after_commit")
    with pytest.raises(requests.ConnectionError):
        ws(sim).post(sim.api_url + "order_histories", data=history_body(1001, 4), timeout=5)
    assert sim.orders[1001]["current_state"] == 4
    assert sim.requests[-1]["fault"] == "reset_after_commit" and sim.requests[-1]["status"] is None


def test_fault_timeout_after_the_write(sim):
    sim.fail_next("POST", "order_histories", "timeout", delay=2.0)
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        ws(sim).post(sim.api_url + "order_histories", params={"sendemail": "1"}, data=history_body(1001, 4), timeout=0.5)
    assert time.monotonic() - started < 1.5
    assert sim.orders[1001]["current_state"] == 4 and len(sim.mails) == 1


def test_fault_timeout_before_the_write(sim):
    sim.fail_next("POST", "order_histories", "timeout_before", delay=2.0)
    with pytest.raises(requests.ReadTimeout):
        ws(sim).post(sim.api_url + "order_histories", data=history_body(1001, 4), timeout=0.5)
    assert sim.orders[1001]["current_state"] == 2
    sim.fail_next("GET", "orders", "timeout_before", delay=0.1)
    late = ws(sim).get(sim.api_url + "orders", timeout=5)
    assert late.status_code == 504


def test_fault_429_and_503(sim):
    sim.fail_next("POST", "order_histories", "429", retry_after=7)
    response = ws(sim).post(sim.api_url + "order_histories", data=history_body(1001, 4))
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert "PSWS-Version" not in response.headers
    sim.fail_next("GET", "*", "503", times=2)
    for _ in range(2):
        unavailable = ws(sim).get(sim.api_url + "orders")
        assert unavailable.status_code == 503 and error_of(unavailable)[0] == 22
    assert ws(sim).get(sim.api_url + "orders").status_code == 200
    assert sim.orders[1001]["current_state"] == 2


def test_faults_only_match_their_method_and_resource(sim):
    sim.fail_next("PUT", "order_carriers", "500")
    assert ws(sim).get(sim.api_url + "order_carriers/1").status_code == 200
    assert ws(sim).post(sim.api_url + "order_histories", data=history_body(1001, 3)).status_code == 201
    assert ws(sim).put(sim.api_url + "order_carriers/1", data=body("order_carrier", id=1, id_order=1001, id_carrier=27)).status_code == 500
    with pytest.raises(ValueError):
        sim.fail_next("GET", "orders", "boom")


def test_fault_rate_is_random_but_reproducible(sim):
    def run() -> list[int]:
        sim.fault_rate(0.5, kinds=("500", "429", "503"), seed=3)
        statuses = [ws(sim).get(sim.api_url + "orders").status_code for _ in range(20)]
        sim.fault_rate(0)
        return statuses

    first, second = run(), run()
    assert first == second
    assert set(first) - {200} and 200 in first
    assert ws(sim).get(sim.api_url + "orders").status_code == 200


def test_stop_is_prompt_with_a_pending_timeout():
    shop = ShopSimulator(key=KEY).start()
    shop.add_order(1)
    shop.fail_next("GET", "orders", "timeout", delay=30)
    outcome = []

    def call():
        try:
            ws(shop).get(shop.api_url + "orders", timeout=0.3)
            outcome.append("answered")
        except requests.ReadTimeout:
            outcome.append("timed out")

    caller = threading.Thread(target=call)
    caller.start()
    caller.join()
    assert outcome == ["timed out"]  # the server thread is still sleeping on its 30 s fault
    started = time.monotonic()
    shop.stop()
    assert time.monotonic() - started < 2
    with pytest.raises(requests.ConnectionError):
        requests.get(shop.api_url + "orders", timeout=1)


# --- log, concurrency ---------------------------------------------------------------------------------------


def test_request_log(sim):
    session = ws(sim)
    session.get(sim.api_url + "order_carriers", params={"filter[id_order]": "[1001]", "display": "full"})
    session.post(sim.api_url + "order_histories", params={"sendemail": "0"}, data=history_body(1001, 4))
    get, post = sim.requests[-2:]
    assert get == {
        **get,
        "method": "GET",
        "path": "/api/order_carriers",
        "resource": "order_carriers",
        "id": None,
        "query": {"filter[id_order]": "[1001]", "display": "full"},
        "body": "",
        "status": 200,
    }
    assert post["method"] == "POST" and post["path"] == "/api/order_histories" and post["body"] == history_body(1001, 4)
    assert post["query"] == {"sendemail": "0"} and post["status"] == 201
    session.get(sim.api_url + "orders/1001")
    assert sim.requests[-1]["id"] == 1001
    sim.reset_log()
    assert sim.requests == [] and sim.orders[1001]["current_state"] == 4


def test_concurrent_posts_are_all_applied(sim):
    def post(state: int):
        ws(sim).post(sim.api_url + "order_histories", data=history_body(1002, state))

    threads = [threading.Thread(target=post, args=(3 + i % 2,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = [h for h in sim.histories if h["id_order"] == 1002]
    assert len(rows) == 21 and len({h["id"] for h in sim.histories}) == len(sim.histories)
