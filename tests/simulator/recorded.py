"""The shop PrestaShop 8.1.2 was recorded on (recordings/prestashop-8.1.2/README.md, "Shop state at the start of
the run"), built from the recording's own answers where they show it: the orders and their rows
(orders_full_json), the order_carrier rows (order_carriers_by_order_json), the order states in the order the shop
lists them (order_states_full_json), PS_OS_SHIPPING's configuration row (configuration_ps_os_shipping_json), the
key's permissions and the shop name (root_xml). The rest is the README's description of the clean demo data.
recordings/prestashop-8.1.2/ is a copy of the project's shared reference folder of that name, kept beside the
simulator so that its tests run anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

from .php import php_int
from .shopdata import RESOURCES

RECORDING = Path(__file__).parent / "recordings" / "prestashop-8.1.2" / "transcripts.jsonl"
INSTALLED_AT = "2026-12-01 11:09:59"  # the demo orders' dates (README: local time, written a few seconds before the run)
METHODS = ("get", "put", "post", "patch", "delete", "head")


def transcripts(path: Path = RECORDING) -> list[dict]:
    """The recorded exchanges, in the order they were run."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def recorded_8_1_2(cls, key: str, **options):
    """A started-or-not ShopSimulator (`cls`) holding the recorded shop's initial state."""
    answers = {t["name"]: t["response"]["body"] for t in transcripts()}
    api = ET.fromstring(answers["root_xml"]).find("api")
    options = {"languages": (1,), "timezone": "Europe/Paris", **options}  # README: one language (fr, id 1)
    sim = cls(version="8.1.2", key=key, shop_name=api.get("shopName"), **options)
    sim.permissions = {node.tag: {m.upper() for m in METHODS if node.get(m) == "true"} for node in api}
    sim.configuration.update({"PS_MAIL_METHOD": "3"})  # README: e-mail disabled
    sim.config_ids["PS_OS_SHIPPING"] = json.loads(answers["configuration_ps_os_shipping_json"])["configurations"][0]["id"]
    _states(sim, json.loads(answers["order_states_full_json"])["order_states"])
    _carriers(sim)
    sim.add_customer(2, "pub@prestashop.com", "John", "DOE")  # README: customer 2, John DOE
    carrier_row = json.loads(answers["order_carriers_by_order_json"])["order_carriers"][0]
    for order in json.loads(answers["orders_full_json"])["orders"]:
        _order(sim, order, carrier_row)
    # History rows 1-7 (README: the next ones are 8-10): one per order, plus the moves of orders 1 (to 6) and 3
    # (to 8), as the db_effect counts show (history_rows, last_history_id); only order 2's row is read back
    # (order_histories_by_order_json).
    for history_id, id_order, state in ((1, 1, 1), (2, 2, 1), (3, 3, 1), (4, 4, 1), (5, 5, 10), (6, 1, 6), (7, 3, 8)):
        sim.histories.append({"id": history_id, "id_order": id_order, "id_order_state": state, "id_employee": 0, "date_add": INSTALLED_AT})
    return sim


def _states(sim, rows: list[dict]) -> None:
    """Replaces the native states by the recorded ones, in the recorded order (the PS_OS_* keys stay: README)."""
    sim.states.clear()
    for row in rows:
        flags = {name: php_int(value) for name, value in row.items() if name not in ("id", "name", "template", "module_name", "color")}
        sim.add_state(row["name"], id=row["id"], template=row["template"], module_name=row["module_name"], color=row["color"], **flags)


def _carriers(sim) -> None:
    """Demo carriers (not in the recording but for carrier 2's empty URL, README): 2 "My carrier", charging
    7.00 / 8.40 (order_carriers_by_order_json), and 1, free (date_upd.md row 10: moving order 5 to it took the
    shipping to 0.00)."""
    sim.carriers.clear()
    sim.add_carrier(1, "Click and collect", "", delay="Pick up in-store")
    sim.add_carrier(2, "My carrier", "", delay="Delivery next day!", shipping_cost=("7.000000", "8.400000"))


def _order(sim, answer: dict, carrier_row: dict) -> None:
    fields = {f.name: f for f in RESOURCES["orders"].fields}
    order = {
        name: (php_int(value) if fields[name].kind in ("bool", "int") else value)
        for name, value in answer.items()
        if name in fields and not fields[name].getter
    }
    sim.orders[order["id"]] = order
    sim.order_details[order["id"]] = [dict(row) for row in answer["associations"]["order_rows"]]
    # README: order_carrier id = order id; every demo row is like order 2's.
    sim.add_order_carrier(
        order["id"],
        order["id_carrier"],
        id=order["id"],
        id_order_invoice=0,
        weight=carrier_row["weight"],
        shipping_cost_tax_excl=carrier_row["shipping_cost_tax_excl"],
        shipping_cost_tax_incl=carrier_row["shipping_cost_tax_incl"],
        date_add=order["date_add"],
    )
