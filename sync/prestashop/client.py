"""PrestaShop webservice client (1.7, 8, 9): XML in, JSON out, Basic auth with the key as user.

Reads are retried (exponential backoff with jitter; 429/503 honour Retry-After). Writes are never retried
here: a write that failed ambiguously (timeout, reset, 5xx - PrestaShop answers 500 code 46 *after*
committing when a mail fails), or whose answer does not hold the record we wrote, raises `ShopAmbiguous`, and
the caller re-reads the shop before deciding.

Redirects are never followed: a 3xx answer (typically http:// sent to https://) is a set-up error naming the
`Location`, and nothing is pushed until PRESTASHOP_URL is corrected. A PUT or PATCH refused with 403/405 by
something that is not the webservice (a host's web application firewall: no PSWS-Version, no error code) is
sent again once as a POST carrying `ps_method`, which the dispatcher accepts (recorded on 8.1.2:
ps_method_put_via_post, ps_method_patch_via_post), and so are the later ones.

Multistore (reference §2.4, §9.13): a client made with `id_shop` sends `id_shop=<n>` with every request, reads and
writes alike, so context, permissions and configuration are those of the order's shop. Clients of shops on one
installation share an `Installation`: what the webservice is like there (its version, whether PUT/PATCH must go as
POST with ps_method) is learnt once for all of them.
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
PROBE_ID = 2147483647  # a carrier row id no shop has: what `probe_write_method` writes to
# Validate::isTrackingNumber (PrestaShop reference §3.3).
TRACKING_PATTERN = re.compile(r"^[~:#,%&_=()\[\].? +\-@/a-zA-Z0-9]+$")
# Webservice error codes that say the key or the shop set-up is wrong: no update can go through. 999: the id_shop
# sent is not a shop id (reference §2.6: 404 code 999), a shop's set-up to fix, not a refusal of one update.
SETUP_CODES = {16, 17, 18, 20, 21, 22, 23, 25, 26, 132, 999}


class ShopError(Exception):
    """The shop refused or failed. `permanent`: retrying the same request cannot help."""

    permanent = True

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None, answer: str | None = None):
        super().__init__(message)
        self.status, self.code, self.answer = status, code, answer


class ShopSetupError(ShopError):
    """Wrong URL or key, a permission missing, the webservice off: nothing can be pushed until fixed."""


class ShopUnavailable(ShopError):
    """Nothing was done (connection refused, 429, 503 before anything ran): safe to retry later."""

    permanent = False

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ShopRedirect(ShopSetupError):
    """The shop answered a redirect (3xx): PRESTASHOP_URL is not the address the shop answers at."""


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

    @property
    def order_page_reads_threads(self) -> bool:
        """Since 1.7.7 the order page's Messages panel lists customer_thread/customer_message rows only (never
        the legacy `message` table): recorded on 8.1.2 (order-page-messages.md), reference for 1.7.7+ and 9."""
        return self.parts[:3] >= (1, 7, 7)


def xml_document(entity: str, fields: dict) -> str:
    """`<prestashop><entity>...</entity></prestashop>`, values escaped, never pretty-printed."""
    inner = "".join(f"<{name}>{escape(_text(value))}</{name}>" for name, value in fields.items() if value is not None)
    return f"<prestashop><{entity}>{inner}</{entity}></prestashop>"


def _text(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


@dataclass
class Installation:
    """What one PrestaShop installation's webservice is like, shared by the clients of its shops (multistore)."""

    version: ShopVersion | None = None
    method_override: bool = False  # PUT/PATCH go as POST + ps_method (a firewall refuses them)


class PrestaShopClient:
    def __init__(
        self,
        url: str,
        key: str,
        *,
        id_shop: int | None = None,
        installation: Installation | None = None,
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
        self.id_shop = id_shop
        self.installation = installation if installation is not None else Installation()

    @property
    def version(self) -> ShopVersion | None:
        return self.installation.version

    @version.setter
    def version(self, value: ShopVersion | None) -> None:
        self.installation.version = value

    @property
    def method_override(self) -> bool:
        return self.installation.method_override

    @method_override.setter
    def method_override(self, value: bool) -> None:
        self.installation.method_override = value

    def clone(self) -> PrestaShopClient:
        """A client for another thread (a requests.Session is not shared between threads): same shop, same installation."""
        return PrestaShopClient(
            self.base,
            self.session.auth[0],
            id_shop=self.id_shop,
            installation=self.installation,
            timeout=self.timeout,
            read_attempts=self.read_attempts,
            backoff=self.backoff,
            max_wait=self.max_wait,
            sleep=self.sleep,
        )

    def _params(self, params: dict | None) -> dict | None:
        """The request's parameters, with the shop context of a multistore shop."""
        if self.id_shop is None:
            return params
        return {**(params or {}), "id_shop": str(self.id_shop)}

    # --- transport ------------------------------------------------------------------------------------------

    def _url(self, resource: str, record_id: int | None = None) -> str:
        return self.base + resource + (f"/{record_id}" if record_id is not None else "")

    def _send(self, method: str, resource: str, record_id: int | None, params: dict | None, body: str | None) -> requests.Response:
        headers = {"Content-Type": "text/xml; charset=utf-8"} if body is not None else None
        return self.session.request(
            method,
            self._url(resource, record_id),
            params=self._params(params),
            data=body.encode("utf-8") if body is not None else None,
            headers=headers,
            timeout=self.timeout,
            allow_redirects=False,
        )

    def _decode(self, response: requests.Response, what: str):
        version = response.headers.get("PSWS-Version")
        if version:
            self.version = ShopVersion(version)
        if response.status_code == 404 and not response.content:
            return None
        if response.ok and not response.is_redirect and response.status_code < 300:
            if not response.content:
                return {}
            try:
                return response.json()
            except ValueError as error:
                raise ShopAmbiguous(
                    f"{what}: the shop answered {response.status_code} with a body that is not JSON (a module printing warnings?)",
                    status=response.status_code,
                    answer=response.text[:500],
                ) from error
        raise self._error(response, what)

    def _error(self, response: requests.Response, what: str) -> ShopError:
        status = response.status_code
        if 300 <= status < 400:
            location = response.headers.get("Location") or "(no Location)"
            hint = (
                " (the shop wants https: use an https:// PRESTASHOP_URL)"
                if location.startswith("https://") and self.base.startswith("http://")
                else ""
            )
            return ShopRedirect(
                f"{what}: the shop answered {status} redirecting to {location}: set PRESTASHOP_URL to the address the "
                f"shop answers at{hint}; nothing is sent to a redirected address",
                status=status,
                answer=location,
            )
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
        if status == 401 or status == 403 or (status in (404, 405, 503) and code in SETUP_CODES):
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
        overridable = method in ("PUT", "PATCH")
        if not (overridable and self.method_override):
            response = self._send_once(what, method, resource, record_id, params, body, decode=False)
            if not (overridable and _blocked_before_the_webservice(response)):
                return self._decode(response, what)
            # Nothing ran: the request never reached PrestaShop. The dispatcher takes the method from ps_method.
            log.warning(
                "%s: answered %s by something that is not the webservice (a web firewall?): sending PUT/PATCH as POST with ps_method from now on",
                what,
                response.status_code,
            )
            self.method_override = True
        return self._send_once(what, "POST", resource, record_id, {**(params or {}), "ps_method": method}, body)

    def _send_once(self, what: str, method: str, resource: str, record_id: int | None, params: dict | None, body: str | None, *, decode: bool = True):
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
        return self._decode(response, what) if decode else response

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

        response = self.session.get(self.base, params=self._params(None), headers={"Output-Format": "XML"}, timeout=self.timeout)
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

    def probe_write_method(self) -> str:
        """Whether PUT/PATCH reach the webservice: sent to a carrier row that cannot exist, the webservice answers
        404 (or 400) and writes nothing (recorded: order_carrier_404_patch); a host's firewall answers 403/405
        without PSWS-Version. Then writes go as POST with ps_method, which the probe tries too. A redirect raises
        ShopRedirect. Returns a line for `shop check`."""
        method = "PATCH" if self.detect_version().supports_patch else "PUT"
        body = xml_document("order_carrier", {"id": PROBE_ID, "tracking_number": "PROBE"})
        response = self._send_once(f"{method} order_carriers/{PROBE_ID}", method, "order_carriers", PROBE_ID, None, body, decode=False)
        if 300 <= response.status_code < 400:
            raise self._error(response, f"{method} order_carriers/{PROBE_ID}")
        if not _blocked_before_the_webservice(response):
            return f"{method} reaches the webservice (answered {response.status_code} for a carrier row that does not exist, as it should)"
        self.method_override = True
        again = self._send_once(f"POST order_carriers/{PROBE_ID}", "POST", "order_carriers", PROBE_ID, {"ps_method": method}, body, decode=False)
        if _blocked_before_the_webservice(again) or 300 <= again.status_code < 400:
            raise ShopSetupError(
                f"{method} is refused with {response.status_code} before the webservice (a web firewall of the host?), and so is "
                f"POST with ps_method ({again.status_code}): ask the host to let {method} and POST reach /api/",
                status=response.status_code,
            )
        return (
            f"{method} is refused with {response.status_code} before the webservice (a web firewall of the host?): tracking numbers "
            f"are sent as POST with ps_method={method}, which reaches it"
        )

    def order(self, id_order: int) -> dict | None:
        rows = self.orders_of([id_order])
        return rows[0] if rows else None

    def orders_of(self, ids: list[int]) -> list[dict]:
        """What `order` reads, for several orders in one request (those the shop does not have are left out)."""
        if not ids:
            return []
        wanted = "[" + "|".join(map(str, ids)) + "]"
        return _rows(self.read("orders", params={"filter[id]": wanted, "display": "[id,reference,current_state,id_carrier,date_upd]"}), "orders")

    def orders_by_reference(self, reference: str) -> list[dict]:
        return _rows(self.read("orders", params={"filter[reference]": f"[{reference}]", "display": "[id,reference,current_state]"}), "orders")

    def order_carriers(self, id_order: int) -> list[dict]:
        rows = _rows(self.read("order_carriers", params={"filter[id_order]": f"[{id_order}]", "display": "full"}), "order_carriers")
        return sorted(rows, key=lambda row: int(row["id"]))

    def order_carriers_of(self, ids: list[int]) -> list[dict]:
        if not ids:
            return []
        return _rows(
            self.read("order_carriers", params={"filter[id_order]": "[" + "|".join(map(str, ids)) + "]", "display": "full"}), "order_carriers"
        )

    def set_tracking(self, carrier_row: dict, number: str, *, send_email: bool) -> dict:
        """PATCH on 8.0+, else PUT the whole row back with only tracking_number changed (PUT resets omitted fields).
        The answer must hold the row with that number, else ShopAmbiguous (the caller re-reads)."""
        params = {"sendemail": "1" if send_email else "0"}
        version = self.detect_version()
        if version.supports_patch:
            body = xml_document("order_carrier", {"id": carrier_row["id"], "tracking_number": number})
            answer = self.write("PATCH", "order_carriers", body, record_id=int(carrier_row["id"]), params=params)
        else:
            fields = {key: value for key, value in carrier_row.items() if not isinstance(value, (dict, list))}
            fields["tracking_number"] = number
            answer = self.write("PUT", "order_carriers", xml_document("order_carrier", fields), record_id=int(carrier_row["id"]), params=params)
        return _holds(answer, "order_carrier", f"order_carrier {carrier_row['id']}", id=carrier_row["id"], tracking_number=number)

    def add_history(self, id_order: int, state_id: int, *, send_email: bool, id_employee: int | None = None) -> dict:
        body = xml_document("order_history", {"id_order": id_order, "id_order_state": state_id, "id_employee": id_employee})
        answer = self.write("POST", "order_histories", body, params={"sendemail": "1" if send_email else "0"})
        return _holds(answer, "order_history", f"order {id_order}: state {state_id}", id_order=id_order, id_order_state=state_id)

    def latest_history(self, id_order: int) -> dict | None:
        rows = _rows(
            self.read("order_histories", params={"filter[id_order]": f"[{id_order}]", "display": "full", "sort": "[id_DESC]", "limit": "1"}),
            "order_histories",
        )
        return rows[0] if rows else None

    def latest_histories(self, ids: list[int]) -> dict[int, dict]:
        """`latest_history` of several orders in one request: id_order → its latest history row (none: left out)."""
        if len(ids) <= 1:
            latest = self.latest_history(ids[0]) if ids else None
            return {ids[0]: latest} if latest else {}
        wanted = "[" + "|".join(map(str, ids)) + "]"
        rows = _rows(self.read("order_histories", params={"filter[id_order]": wanted, "display": "full"}), "order_histories")
        found: dict[int, dict] = {}
        for row in sorted(rows, key=lambda row: int(row["id"])):
            found[int(row["id_order"])] = row
        return found

    def add_message(self, id_order: int, text: str) -> dict:
        """A private note in the legacy `message` table (1.7.0-1.7.6: what their order page shows)."""
        answer = self.write("POST", "messages", xml_document("message", {"id_order": id_order, "message": text, "private": 1}))
        return _holds(answer, "message", f"order {id_order}: message", id_order=id_order, message=text)

    def messages(self, id_order: int) -> list[dict]:
        return _rows(self.read("messages", params={"filter[id_order]": f"[{id_order}]", "display": "full"}), "messages")

    def order_details(self, id_order: int) -> dict | None:
        """What a customer thread needs from the order: id_customer, id_lang, id_shop."""
        rows = _rows(self.read("orders", params={"filter[id]": f"[{id_order}]", "display": "[id,id_customer,id_lang,id_shop]"}), "orders")
        return rows[0] if rows else None

    def customer_email(self, id_customer: int) -> str | None:
        rows = _rows(self.read("customers", params={"filter[id]": f"[{id_customer}]", "display": "[id,email]"}), "customers")
        return rows[0].get("email") if rows else None

    def customer_threads(self, id_order: int) -> list[dict]:
        rows = _rows(self.read("customer_threads", params={"filter[id_order]": f"[{id_order}]", "display": "full"}), "customer_threads")
        return sorted(rows, key=lambda row: int(row["id"]))

    def add_customer_thread(self, fields: dict) -> dict:
        answer = self.write("POST", "customer_threads", xml_document("customer_thread", fields))
        return _holds(
            answer, "customer_thread", f"order {fields['id_order']}: customer thread", id_order=fields["id_order"], id_customer=fields["id_customer"]
        )

    def customer_messages(self, id_thread: int) -> list[dict]:
        return _rows(self.read("customer_messages", params={"filter[id_customer_thread]": f"[{id_thread}]", "display": "full"}), "customer_messages")

    def add_customer_message(self, id_thread: int, text: str, *, id_employee: int | None) -> dict:
        """A private message (`private` 1: the customer never sees it) on the order's thread."""
        fields = {"id_customer_thread": id_thread, "id_employee": id_employee or 0, "message": text, "private": 1}
        answer = self.write("POST", "customer_messages", xml_document("customer_message", fields))
        return _holds(answer, "customer_message", f"thread {id_thread}: message", id_customer_thread=id_thread, message=text, private=1)

    def order_states(self) -> list[dict]:
        return _rows(self.read("order_states", params={"display": "full", "filter[deleted]": "[0]"}), "order_states")

    def configurations(self, names: list[str]) -> dict[str, str]:
        rows = _rows(self.read("configurations", params={"filter[name]": "[" + "|".join(names) + "]", "display": "[name,value]"}), "configurations")
        return {row["name"]: row.get("value") for row in rows}


def _holds(answer, entity: str, what: str, **expected) -> dict:
    """The write's answer, if it holds the record we wrote; else ShopAmbiguous: something answered that is not
    the record (a proxy's page, a module's output, another record), so the caller re-reads before deciding."""
    record = answer.get(entity) if isinstance(answer, dict) else None
    if isinstance(record, dict) and record.get("id") not in (None, ""):
        wrong = {name: record.get(name) for name, value in expected.items() if str(record.get(name, "")).strip() != str(value).strip()}
        if not wrong:
            return answer
        raise ShopAmbiguous(
            f"{what}: the shop's answer holds another record ({', '.join(f'{k}={v!r}' for k, v in wrong.items())})", answer=str(answer)[:500]
        )
    raise ShopAmbiguous(f"{what}: the shop's answer does not hold the {entity} written", answer=str(answer)[:500])


def _blocked_before_the_webservice(response: requests.Response) -> bool:
    """A 403/405 that PrestaShop did not write: no PSWS-Version header, no webservice error code."""
    if response.status_code not in (403, 405) or response.headers.get("PSWS-Version"):
        return False
    try:
        return not (response.json() or {}).get("errors")
    except (ValueError, AttributeError):
        return True


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
