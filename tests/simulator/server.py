"""A faithful, stateful PrestaShop legacy webservice (`/api/`) over real HTTP on loopback.

What it simulates, with the section of the PrestaShop webservice reference (prestashop-webservice.md):

* authentication, permissions and their error codes (§2.2), in the order the core checks them
  (dispatcher, then WebserviceRequest::fetch: webservice on, key, shop, language, resource, method);
* XML input only, XML or JSON output with the exact JSON shapes (§2.3), including the bare `[]` of an
  empty list;
* display / filter / sort / limit / date / language / schema / ps_method / sendemail (§2.4);
* POST / PUT (full replacement) / PATCH (8.0+ only) write semantics (§2.5) for order_carriers,
  order_histories and messages; GET on orders, order_carriers, order_histories, order_states, carriers,
  configurations, messages;
* the side effects of a state change (§5.1) and the mails a real shop would send (§3.2, §3.3, §5.3),
  logged in `mails` instead of being sent;
* injected faults: errors before anything is applied, errors *after* the write was committed (§5.4, §2.6),
  timeouts, connection resets, 429 and 503 (§9).

Deliberate simplifications are listed in the package README-like docstring of `__init__` and in comments
starting with "Simulator choice".
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import re
import socket
import string
import struct
import sys
import threading
import time
import traceback
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.etree import ElementTree as ET
from xml.sax.saxutils import quoteattr

from .shopdata import CARRIERS, NATIVE_STATES, PS_RESOURCES, RESOURCES, Field, Resource

REALM = 'Basic realm="Welcome to PrestaShop Webservice, please enter the authentication key as the login. No password required."'

FAULT_KINDS = ("500", "500_after_commit", "timeout", "timeout_before", "reset", "reset_after_commit", "429", "503")
_AFTER_COMMIT = {"500_after_commit", "timeout", "reset_after_commit"}
CHAOS_KINDS = ("500", "500_after_commit", "reset", "reset_after_commit", "429", "503")

MAX_BODY = 5 * 1024 * 1024
NUMERIC_KINDS = {"id", "int", "bool", "float"}
ZERO_DATE = "0000-00-00 00:00:00"


# ------------------------------------------------------------------------------------------------------------
# Small PHP / MySQL look-alikes
# ------------------------------------------------------------------------------------------------------------

def php_truthy(value) -> bool:
    """PHP (bool) of a request string: "" and "0" are false, anything else ("false" included) is true."""
    return value is not None and value not in ("", "0")


def php_int(value) -> int:
    """PHP (int) cast of a string: leading integer, else 0."""
    match = re.match(r"\s*([+-]?\d+)", str(value))
    return int(match.group(1)) if match else 0


def mysql_number(value) -> float:
    """MySQL's string-to-number conversion: the leading numeric prefix, else 0."""
    match = re.match(r"\s*([+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)", str(value))
    return float(match.group(1)) if match else 0.0


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def did_you_mean(label: str, value: str, choices: list[str]) -> str:
    """WebserviceRequest::setErrorDidYouMean."""
    closest, shortest = "", -1
    for word in choices:
        distance = levenshtein(value, word)
        if distance == 0:
            closest = word
            break
        if distance <= shortest or shortest < 0:
            closest, shortest = word, distance
    text = f'{label}. Did you mean: "{closest}"?'
    if len(choices) > 1:
        text += ' The full list is: "' + '", "'.join(choices) + '"'
    return text


# Validate::* (classes/Validate.php). Python's `$` matches before a final newline exactly like PHP's
# (no D modifier), so "ABC\n" passes isTrackingNumber as it does in PrestaShop; a pretty-printed value
# ("\n  ABC\n") fails because of its leading newline and spaces (§2.3, §3.3).
_TRACKING = re.compile(r"^[~:#,%&_=\(\)\[\]\.\? \+\-@/a-zA-Z0-9]+$")
_DATE = re.compile(r"^([0-9]{4})-((0?[0-9])|(1[0-2]))-((0?[0-9])|([1-2][0-9])|(3[01]))( [0-9]{2}:[0-9]{2}:[0-9]{2})?$")
_FLOAT = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")


def _is_date(value: str) -> bool:
    match = _DATE.match(value)
    if not match:
        return False
    try:
        datetime(int(match.group(1)), int(match.group(2)), int(match.group(5)))
    except ValueError:
        return False
    return True


VALIDATORS = {
    "isUnsignedId": lambda v: bool(re.fullmatch(r"\d+", v)) and int(v) < 4294967296,
    "isFloat": lambda v: bool(_FLOAT.match(v)),
    "isTrackingNumber": lambda v: bool(_TRACKING.match(v)),
    "isDate": _is_date,
    "isBool": lambda v: bool(re.match(r"^(0|1)$", v)),
    "isCleanHtml": lambda v: not re.search(r"<\s*(script|iframe|form|input|embed|object)\b|\bon\w+\s*=|javascript:", v, re.I),
}


def _cdata(value: str) -> str:
    return "<![CDATA[" + str(value).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _xml_document(inner: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<prestashop xmlns:xlink="http://www.w3.org/1999/xlink">\n'
            + inner + "</prestashop>\n")


def _php_params(pairs: list[tuple[str, str]]) -> dict:
    """$_GET as PHP builds it: `filter[id_order]=[5]` becomes {"filter": {"id_order": "[5]"}}; last value wins."""
    params: dict = {}
    for key, value in pairs:
        match = re.fullmatch(r"([^\[\]]+)((?:\[[^\]]*\])+)", key)
        if not match:
            params[key] = value
            continue
        subs = re.findall(r"\[([^\]]*)\]", match.group(2))
        node = params.get(match.group(1))
        if not isinstance(node, dict):
            node = params[match.group(1)] = {}
        for sub in subs[:-1]:
            child = node.get(sub)
            if not isinstance(child, dict):
                child = node[sub] = {}
            node = child
        node[subs[-1]] = value
    return params


class WsError(Exception):
    """A webservice error answer: status, code, message (rendered as <errors> in XML or {"errors"} in JSON)."""

    def __init__(self, status: int, code: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class _Response:
    def __init__(self, status: int, body: bytes | None = b"", content_type: str | None = None, headers: dict | None = None):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}
        self.delay = 0.0  # seconds to wait before answering ("timeout" faults)
        self.reset = False  # close the socket without any answer ("reset" faults)


class _Ctx:
    """One webservice request."""

    def __init__(self):
        self.http_method = "GET"
        self.method = "GET"  # after the ps_method override
        self.resource = ""
        self.url_id = ""
        self.params: dict = {}
        self.body = ""
        self.json = False
        self.authenticated = False
        self.languages: list[int] = []
        self.shop_ids: list[int] = []
        self.ws_url = ""
        self.fault: dict | None = None
        self.started = time.monotonic()


# ------------------------------------------------------------------------------------------------------------
# The simulator
# ------------------------------------------------------------------------------------------------------------

class ShopSimulator:
    """A PrestaShop shop whose webservice answers over HTTP on 127.0.0.1.

    State is plain data, readable and writable by tests: `orders`, `order_carriers`, `histories`,
    `messages`, `states`, `carriers`, `configuration`, `permissions`; side effects are recorded in `mails`
    and every request in `requests`. All request handling runs under `lock`.
    """

    def __init__(self, version: str = "8.1.5", key: str = "A" * 32, languages=(1, 2), *, shop_name: str = "Sim",
                 host: str = "127.0.0.1", port: int = 0, seed: int | None = None):
        self.version = version
        self.key = key
        self.languages = tuple(int(lang) for lang in languages)
        self.shop_name = shop_name
        self.host, self.port = host, port
        self.lock = threading.RLock()
        self.rng = random.Random(seed)
        self.clock = datetime.now  # replace to control date_add / date_upd
        self.verbose = False  # log each request on stderr (python -m tests.simulator)
        self.latency = 0.0  # seconds each request costs before it is handled (a real shop bootstraps PHP each time)
        # Called with the request entry after a write was applied and before its answer is sent (crash tests).
        self.after_write = None

        self.webservice_enabled = True  # PS_WEBSERVICE; off → 503 code 22
        self.key_active = True  # off → 401 code 20
        self.permissions: dict[str, set[str]] = self.default_permissions()
        self.shops: dict[int, str] = {1: shop_name}
        self.key_shops: set[int] | None = None  # shops the key is enabled on (None = all); else 403 code 132

        self.states: dict[int, dict] = {}
        self.configuration: dict[str, str] = {"PS_SHOP_NAME": shop_name, "PS_LANG_DEFAULT": "1"}
        for row in NATIVE_STATES:
            self._add_native_state(*row)
        self.carriers: dict[int, dict] = {}
        for carrier_id, reference, name, url, deleted, delay_en, delay_fr in CARRIERS:
            self.add_carrier(carrier_id, name, url, id_reference=reference, deleted=deleted,
                             delay={1: delay_en, 2: delay_fr})

        self.orders: dict[int, dict] = {}
        self.order_carriers: dict[int, dict] = {}
        self.histories: list[dict] = []
        self.messages: list[dict] = []
        self.mails: list[dict] = []
        self.requests: list[dict] = []
        self.internal_errors: list[str] = []  # simulator bugs (answered 500 code 15); tests may assert it is empty

        self._config_ids: dict[str, int] = {}
        self._next_invoice = 1
        self._next_delivery = 1
        self._faults: list[dict] = []
        self._chaos: dict | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connections: set = set()

    # --- version -------------------------------------------------------------------------------------------

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", self.version)[:4]) or (0,)

    @property
    def supports_patch(self) -> bool:
        """PATCH exists from 8.0.0 (§0)."""
        return self.version_tuple[0] >= 8

    def default_permissions(self) -> dict[str, set[str]]:
        """What a sync key needs (§9.2): GET everywhere it reads, POST order_histories and messages,
        PUT (and PATCH on 8+) order_carriers."""
        read = {"GET", "HEAD"}
        carrier_write = read | {"PUT"} | ({"PATCH"} if self.supports_patch else set())
        return {
            "orders": set(read),
            "order_carriers": carrier_write,
            "order_histories": read | {"POST"},
            "order_states": set(read),
            "carriers": set(read),
            "configurations": set(read),
            "messages": read | {"POST"},
        }

    # --- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> "ShopSimulator":
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.sim = self  # type: ignore[attr-defined]
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"shop-simulator-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops promptly: pending "timeout" faults are woken up, open keep-alive connections closed."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self.lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=2)

    def __enter__(self) -> "ShopSimulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The shop base URL; the webservice is under `url + "api/"`."""
        return f"http://{self.host}:{self.port}/"

    @property
    def api_url(self) -> str:
        return self.url + "api/"

    # --- data set-up ---------------------------------------------------------------------------------------

    def _now(self) -> str:
        return self.clock().strftime("%Y-%m-%d %H:%M:%S")

    def _ml(self, value) -> dict[int, str]:
        """A multilingual value for every shop language: a dict per language id, or one string for all."""
        if isinstance(value, dict):
            default = value.get(1, next(iter(value.values()), ""))
            return {lang: str(value.get(lang, default)) for lang in self.languages}
        return {lang: str(value) for lang in self.languages}

    def _add_native_state(self, state_id, keys, english, french, template, invoice, send_email, logable,
                          delivery, shipped, paid, pdf_invoice, module, color):
        self.add_state({1: english, 2: french}, id=state_id, config_key=list(keys), template=template,
                       invoice=invoice, send_email=send_email, logable=logable, delivery=delivery,
                       shipped=shipped, paid=paid, pdf_invoice=pdf_invoice, module_name=module, color=color,
                       unremovable=1)

    def add_state(self, name, *, id: int | None = None, template="", send_email=0, logable=0, invoice=0,
                  delivery=0, shipped=0, paid=0, pdf_invoice=0, pdf_delivery=0, hidden=0, deleted=0,
                  unremovable=0, module_name="", color="#3498D8", config_key=None) -> dict:
        """A custom (or native) order state. `name`/`template`: one string, or a dict per language id."""
        with self.lock:
            state_id = id if id is not None else max(self.states, default=0) + 1
            state = {
                "id": state_id, "unremovable": int(unremovable), "delivery": int(delivery), "hidden": int(hidden),
                "send_email": int(send_email), "module_name": module_name, "invoice": int(invoice), "color": color,
                "logable": int(logable), "shipped": int(shipped), "paid": int(paid), "pdf_delivery": int(pdf_delivery),
                "pdf_invoice": int(pdf_invoice), "deleted": int(deleted), "name": self._ml(name),
                "template": self._ml(template),
            }
            self.states[state_id] = state
            for key in ([config_key] if isinstance(config_key, str) else config_key or []):
                self.configuration[key] = str(state_id)
            return state

    def add_carrier(self, id: int, name: str, url: str = "", *, id_reference: int | None = None, active=1,
                    deleted=0, delay="") -> dict:
        with self.lock:
            carrier = {
                "id": id, "deleted": int(deleted), "is_module": 0, "id_tax_rules_group": 1,
                "id_reference": id_reference if id_reference is not None else id, "name": name, "active": int(active),
                "is_free": 0, "url": url, "shipping_handling": 1, "shipping_external": 0, "range_behavior": 0,
                "shipping_method": 2, "max_width": 0, "max_height": 0, "max_depth": 0, "max_weight": "0.000000",
                "grade": 0, "external_module_name": "", "need_range": 0, "position": len(self.carriers),
                "delay": self._ml(delay),
            }
            self.carriers[id] = carrier
            return carrier

    def _reference(self) -> str:
        return "".join(self.rng.choice(string.ascii_uppercase) for _ in range(9))

    def add_order(self, id_order: int | None = None, reference: str | None = None, current_state: int = 2,
                  id_carrier: int = 27, id_customer: int = 1, tracking_number: str = "", id_shop: int = 1, *,
                  id_lang: int = 1, date_add: str | None = None) -> dict:
        """An order as validateOrder leaves it: one order_carriers row, one initial history row (id_employee 0).

        Simulator choice: no mail is logged for the initial state (the order confirmation is not part of
        the sync), so `mails` only holds what the middleware (or set_state_by_hand) caused."""
        with self.lock:
            if id_order is None:
                id_order = max(self.orders, default=0) + 1
            if id_order in self.orders:
                raise ValueError(f"order {id_order} already exists")
            if current_state not in self.states:
                raise ValueError(f"unknown order state {current_state}")
            state = self.states[current_state]
            now = date_add or self._now()
            order = {
                "id": id_order, "id_address_delivery": 1, "id_address_invoice": 1, "id_cart": id_order,
                "id_currency": 1, "id_lang": id_lang, "id_customer": id_customer, "id_carrier": id_carrier,
                "current_state": current_state, "module": "ps_wirepayment", "invoice_number": 0,
                "invoice_date": ZERO_DATE, "delivery_number": 0, "delivery_date": ZERO_DATE,
                "valid": int(state["logable"]), "date_add": now, "date_upd": now, "id_shop_group": 1,
                "id_shop": id_shop, "payment": "Bank wire", "total_paid": "42.900000",
                "total_paid_tax_incl": "42.900000", "total_paid_tax_excl": "35.750000", "total_paid_real": "0.000000",
                "total_shipping": "7.900000", "reference": reference or self._reference(),
            }
            self.orders[id_order] = order
            self.shops.setdefault(id_shop, f"Shop {id_shop}")
            invoice = 0
            if state["invoice"]:
                invoice = self._next_invoice
                self._next_invoice += 1
                order["invoice_number"], order["invoice_date"] = invoice, now
            if state["delivery"]:
                order["delivery_number"], order["delivery_date"] = self._next_delivery, now
                self._next_delivery += 1
            self.add_order_carrier(id_order, id_carrier, tracking_number=tracking_number, id_order_invoice=invoice,
                                   date_add=now)
            self.histories.append({"id": self._next_history_id(), "id_order": id_order,
                                   "id_order_state": current_state, "id_employee": 0, "date_add": now})
            return order

    def add_order_carrier(self, id_order: int, id_carrier: int = 27, *, tracking_number: str = "",
                          id_order_invoice: int = 0, weight: str = "1.200000", shipping_cost_tax_excl: str = "6.580000",
                          shipping_cost_tax_incl: str = "7.900000", date_add: str | None = None) -> dict:
        """Another order_carriers row (legacy multi-shipping, §3.3); add_order already creates the first one."""
        with self.lock:
            row = {
                "id": max(self.order_carriers, default=0) + 1, "id_order": id_order, "id_carrier": id_carrier,
                "id_order_invoice": id_order_invoice, "weight": weight, "shipping_cost_tax_excl": shipping_cost_tax_excl,
                "shipping_cost_tax_incl": shipping_cost_tax_incl, "tracking_number": tracking_number,
                "date_add": date_add or self._now(),
            }
            self.order_carriers[row["id"]] = row
            return row

    def carrier_rows(self, id_order: int) -> list[dict]:
        """The order's order_carriers rows, lowest id first (what MySQL returns first, §3.3)."""
        with self.lock:
            return sorted((r for r in self.order_carriers.values() if r["id_order"] == id_order), key=lambda r: r["id"])

    def set_state_by_hand(self, id_order: int, state_id: int, id_employee: int = 1) -> dict:
        """What a merchant does on the BO order page (§5.3): refused when the order already has that state,
        always mails when the state sends mail. Returns the history row."""
        with self.lock:
            order = self.orders[id_order]
            if state_id not in self.states:
                raise KeyError(f"unknown order state {state_id}")
            if order["current_state"] == state_id:
                raise ValueError("The order has already been assigned this status.")
            return self._change_state(order, state_id, id_employee=id_employee, send_mail=True, source="back_office")

    def set_tracking_by_hand(self, id_order: int, tracking_number: str) -> dict:
        """BO "edit shipping" (§7.3): writes the first order_carriers row, mails in_transit when the number
        is non-empty and changed."""
        with self.lock:
            rows = self.carrier_rows(id_order)
            row = rows[0]
            changed = row["tracking_number"] != tracking_number
            row["tracking_number"] = tracking_number
            self.orders[id_order]["date_upd"] = self._now()
            if changed and tracking_number:
                self._in_transit_mail(row, source="back_office")
            return row

    # --- faults --------------------------------------------------------------------------------------------

    def fail_next(self, method: str, resource: str, kind: str, *, times: int = 1, retry_after: float = 1,
                  delay: float = 3.0) -> None:
        """The next `times` requests matching method (after any ps_method override) and resource fail.

        "*" matches any method / resource. Faults are checked after authentication and permissions, in the
        order they were registered. Kinds:
          500                 nothing applied, 500 code 2 (a PHP error turned into a webservice error, §2.6)
          500_after_commit    applied, then 500 code 46; a mail the write would send is NOT logged (§5.4)
          timeout             applied, then the answer waits `delay` s (the client times out first)
          timeout_before      nothing applied; after `delay` s a proxy-style 504 text answer
          reset / reset_after_commit   connection closed (RST) without any answer, before / after applying
          429                 nothing applied, host rate limit with Retry-After: retry_after
          503                 nothing applied, webservice-style 503 code 22
        After-commit kinds only replace a successful answer: a request the shop refuses (4xx) gets its
        normal answer (the fault is used up all the same)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {FAULT_KINDS}")
        with self.lock:
            self._faults.append({"method": method.upper(), "resource": resource, "kind": kind, "remaining": int(times),
                                 "retry_after": retry_after, "delay": float(delay)})

    def fault_rate(self, probability: float, kinds=CHAOS_KINDS, seed: int = 0, *, delay: float = 3.0,
                   retry_after: float = 1) -> None:
        """Random faults on every request (after fail_next ones); 0 disables. Deterministic for a seed and
        a request sequence."""
        for kind in kinds:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}")
        with self.lock:
            if not probability:
                self._chaos = None
            else:
                self._chaos = {"p": float(probability), "kinds": tuple(kinds), "rng": random.Random(seed),
                               "delay": float(delay), "retry_after": retry_after}

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()
            self._chaos = None

    def _take_fault(self, method: str, resource: str) -> dict | None:
        for fault in self._faults:
            if fault["method"] in ("*", method) and fault["resource"] in ("*", resource):
                fault["remaining"] -= 1
                if fault["remaining"] <= 0:
                    self._faults.remove(fault)
                return dict(fault)
        chaos = self._chaos
        if chaos and chaos["rng"].random() < chaos["p"]:
            return {"kind": chaos["rng"].choice(chaos["kinds"]), "delay": chaos["delay"],
                    "retry_after": chaos["retry_after"], "method": method, "resource": resource}
        return None

    # --- log -----------------------------------------------------------------------------------------------

    def reset_log(self) -> None:
        """Clears `requests` (not the shop state, not `mails`)."""
        with self.lock:
            self.requests.clear()

    def requests_to(self, resource: str, method: str | None = None) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["resource"] == resource
                    and (method is None or r["effective_method"] == method.upper())]

    # --- state changes (§5) --------------------------------------------------------------------------------

    def _next_history_id(self) -> int:
        return max((h["id"] for h in self.histories), default=0) + 1

    def _change_state(self, order: dict, state_id: int, *, id_employee: int, send_mail: bool, source: str) -> dict:
        """OrderHistory::changeIdOrderState (§5.1) then add() / addWithemail()."""
        state = self.states[state_id]
        now = self._now()
        order["current_state"] = state_id
        order["valid"] = 1 if state["logable"] else 0  # step 5
        if state["invoice"] and not order["invoice_number"]:  # step 6: first invoice
            invoice = self._next_invoice
            self._next_invoice += 1
            order["invoice_number"], order["invoice_date"] = invoice, now
            for row in self.carrier_rows(order["id"]):  # Order::setInvoice links the first unlinked carrier row
                if not row["id_order_invoice"]:
                    row["id_order_invoice"] = invoice
                    break
        if state["delivery"]:  # step 8: Order::setDelivery, delivery_date re-stamped at every such transition
            if not order["delivery_number"]:
                order["delivery_number"] = self._next_delivery
                self._next_delivery += 1
            order["delivery_date"] = now
        order["date_upd"] = now
        history = {"id": self._next_history_id(), "id_order": order["id"], "id_order_state": state_id,
                   "id_employee": int(id_employee or 0), "date_add": now}
        self.histories.append(history)  # step 11
        if send_mail:
            self._state_mail(order, state, source)
        return history

    def _followup(self, order: dict, tracking: str) -> str:
        carrier = self.carriers.get(order["id_carrier"])  # orders.id_carrier, not order_carrier's (§3.3)
        url = carrier["url"] if carrier else ""
        return url.replace("@", tracking) if url and tracking else ""

    def _state_mail(self, order: dict, state: dict, source: str) -> None:
        lang = order.get("id_lang", 1)
        template = state["template"].get(lang) or state["template"].get(self.languages[0], "")
        if not state["send_email"] or not template:  # empty template = no mail even with send_email=1 (§3.4)
            return
        rows = self.carrier_rows(order["id"])
        tracking = rows[0]["tracking_number"] if rows else ""  # read at send time (§5.1 step 11)
        self.mails.append({"id_order": order["id"], "template": template, "kind": "state", "state_id": state["id"],
                           "tracking_number": tracking, "followup": self._followup(order, tracking), "id_lang": lang,
                           "source": source, "date_add": self._now()})

    def _in_transit_mail(self, row: dict, source: str = "webservice") -> None:
        order = self.orders.get(row["id_order"])
        if order is None:
            return
        carrier = self.carriers.get(order["id_carrier"])
        if self.version_tuple >= (8, 1) and not (carrier and carrier["url"]):
            return  # skipped since 8.1.x when the carrier has no URL (PR #32535, §0)
        self.mails.append({"id_order": order["id"], "template": "in_transit", "kind": "in_transit",
                           "tracking_number": row["tracking_number"],
                           "followup": self._followup(order, row["tracking_number"]),
                           "id_lang": order.get("id_lang", 1), "source": source, "date_add": self._now()})

    # --- HTTP entry point ----------------------------------------------------------------------------------

    def _track(self, connection, add: bool) -> None:
        with self.lock:
            (self._connections.add if add else self._connections.discard)(connection)

    def _serve(self, handler: "_Handler") -> None:
        ctx = _Ctx()
        try:
            raw_body = handler.read_body()
        except WsError as error:
            handler.send(_Response(error.status, (error.message + "\n").encode(), "text/plain; charset=utf-8",
                                   {"Connection": "close"}), None)
            return
        split = urlsplit(handler.path)
        pairs = parse_qsl(split.query, keep_blank_values=True)
        path = unquote(split.path)
        ctx.http_method = handler.command
        ctx.body = raw_body.decode("utf-8", errors="replace")
        ctx.params = _php_params(pairs)
        entry = {"method": handler.command, "path": split.path, "resource": None, "id": None, "query": dict(pairs),
                 "body": ctx.body, "effective_method": handler.command, "status": None, "fault": None,
                 "time": time.time()}
        match = re.fullmatch(r"/api(?:/(.*))?", path)
        if match:
            segments = (match.group(1) or "").split("/")
            ctx.resource = segments[0]
            ctx.url_id = segments[1] if len(segments) > 1 else ""
            entry["resource"] = ctx.resource
            entry["id"] = int(ctx.url_id) if ctx.url_id.isdigit() else (ctx.url_id or None)
        with self.lock:
            self.requests.append(entry)
        if self.latency:
            time.sleep(self.latency)  # outside the lock: concurrent requests overlap, as on a real server
        if not match:
            response = self._shop_front(path)
        else:
            try:
                response = self._api(ctx, handler, entry)
            except Exception:  # a simulator bug: make it visible
                text = traceback.format_exc()
                with self.lock:
                    self.internal_errors.append(text)
                response = self._error(ctx, WsError(500, 15, "[Simulator internal error] " + text.splitlines()[-1]))
        with self.lock:
            entry["status"] = None if response.reset else response.status
            entry["fault"] = ctx.fault["kind"] if ctx.fault else None
        hook = self.after_write
        if hook is not None and entry["effective_method"] in ("POST", "PUT", "PATCH") and (response.status or 0) < 300:
            hook(entry)
        handler.send(response, ctx)

    def _shop_front(self, path: str) -> _Response:
        if path in ("", "/"):
            return _Response(200, f"<html><body><h1>{self.shop_name}</h1></body></html>\n".encode(), "text/html; charset=utf-8")
        return _Response(404, b"<html><body><h1>404 Not Found</h1></body></html>\n", "text/html; charset=utf-8")

    def _api(self, ctx: _Ctx, handler: "_Handler", entry: dict) -> _Response:
        params = ctx.params
        headers = handler.headers
        # §2.3: first match wins; the value must be exactly "JSON" (the core's switch is case-sensitive).
        fmt = headers.get("Io-Format") or headers.get("Output-Format") or params.get("output_format") or params.get("io_format")
        ctx.json = fmt == "JSON"
        host = headers.get("Host") or f"{self.host}:{self.port}"
        ctx.ws_url = f"http://{host}/api/"

        # A form-encoded POST may carry the XML in an `xml` field and ps_method (dispatcher reads $_REQUEST).
        form: dict = {}
        if ctx.http_method == "POST" and "application/x-www-form-urlencoded" in (headers.get("Content-Type") or ""):
            form = dict(parse_qsl(ctx.body, keep_blank_values=True))
        override = params.get("ps_method") if isinstance(params.get("ps_method"), str) else form.get("ps_method")
        # The dispatcher takes ps_method as is (case-sensitive: "put" is not a valid method, code 23).
        ctx.method = override if override is not None else ctx.http_method
        entry["effective_method"] = ctx.method
        if "xml" in form:
            ctx.body = form["xml"]
        elif ctx.http_method not in ("POST", "PUT", "PATCH"):
            ctx.body = ""  # the body is only read for real POST/PUT/PATCH requests (§2.4 ps_method)

        # Dispatcher: Basic auth user first, then ws_key; neither → bare 401 text (§2.2).
        key = None
        auth = headers.get("Authorization") or ""
        if auth[:6].lower() == "basic ":
            try:
                key = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8").split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                key = None
        if key is None and isinstance(params.get("ws_key"), str):
            key = params["ws_key"]
        if key is None:
            return _Response(401, b"401 Unauthorized", "text/html; charset=utf-8", {"WWW-Authenticate": REALM})

        with self.lock:
            try:
                self._checks(ctx, key.strip())
            except WsError as error:
                return self._error(ctx, error)
            fault = self._take_fault(ctx.method, ctx.resource)
            ctx.fault = fault
            if fault and fault["kind"] not in _AFTER_COMMIT:
                return self._fault_before(ctx, fault)
            try:
                response = self._dispatch(ctx)
            except WsError as error:
                return self._error(ctx, error)
        if fault and 200 <= response.status < 300:
            kind = fault["kind"]
            if kind == "500_after_commit":
                return self._error(ctx, WsError(500, 46, "Unable to save resource"))
            if kind == "timeout":
                response.delay = fault["delay"]
            elif kind == "reset_after_commit":
                response.reset = True
        return response

    def _fault_before(self, ctx: _Ctx, fault: dict) -> _Response:
        kind = fault["kind"]
        if kind == "500":
            # webserviceErrorHandler: E_ERROR → code 2 (a warning would be code 3, a notice 5).
            return self._error(ctx, WsError(500, 2, "[PHP Error #1] Simulated error raised by a module before "
                                                    "anything was saved (modules/simulated/simulated.php, line 42)"))
        if kind == "503":
            ctx.authenticated = False  # isActivated() runs before authentication: no PSWS-Version
            return self._error(ctx, WsError(503, 22, "The PrestaShop webservice is disabled. Please activate it in the PrestaShop Back Office"))
        if kind == "429":
            return _Response(429, b"Too Many Requests\n", "text/plain; charset=utf-8",
                             {"Retry-After": str(fault["retry_after"])})
        if kind == "reset":
            response = _Response(0)
            response.reset = True
            return response
        if kind == "timeout_before":
            response = _Response(504, b"Gateway Timeout\n", "text/plain; charset=utf-8")
            response.delay = fault["delay"]
            return response
        raise AssertionError(kind)

    # --- checks, in WebserviceRequest::fetch order ---------------------------------------------------------

    def _checks(self, ctx: _Ctx, key: str) -> None:
        params = ctx.params
        if not self.webservice_enabled:
            raise WsError(503, 22, "The PrestaShop webservice is disabled. Please activate it in the PrestaShop Back Office")
        www = {"WWW-Authenticate": REALM}
        if not key:
            raise WsError(401, 17, "Authentication key is empty", www)
        if len(key) != 32:
            raise WsError(401, 18, "Invalid authentication key format", www)
        # Simulator choice: a 32-character key that is not the shop's is treated as an unknown/inactive key.
        if key != self.key or not self.key_active:
            raise WsError(401, 20, "Authentification key is not active", www)
        if not self.permissions:
            raise WsError(401, 21, "No permission for this authentication key", www)
        ctx.authenticated = True

        # Shop context (groupShopExists, shopExists, shopHasRight).
        group = params.get("id_shop_group", params.get("id_group_shop"))
        if isinstance(group, str) and group.isdigit():
            if int(group) != 1:
                raise WsError(500, 999, "This shop group doesn't have shops")
            ctx.shop_ids = sorted(self.shops)
        elif "id_shop" in params:
            value = params["id_shop"]
            if value == "all":
                ctx.shop_ids = sorted(self.shops)
            elif isinstance(value, str) and re.fullmatch(r"[+-]?\d+(\.\d+)?", value):
                ctx.shop_ids = [php_int(value)]
            else:
                raise WsError(404, 999, "This shop id does not exist")
        else:
            ctx.shop_ids = [1]
        if self.key_shops is not None and not any(s in self.key_shops for s in ctx.shop_ids):
            raise WsError(403, 132, "No permission for this key on this shop")
        if not any(s in self.shops for s in ctx.shop_ids):
            raise WsError(403, 132, "No permission for this key on this shop")

        ctx.languages = self._languages(params.get("language"))

        # checkResource, then checkHTTPMethod.
        resource = ctx.resource
        if resource:
            if resource not in PS_RESOURCES:
                raise WsError(400, 27, did_you_mean(f'Resource of type "{resource}" does not exists', resource,
                                                    sorted(PS_RESOURCES)))
            if resource not in self.permissions:
                raise WsError(401, 26, f'Resource of type "{resource}" is not allowed with this authentication key')
        valid = {"GET", "PUT", "POST", "DELETE", "HEAD"} | ({"PATCH"} if self.supports_patch else set())
        if ctx.method not in valid:
            raise WsError(405, 23, f"Method {ctx.method} is not valid")
        if resource and ctx.method in PS_RESOURCES[resource][1]:
            raise WsError(405, 101, f"Method {ctx.method} is not allowed for the resource {resource}")
        if resource and ctx.method not in {m.upper() for m in self.permissions[resource]}:
            raise WsError(405, 25, f"Method {ctx.method} is not allowed for the resource {resource} with this authentication key")

    def _languages(self, value) -> list[int]:
        """WebserviceRequest::filterLanguage (§2.4 language)."""
        if value is None:
            return list(self.languages)
        if not isinstance(value, str):
            raise WsError(400, 79, "language value is wrong")
        if re.fullmatch(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*", value):
            wanted = [php_int(value)]
        elif value.startswith("[") and value.endswith("]"):
            inner = value[1:-1]
            if ("|" in inner) != ("," in inner):
                if "|" in inner:
                    parts = inner.split("|")
                else:
                    bounds = inner.split(",")
                    if len(bounds) != 2:
                        raise WsError(400, 78, "A range value for a language must contains only 2 values")
                    parts = [str(i) for i in range(php_int(bounds[0]), php_int(bounds[1]) + 1)]
                if not all(p.strip().isdigit() for p in parts):
                    raise WsError(400, 80, "Language ID must be numeric")
                wanted = [int(p) for p in parts]
            else:
                found = re.search(r"\[(\d+)\]", value)
                wanted = [int(found.group(1))] if found else []
        else:
            raise WsError(400, 79, "language value is wrong")
        languages = [lang for lang in wanted if lang in self.languages]
        if not languages:
            raise WsError(400, 81, "language is not available")
        return languages

    # --- dispatch ------------------------------------------------------------------------------------------

    def _dispatch(self, ctx: _Ctx) -> _Response:
        if not ctx.resource:
            if ctx.method not in ("GET", "HEAD"):
                raise WsError(405, 101, f"Method {ctx.method} is not allowed for the resource list")
            return self._ok(ctx, 200, self._resource_list(ctx))
        res = RESOURCES.get(ctx.resource)
        if res is None or ctx.method not in res.methods:
            # Simulator choice: a resource or a method the simulator does not model answers 501 code 124
            # (the core's "not implemented" answer) rather than pretending.
            raise WsError(501, 124, f"Simulator: {ctx.method} on the {ctx.resource!r} resource is not simulated")
        if ctx.method in ("GET", "HEAD"):
            return self._get(ctx, res)
        return self._save(ctx, res)

    def _ok(self, ctx: _Ctx, status: int, content: str | None) -> _Response:
        if content is None:  # GET of an unknown id: 404 with an empty body and no content type (§2.6)
            return _Response(status, b"", None, self._ps_headers(ctx))
        body = content.encode("utf-8")
        headers = self._ps_headers(ctx)
        headers["Content-Sha1"] = hashlib.sha1(body).hexdigest()
        return _Response(status, body, self._content_type(ctx), headers)

    def _content_type(self, ctx: _Ctx) -> str:
        return "application/json;charset=utf-8" if ctx.json else "text/xml;charset=utf-8"

    def _ps_headers(self, ctx: _Ctx) -> dict:
        headers = {
            "Access-Time": str(int(time.time())),
            "X-Powered-By": "PrestaShop Webservice",
            "Execution-Time": f"{time.monotonic() - ctx.started:.3f}",
        }
        if ctx.authenticated:  # "write this header only now (avoid hackers happiness...)"
            headers["PSWS-Version"] = self.version
        return headers

    def _error(self, ctx: _Ctx, error: WsError) -> _Response:
        if ctx.json:
            content = json.dumps({"errors": [{"code": error.code, "message": error.message}]}, ensure_ascii=False)
        else:
            content = _xml_document("<errors>\n<error>\n<code>" + _cdata(error.code) + "</code>\n<message>"
                                    + _cdata(error.message) + "</message>\n</error>\n</errors>\n")
        headers = self._ps_headers(ctx)
        headers.update(error.headers)
        return _Response(error.status, content.encode("utf-8"), self._content_type(ctx), headers)

    # --- records -------------------------------------------------------------------------------------------

    def _config_rows(self) -> list[dict]:
        rows = []
        for name, value in self.configuration.items():
            if name not in self._config_ids:
                self._config_ids[name] = len(self._config_ids) + 1
            rows.append({"id": self._config_ids[name], "value": value, "name": name, "id_shop_group": None,
                         "id_shop": None, "date_add": "2024-01-01 00:00:00", "date_upd": "2024-01-01 00:00:00"})
        return rows

    def _records(self, res: Resource) -> list[dict]:
        if res.name == "orders":
            return list(self.orders.values())
        if res.name == "order_carriers":
            return list(self.order_carriers.values())
        if res.name == "order_histories":
            return list(self.histories)
        if res.name == "order_states":
            return list(self.states.values())
        if res.name == "carriers":
            return list(self.carriers.values())
        if res.name == "configurations":
            return self._config_rows()
        if res.name == "messages":
            return list(self.messages)
        raise AssertionError(res.name)

    def _find(self, res: Resource, record_id: int) -> dict | None:
        for record in self._records(res):
            if int(record["id"]) == record_id:
                return record
        return None

    def _text(self, f: Field, value):
        """The value as the webservice prints it (strings; multilingual: a dict per language)."""
        if f.kind == "ml":
            value = value if isinstance(value, dict) else self._ml(value or "")
            return {lang: "" if v is None else str(v) for lang, v in value.items()}
        if value is None:
            return ""
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, float) or (f.kind == "float" and isinstance(value, int)):
            return f"{value:.6f}"
        return str(value)

    def _view(self, res: Resource, record: dict) -> dict:
        view = {}
        for f in res.fields:
            if res.name == "orders" and f.name == "shipping_number":
                rows = self.carrier_rows(record["id"])
                value = rows[0]["tracking_number"] if rows else ""  # Order::getWsShippingNumber (§3.1)
            else:
                value = record.get(f.name)
            view[f.name] = self._text(f, value)
        return view

    # --- GET -----------------------------------------------------------------------------------------------

    def _display(self, ctx: _Ctx, res: Resource):
        """setFieldsToDisplay: "full", "minimum" or a list of field names (codes 35, 36)."""
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
            raise WsError(400, 36, "The 'display' syntax is wrong. You can set 'full' or '[field_1,field_2,field_3,...]'. "
                                   "These are available: " + ", ".join(names))
        wanted = []
        for part in match.group(1).split(","):
            name = part.split("[")[0].strip()
            if "[" in part or name not in names:
                raise WsError(400, 35, f'Unable to display this field "{name}". However, these are available: ' + ", ".join(names))
            wanted.append(name)
        return wanted

    def _in_shop(self, ctx: _Ctx, res: Resource, record: dict) -> bool:
        # Simulator choice (§11 leaves it open): orders are restricted to the context shop, in lists as in
        # details (detail of an order of another shop → 404 code 131, as getFilteredObjectDetails does).
        return res.name != "orders" or record.get("id_shop") in ctx.shop_ids

    def _get(self, ctx: _Ctx, res: Resource) -> _Response:
        if ctx.url_id:
            display = self._display(ctx, res)
            record = self._find(res, php_int(ctx.url_id))
            if record is None:
                return self._ok(ctx, 404, None)
            if not self._in_shop(ctx, res, record):
                raise WsError(404, 131, f"This {res.class_name} ({record['id']}) does not exists on this shop")
            fields = "full" if display in (None, "full", "minimum") else display
            # WebserviceOutputJSON: with `display` in the query the record goes into the plural list.
            return self._ok(ctx, 200, self._render(ctx, res, [self._view(res, record)], fields, single=True,
                                                   as_list="display" in ctx.params))
        schema = ctx.params.get("schema")
        if schema is not None:
            if schema not in ("blank", "synopsis"):
                raise WsError(400, 28, "Please select a schema of type 'synopsis' to get the whole schema informations "
                                       "(which fields are required, which kind of content...) or 'blank' to get an "
                                       "empty schema to fill before using POST request")
            return self._ok(ctx, 200, self._render_schema(ctx, res, schema))
        records = [r for r in self._records(res) if self._in_shop(ctx, res, r)]
        records = self._filter_sort_limit(ctx, res, records)
        display = self._display(ctx, res) or "minimum"
        views = [self._view(res, r) for r in records]
        return self._ok(ctx, 200, self._render(ctx, res, views, display, single=False, as_list=True))

    def _filter_sort_limit(self, ctx: _Ctx, res: Resource, records: list[dict]) -> list[dict]:
        """WebserviceRequest::manageFilters: filters (29-34), display (35-36), sort (37-38), limit (39)."""
        params = ctx.params
        date_on = php_truthy(params.get("date")) if isinstance(params.get("date"), str) else bool(params.get("date"))
        available = [f.name for f in res.fields if f.kind != "ml"]
        i18n = [f.name for f in res.fields if f.kind == "ml"]
        if not date_on:  # date_add / date_upd are only filterable/sortable with date=1 (§2.4)
            available = [name for name in available if name not in ("date_add", "date_upd")]
        conditions = []
        filters = params.get("filter")
        if filters is not None:
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
                if f.getter:
                    raise WsError(400, 34, f'The field "{name}" is dynamic. It is not possible to filter GET query with this field.')
                conditions.append((f, value))
        self._display(ctx, res)  # display errors come after filter errors
        sorts = []
        sort = params.get("sort")
        if sort is not None:
            sort = sort if isinstance(sort, str) else ""
            match = re.match(r"^\[(.*)\]$", sort)
            for item in (match.group(1).split(",") if match else [sort]):
                name, _, direction = item.rpartition("_")
                if not name or direction.upper() not in ("ASC", "DESC"):
                    raise WsError(400, 37, 'The "sort" value has to be formed as this example: "field_ASC" or '
                                           '\'[field_1_DESC,field_2_ASC,field_3_ASC,...]\' ("field" has to be an available field)')
                if name not in available and name not in i18n:
                    raise WsError(400, 38, "Unable to filter by this field. However, these are available: "
                                           + ", ".join(available) + ", for i18n fields:" + ", ".join(i18n))
                sorts.append((res.field(name), direction.upper() == "DESC"))
        limit = params.get("limit")
        bounds = None
        if limit is not None:
            parts = (limit if isinstance(limit, str) else "").split(",")
            if len(parts) > 2:
                raise WsError(400, 39, 'The "limit" value has to be formed as this example: "5,25" or "10"')
            bounds = (0, php_int(parts[0])) if len(parts) == 1 else (php_int(parts[0]), php_int(parts[1]))

        views = [(record, self._view(res, record)) for record in records]
        for f, expression in conditions:
            views = [(r, v) for r, v in views if self._matches(ctx, f, v[f.name], expression)]
        views.sort(key=lambda rv: int(rv[0]["id"]))  # MySQL primary key order by default
        for f, descending in reversed(sorts):
            views.sort(key=lambda rv, f=f: self._sort_key(ctx, f, rv[1][f.name]), reverse=descending)
        records = [r for r, _ in views]
        if bounds is not None:
            offset, count = max(bounds[0], 0), max(bounds[1], 0)
            records = records[offset:offset + count]
        return records

    # SQLUtils::getSQLRetrieveFilter semantics, evaluated in Python with MySQL-like comparisons.
    def _matches(self, ctx: _Ctx, f: Field, value, expression: str) -> bool:
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

    def _sort_key(self, ctx: _Ctx, f: Field, value):
        if f.kind == "ml":
            value = value.get(ctx.languages[0], "")
        if f.kind in NUMERIC_KINDS:
            return (mysql_number(value), "")
        return (0.0, value.casefold())

    # --- rendering -----------------------------------------------------------------------------------------

    def _json_record(self, ctx: _Ctx, res: Resource, view: dict, fields) -> dict:
        out = {}
        for f in res.fields:
            if fields != "full" and f.name not in fields:
                continue
            value = view[f.name]
            if f.name == "id":
                out["id"] = int(value)
            elif f.kind == "ml":
                items = [{"id": str(lang), "value": value.get(lang, "")} for lang in ctx.languages]
                out[f.name] = items[0]["value"] if len(items) == 1 else items
            else:
                out[f.name] = value
        return out

    def _xml_field(self, ctx: _Ctx, f: Field, value) -> str:
        attrs = ""
        if f.xlink and value not in ("", "0"):
            attrs += f' xlink:href="{ctx.ws_url}{f.xlink}/{value}"'
        if f.getter:
            attrs += ' notFilterable="true"'
        if f.kind == "ml":
            content = "".join(
                f'<language id="{lang}" xlink:href="{ctx.ws_url}languages/{lang}">'
                + (_cdata(value.get(lang, "")) if value.get(lang, "") != "" else "") + "</language>"
                for lang in ctx.languages)
        else:
            content = _cdata(value) if value != "" else ""
        return f"<{f.name}{attrs}>{content}</{f.name}>\n"

    def _render(self, ctx: _Ctx, res: Resource, views: list[dict], fields, *, single: bool, as_list: bool) -> str:
        if ctx.json:
            if not views:
                return "[]"  # WebserviceOutputJSON: an empty list is a bare JSON array (§2.3)
            if fields == "minimum":
                content = {res.name: [{"id": int(v["id"])} for v in views]}
            elif as_list:
                content = {res.name: [self._json_record(ctx, res, v, fields) for v in views]}
            else:
                content = {res.node: self._json_record(ctx, res, views[-1], fields)}
            return json.dumps(content, ensure_ascii=False)
        parts = []
        for view in views:
            if fields == "minimum":
                parts.append(f'<{res.node} id="{view["id"]}" xlink:href="{ctx.ws_url}{res.name}/{view["id"]}"/>\n')
                continue
            inner = "".join(self._xml_field(ctx, f, view[f.name]) for f in res.fields
                            if fields == "full" or f.name in fields)
            parts.append(f"<{res.node}>\n{inner}</{res.node}>\n")
        if single:
            return _xml_document("".join(parts))
        return _xml_document(f"<{res.name}>\n" + "".join(parts) + f"</{res.name}>\n")

    def _render_schema(self, ctx: _Ctx, res: Resource, kind: str) -> str:
        if ctx.json:
            return json.dumps({res.node: {f.name: "" for f in res.fields if not (kind == "synopsis" and f.name == "id")}})
        inner = ""
        for f in res.fields:
            if kind == "synopsis" and f.name == "id":
                continue
            attrs = ""
            if kind == "synopsis":
                if f.required:
                    attrs += ' required="true"'
                if f.size:
                    attrs += f' maxSize="{f.size}"'
                if f.validate:
                    attrs += f' format="{f.validate}"'
                if f.getter:
                    attrs += ' notFilterable="true"'
            if f.kind == "ml":
                content = "".join(f'<language id="{lang}"' + (' format="isUnsignedId"' if kind == "synopsis" else "")
                                  + "></language>" for lang in ctx.languages)
            else:
                content = ""
            inner += f"<{f.name}{attrs}>{content}</{f.name}>\n"
        return _xml_document(f"<{res.node}>\n{inner}</{res.node}>\n")

    def _resource_list(self, ctx: _Ctx) -> str:
        """GET /api/: the resources the key may use, with per-method permission attributes."""
        names = [name for name in sorted(PS_RESOURCES) if name in self.permissions]
        if ctx.json:
            return json.dumps(names)  # WebserviceOutputJSON only collects the node names
        methods = ("get", "put", "post") + (("patch",) if self.supports_patch else ()) + ("delete", "head")
        out = f"<api shopName={quoteattr(self.shop_name)}>\n"
        for name in names:
            allowed = {m.upper() for m in self.permissions[name]}
            attrs = f' xlink:href="{ctx.ws_url}{name}"' + "".join(
                f' {m}="{"true" if m.upper() in allowed else "false"}"' for m in methods)
            out += (f"<{name}{attrs}>\n<description{attrs}>{PS_RESOURCES[name][0]}</description>\n"
                    f'<schema xlink:href="{ctx.ws_url}{name}?schema=blank" type="blank"/>\n'
                    f'<schema xlink:href="{ctx.ws_url}{name}?schema=synopsis" type="synopsis"/>\n</{name}>\n')
        return _xml_document(out + "</api>\n")

    # --- POST / PUT / PATCH (WebserviceRequest::saveEntityFromXml, §2.5) -----------------------------------

    def _save(self, ctx: _Ctx, res: Resource) -> _Response:
        try:
            root = ET.fromstring(ctx.body.encode("utf-8"))
        except ET.ParseError as error:
            if "unbound prefix" in str(error):
                # libxml only warns about an undeclared prefix (e.g. xlink:href fed back without the root's
                # xmlns:xlink); the warning becomes a webservice error and nothing is saved (§2.6).
                raise WsError(500, 3, "[PHP Warning #2] SimpleXMLElement::__construct(): namespace error : "
                                      f"Namespace prefix is not defined ({error})")
            raise WsError(500, 127, f"XML error : {error}\nXML length : {len(ctx.body)}\nOriginal XML : {ctx.body}")
        entities = [child for child in root if isinstance(child.tag, str) and not child.tag.startswith("{")]
        ids = []
        for entity in entities:
            id_text = self._child_text(entity, "id")
            if id_text not in (None, ""):
                ids.append(php_int(id_text))
        if ctx.method in ("PUT", "PATCH"):
            if len(set(ids)) != len(ids):
                raise WsError(400, 89, "id is duplicate in request")
            if len(entities) != len(ids):
                raise WsError(400, 90, "id is required when modifying a resource")
        elif ids:
            raise WsError(400, 91, "id is forbidden when adding a new resource")
        saved = []
        for entity in entities:  # undocumented multi-entity bodies: processed in a loop, as the core does
            saved.append(self._save_entity(ctx, res, entity))
        status = 201 if ctx.method == "POST" else 200
        views = [self._view(res, record) for record in saved]
        if not views:  # an empty <prestashop/>: nothing saved, the core answers the empty node
            return self._ok(ctx, status, "[]" if ctx.json else _xml_document(""))
        return self._ok(ctx, status, self._render(ctx, res, views, "full", single=True, as_list=False))

    @staticmethod
    def _child_text(entity, name: str) -> str | None:
        """(string) $entity->name in SimpleXML: the element's own text (CDATA included), verbatim."""
        for child in entity:
            if child.tag == name:
                return (child.text or "") + "".join(grand.tail or "" for grand in child)
        return None

    def _save_entity(self, ctx: _Ctx, res: Resource, entity) -> dict:
        if ctx.method == "POST":
            existing = None
            obj: dict = {}
        else:
            existing = self._find(res, php_int(self._child_text(entity, "id")))
            if existing is None:
                raise WsError(404, 92, "Invalid ID")
            obj = {f.name: self._text(f, existing.get(f.name)) for f in res.fields}
        for f in res.fields:
            present = self._child_text(entity, f.name)
            if ctx.method == "PATCH" and present is None:
                continue  # PATCH: only the fields in the body
            if present is not None and f.kind != "ml":
                if f.getter:
                    raise WsError(400, 93, f'parameter "{f.name}" not writable. Please remove this attribute of this XML')
                obj[f.name] = present
            elif f.required and f.kind != "ml":
                raise WsError(400, 41, f'parameter "{f.name}" required')
            else:
                obj[f.name] = None  # PUT is a full replacement: omitted non-required fields are reset
        # ObjectModel::validateFields: first failing field, in definition order.
        for f in res.fields:
            if f.name == "id":
                continue
            value = obj.get(f.name)
            text = "" if value is None else str(value)
            prop = f"{res.class_name}->{f.name}"
            if f.required and text == "":
                raise WsError(400, 85, f'Validation error: "Property {prop} is empty"')
            if text == "":
                continue
            if f.validate and not VALIDATORS[f.validate](text):
                raise WsError(400, 85, f'Validation error: "Property {prop} is not valid"')
            if f.size and len(text) > f.size:
                raise WsError(400, 85, f'Validation error: "Property {prop} length ({len(text)}) must be between 0 and {f.size}"')
        if res.name == "order_histories":
            return self._save_history(ctx, obj)
        if res.name == "order_carriers":
            return self._save_order_carrier(ctx, existing, obj)
        if res.name == "messages":
            return self._save_message(ctx, obj)
        raise AssertionError(res.name)

    def _normalized(self, f: Field, value):
        """ObjectModel::formatValue + what MySQL gives back: ints, decimal(20,6) strings, verbatim strings."""
        if f.kind in ("int", "bool", "id"):
            return php_int(value) if value not in (None, "") else 0
        if f.kind == "float":
            return f"{float(value):.6f}" if value not in (None, "") else "0.000000"
        if f.kind == "date":
            return value if value not in (None, "") else self._now()  # a reset date_add becomes "now" (§2.5)
        return "" if value is None else value

    def _save_history(self, ctx: _Ctx, obj: dict) -> dict:
        res = RESOURCES["order_histories"]
        id_order = php_int(obj["id_order"])
        state_id = php_int(obj["id_order_state"])
        # Simulator choice: an unknown order or state is a validation error (400 code 85); the real core
        # would fail somewhere inside changeIdOrderState with a PHP error.
        if id_order not in self.orders:
            raise WsError(400, 85, f'Validation error: "Property OrderHistory->id_order is not valid" (order {id_order} does not exist)')
        if state_id not in self.states:
            raise WsError(400, 85, f'Validation error: "Property OrderHistory->id_order_state is not valid" (order state {state_id} does not exist)')
        # OrderHistory::addWs: no same-state guard (§3.2); date_add is overwritten by add().
        send_mail = self._sendemail(ctx) and not (ctx.fault and ctx.fault["kind"] == "500_after_commit")
        return self._change_state(self.orders[id_order], state_id,
                                  id_employee=self._normalized(res.field("id_employee"), obj.get("id_employee")),
                                  send_mail=send_mail, source="webservice")

    def _save_order_carrier(self, ctx: _Ctx, existing: dict, obj: dict) -> dict:
        res = RESOURCES["order_carriers"]
        for f in res.fields:
            if f.name != "id":
                existing[f.name] = self._normalized(f, obj.get(f.name))
        order = self.orders.get(existing["id_order"])
        if order is not None:
            order["date_upd"] = self._now()  # Simulator choice: a tracking change shows in the order's date_upd
        # OrderCarrier::updateWs: saved first, then the in_transit mail if sendemail (no same-number check).
        if self._sendemail(ctx) and not (ctx.fault and ctx.fault["kind"] == "500_after_commit"):
            self._in_transit_mail(existing)
        return existing

    def _save_message(self, ctx: _Ctx, obj: dict) -> dict:
        res = RESOURCES["messages"]
        record = {f.name: self._normalized(f, obj.get(f.name)) for f in res.fields if f.name != "id"}
        if record["id_order"] and record["id_order"] not in self.orders:
            # Simulator choice, as for order_histories.
            raise WsError(400, 85, f'Validation error: "Property Message->id_order is not valid" (order {record["id_order"]} does not exist)')
        record["date_add"] = self._now()
        record = {"id": max((m["id"] for m in self.messages), default=0) + 1, **record}
        self.messages.append(record)
        order = self.orders.get(record["id_order"])
        if order is not None:
            order["date_upd"] = self._now()
        return record

    @staticmethod
    def _sendemail(ctx: _Ctx) -> bool:
        value = ctx.params.get("sendemail")
        return php_truthy(value) if isinstance(value, str) else bool(value)


# ------------------------------------------------------------------------------------------------------------
# HTTP plumbing
# ------------------------------------------------------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops SYNs under a burst of parallel clients (1 s retransmit)

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], OSError):  # a client going away is not worth a traceback
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Apache"
    sys_version = ""
    timeout = 60  # idle keep-alive connections are dropped after a minute

    def version_string(self) -> str:
        return "Apache"

    @property
    def sim(self) -> ShopSimulator:
        return self.server.sim  # type: ignore[attr-defined]

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.sim._track(self.connection, True)

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.sim._track(self.connection, False)

    def log_message(self, format, *args):
        if self.sim.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), format % args))

    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while True:
                size = int((self.rfile.readline(1024).split(b";")[0].strip() or b"0"), 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    self.close_connection = True
                    raise WsError(413, 0, "Request Entity Too Large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            size = int(length)
        except ValueError:
            self.close_connection = True
            raise WsError(400, 0, "Bad Content-Length")
        if size > MAX_BODY or size < 0:
            self.close_connection = True
            raise WsError(413, 0, "Request Entity Too Large")
        return self.rfile.read(size)

    def _any(self):
        self.sim._serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _any

    def send(self, response: _Response, ctx: _Ctx | None) -> None:
        if response.delay:
            self.sim._stopping.wait(response.delay)  # bounded, and woken up by stop()
            if self.sim._stopping.is_set():
                response.reset = True
        if response.reset:
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            for stream in (self.rfile, self.wfile):
                try:
                    stream.close()
                except OSError:
                    pass
            try:
                self.connection.close()  # SO_LINGER 0: the peer gets a RST, no answer at all
            except OSError:
                pass
            self.wfile = io.BytesIO()  # handle_one_request() flushes wfile after us
            return
        body = response.body or b""
        status = response.status
        local_sha1 = self.headers.get("Local-Content-Sha1")
        if (ctx is not None and status == 200 and body and self.command in ("GET", "HEAD") and local_sha1
                and local_sha1 == response.headers.get("Content-Sha1")):
            status, body = 304, b""  # §2.6: unchanged content
        try:
            self.send_response(status)
            if response.content_type:
                self.send_header("Content-Type", response.content_type)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self._headers_buffer.append(b"\r\n")  # end_headers, with the body in the same write
            if self.command != "HEAD" and status != 304:
                self._headers_buffer.append(body)
            self.flush_headers()
        except OSError:  # the client went away (e.g. it timed out first)
            self.close_connection = True
