"""PrestaShop webservice client (1.7, 8, 9): XML in, JSON out, Basic auth with the key as user.

Reads are retried (exponential backoff with jitter; 429/503 honour Retry-After). Writes are never retried
here: a write that failed ambiguously (timeout, reset, 5xx - PrestaShop answers 500 code 46 *after*
committing when a mail fails) raises `ShopAmbiguous`, and the caller re-reads the shop before deciding.
"""
from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from xml.sax.saxutils import escape

import requests

log = logging.getLogger(__name__)

TRACKING_MAX = 64
# Validate::isTrackingNumber (PrestaShop reference §3.3).
TRACKING_PATTERN = re.compile(r"^[~:#,%&_=()\[\].? +\-@/a-zA-Z0-9]+$")
# Webservice error codes that say the key or the shop set-up is wrong: no update can go through.
SETUP_CODES = {16, 17, 18, 20, 21, 22, 23, 25, 26, 132}


class ShopError(Exception):
    """The shop refused or failed. `permanent`: retrying the same request cannot help."""

    permanent = True

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None, answer: str | None = None):
        super().__init__(message)
        self.status, self.code, self.answer = status, code, answer


class ShopSetupError(ShopError):
    """Wrong URL or key, a permission missing, the webservice off: nothing can be delivered until fixed."""


class ShopUnavailable(ShopError):
    """Nothing was done (connection refused, 429, 503 before anything ran): safe to retry later."""

    permanent = False

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ShopAmbiguous(ShopError):
    """A write may or may not have been applied (timeout, reset, 5xx): re-read before doing anything else."""

    permanent = False


@dataclass(frozen=True)
class ShopVersion:
    raw: str

    @property
    def parts(self) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", self.raw)[:4]) or (0,)

    @property
    def supports_patch(self) -> bool:
        return self.parts[0] >= 8


def xml_document(entity: str, fields: dict) -> str:
    """`<prestashop><entity>...</entity></prestashop>`, values escaped, never pretty-printed."""
    inner = "".join(f"<{name}>{escape(_text(value))}</{name}>" for name, value in fields.items() if value is not None)
    return f"<prestashop><{entity}>{inner}</{entity}></prestashop>"


def _text(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


class PrestaShopClient:
    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        read_attempts: int = 4,
        backoff: float = 0.5,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ):
        if not url.endswith("/"):
            url += "/"
        self.base = url if url.endswith("api/") else url + "api/"
        self.session = session or requests.Session()
        self.session.auth = (key, "")
        self.session.headers.update({"Output-Format": "JSON", "User-Agent": "sage-prestashop-middleware"})
        self.timeout = timeout
        self.read_attempts = read_attempts
        self.backoff = backoff
        self.max_wait = max_wait
        self.sleep = sleep
        self.version: ShopVersion | None = None

    def clone(self) -> PrestaShopClient:
        """A client for another thread (a requests.Session is not shared between threads)."""
        other = PrestaShopClient(
            self.base, self.session.auth[0], timeout=self.timeout, read_attempts=self.read_attempts,
            backoff=self.backoff, max_wait=self.max_wait, sleep=self.sleep,
        )
        other.version = self.version
        return other

    # --- transport ------------------------------------------------------------------------------------------

    def _url(self, resource: str, record_id: int | None = None) -> str:
        return self.base + resource + (f"/{record_id}" if record_id is not None else "")

    def _send(self, method: str, resource: str, record_id: int | None, params: dict | None, body: str | None) -> requests.Response:
        headers = {"Content-Type": "text/xml; charset=utf-8"} if body is not None else None
        return self.session.request(
            method, self._url(resource, record_id), params=params, data=body.encode("utf-8") if body is not None else None,
            headers=headers, timeout=self.timeout,
        )

    def _decode(self, response: requests.Response, what: str):
        version = response.headers.get("PSWS-Version")
        if version:
            self.version = ShopVersion(version)
        if response.status_code == 404 and not response.content:
            return None
        if response.ok:
            if not response.content:
                return {}
            try:
                return response.json()
            except ValueError as error:
                raise ShopAmbiguous(f"{what}: the shop answered {response.status_code} with a body that is not JSON (a module printing warnings?)", status=response.status_code, answer=response.text[:500]) from error
        raise self._error(response, what)

    def _error(self, response: requests.Response, what: str) -> ShopError:
        status = response.status_code
        code, message = None, (response.text or "").strip()[:300]
        try:
            errors = response.json().get("errors") or []
            if errors:
                code = int(errors[0].get("code")) if str(errors[0].get("code", "")).isdigit() else None
                message = "; ".join(str(e.get("message", "")) for e in errors)
        except (ValueError, AttributeError):
            pass
        text = f"{what}: shop answered {status}" + (f" code {code}" if code is not None else "") + (f": {message}" if message else "")
        retry_after = _retry_after(response)
        if status == 401 or status == 403 or (status in (405, 503) and code in SETUP_CODES):
            hint = ""
            if status == 401 and code is None:
                hint = " (no key reached the shop: on CGI/FastCGI hosts enable 'CGI mode for PHP' in the webservice settings)"
            return ShopSetupError(text + hint, status=status, code=code, answer=message)
        if status == 429 or status == 503:
            return ShopUnavailable(text, status=status, code=code, answer=message, retry_after=retry_after)
        if status >= 500:
            return ShopAmbiguous(text, status=status, code=code, answer=message)
        return ShopError(text, status=status, code=code, answer=message)

    def read(self, resource: str, record_id: int | None = None, params: dict | None = None):
        """GET, retried on network errors, 5xx, 429 and 503 (a read changes nothing)."""
        what = f"GET {resource}" + (f"/{record_id}" if record_id is not None else "")
        delay = self.backoff
        for attempt in range(1, self.read_attempts + 1):
            try:
                response = self._send("GET", resource, record_id, params, None)
                return self._decode(response, what)
            except (ShopUnavailable, ShopAmbiguous) as error:
                if attempt == self.read_attempts:
                    raise
                wait = getattr(error, "retry_after", None) or delay * (1 + random.random())
            except requests.RequestException as error:
                if attempt == self.read_attempts:
                    if isinstance(error, requests.ConnectionError) and _refused(error):
                        # Nobody listens at PRESTASHOP_URL: no other order would fare better this pass.
                        raise ShopSetupError(f"{what}: the shop does not answer at {self.base} (connection refused)") from error
                    raise ShopUnavailable(f"{what}: {error.__class__.__name__}: {error}") from error
                wait = delay * (1 + random.random())
            self.sleep(min(wait, self.max_wait))
            delay *= 2
        raise AssertionError("unreachable")

    def write(self, method: str, resource: str, body: str, *, record_id: int | None = None, params: dict | None = None):
        """POST/PUT/PATCH once. A failure that may have been applied raises ShopAmbiguous."""
        what = f"{method} {resource}" + (f"/{record_id}" if record_id is not None else "")
        try:
            response = self._send(method, resource, record_id, params, body)
        except requests.ConnectionError as error:
            if _refused(error):
                raise ShopUnavailable(f"{what}: connection refused") from error
            raise ShopAmbiguous(f"{what}: connection lost before the answer ({error.__class__.__name__})") from error
        except requests.Timeout as error:
            raise ShopAmbiguous(f"{what}: no answer within {self.timeout[1]} s") from error
        except requests.RequestException as error:
            raise ShopAmbiguous(f"{what}: {error.__class__.__name__}: {error}") from error
        return self._decode(response, what)

    # --- resources --------------------------------------------------------------------------------------------

    def detect_version(self) -> ShopVersion:
        if self.version is None:
            self.read("orders", params={"limit": "1"})
        if self.version is None:
            raise ShopSetupError("the shop did not send PSWS-Version: is this a PrestaShop webservice URL?")
        return self.version

    def permissions(self) -> dict[str, set[str]]:
        """What this key may do, per resource (from the XML of GET /api/)."""
        import xml.etree.ElementTree as ElementTree

        response = self.session.get(self.base, headers={"Output-Format": "XML"}, timeout=self.timeout)
        if response.headers.get("PSWS-Version"):
            self.version = ShopVersion(response.headers["PSWS-Version"])
        if not response.ok:
            raise self._error(response, "GET /api/")
        try:
            root = ElementTree.fromstring(response.content)
        except ElementTree.ParseError as error:
            raise ShopError(f"GET /api/: the answer is not the webservice's XML ({error})") from error
        api = root.find("api")
        allowed: dict[str, set[str]] = {}
        for resource in list(api) if api is not None else []:
            allowed[resource.tag] = {method.upper() for method in ("get", "put", "post", "patch", "delete", "head") if resource.get(method) == "true"}
        return allowed

    def order(self, id_order: int) -> dict | None:
        rows = _rows(self.read("orders", params={"filter[id]": f"[{id_order}]", "display": "[id,reference,current_state,id_carrier,date_upd]"}), "orders")
        return rows[0] if rows else None

    def orders_by_reference(self, reference: str) -> list[dict]:
        return _rows(self.read("orders", params={"filter[reference]": f"[{reference}]", "display": "[id,reference,current_state]"}), "orders")

    def orders_changed_since(self, since: str, limit: int = 500, offset: int = 0) -> list[dict]:
        return _rows(self.read("orders", params={
            "date": "1", "filter[date_upd]": f">[{since}]", "display": "[id,reference,date_upd]",
            "sort": "[date_upd_ASC,id_ASC]", "limit": f"{offset},{limit}",
        }), "orders")

    def order_carriers(self, id_order: int) -> list[dict]:
        rows = _rows(self.read("order_carriers", params={"filter[id_order]": f"[{id_order}]", "display": "full"}), "order_carriers")
        return sorted(rows, key=lambda row: int(row["id"]))

    def order_carriers_of(self, ids: list[int]) -> list[dict]:
        if not ids:
            return []
        return _rows(self.read("order_carriers", params={"filter[id_order]": "[" + "|".join(map(str, ids)) + "]", "display": "full"}), "order_carriers")

    def set_tracking(self, carrier_row: dict, number: str, *, send_email: bool) -> dict:
        """PATCH on 8.0+, else PUT the whole row back with only tracking_number changed (PUT resets omitted fields)."""
        params = {"sendemail": "1" if send_email else "0"}
        version = self.detect_version()
        if version.supports_patch:
            body = xml_document("order_carrier", {"id": carrier_row["id"], "tracking_number": number})
            return self.write("PATCH", "order_carriers", body, record_id=int(carrier_row["id"]), params=params)
        fields = {key: value for key, value in carrier_row.items() if not isinstance(value, (dict, list))}
        fields["tracking_number"] = number
        return self.write("PUT", "order_carriers", xml_document("order_carrier", fields), record_id=int(carrier_row["id"]), params=params)

    def add_history(self, id_order: int, state_id: int, *, send_email: bool, id_employee: int | None = None) -> dict:
        body = xml_document("order_history", {"id_order": id_order, "id_order_state": state_id, "id_employee": id_employee})
        return self.write("POST", "order_histories", body, params={"sendemail": "1" if send_email else "0"})

    def latest_history(self, id_order: int) -> dict | None:
        rows = _rows(self.read("order_histories", params={"filter[id_order]": f"[{id_order}]", "display": "full", "sort": "[id_DESC]", "limit": "1"}), "order_histories")
        return rows[0] if rows else None

    def add_message(self, id_order: int, text: str) -> dict:
        return self.write("POST", "messages", xml_document("message", {"id_order": id_order, "message": text, "private": 1}))

    def messages(self, id_order: int) -> list[dict]:
        return _rows(self.read("messages", params={"filter[id_order]": f"[{id_order}]", "display": "full"}), "messages")

    def order_states(self) -> list[dict]:
        return _rows(self.read("order_states", params={"display": "full", "filter[deleted]": "[0]"}), "order_states")

    def configurations(self, names: list[str]) -> dict[str, str]:
        rows = _rows(self.read("configurations", params={"filter[name]": "[" + "|".join(names) + "]", "display": "[name,value]"}), "configurations")
        return {row["name"]: row.get("value") for row in rows}


def _rows(payload, resource: str) -> list[dict]:
    """List answers: `{"orders": [...]}`, or a bare `[]` when empty."""
    if not payload:
        return []
    if isinstance(payload, list):
        return payload
    rows = payload.get(resource, [])
    return rows if isinstance(rows, list) else [rows]


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.replace(".", "", 1).isdigit() else None


def _refused(error: requests.ConnectionError) -> bool:
    text = repr(error)
    return "Connection refused" in text or "NewConnectionError" in text or "Errno 111" in text


def tracking_value(numbers: list[str]) -> tuple[str, list[str]]:
    """The order_carrier.tracking_number to write: the parcel numbers that PrestaShop accepts, space-joined
    while they fit in 64 characters. Returns it and the numbers left out."""
    value, left_out = "", []
    for number in numbers:
        if not TRACKING_PATTERN.match(number) or len(number) > TRACKING_MAX:
            left_out.append(number)
            continue
        candidate = f"{value} {number}" if value else number
        if len(candidate) > TRACKING_MAX:
            left_out.append(number)
            continue
        value = candidate
    return value, left_out
