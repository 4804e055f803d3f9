"""Injected faults: the webservice's own (a PHP error before or after the commit, §2.6 / §5.4), the network's
(timeouts, resets) and the host's in front of PrestaShop (rate limit, an http → https redirect, a web application
firewall that refuses PUT/PATCH, §9 item 14)."""

from __future__ import annotations

import random

from .protocol import Response, WsError
from .shopdata import RESOURCES

FAULT_KINDS = ("500", "500_after_commit", "timeout", "timeout_before", "reset", "reset_after_commit", "429", "503", "refuse")
AFTER_COMMIT = {"500_after_commit", "timeout", "reset_after_commit"}
CHAOS_KINDS = ("500", "500_after_commit", "reset", "reset_after_commit", "429", "503")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

_APACHE_PAGE = (
    '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n<title>{status} {title}</title>\n'
    "</head><body>\n<h1>{title}</h1>\n<p>{text}</p>\n</body></html>\n"
)


class HostAnswer:
    """An answer from the web server in front of PrestaShop: nothing ran, no webservice header."""

    def __init__(self, status: int, body: str, headers: dict):
        self.status, self.body, self.headers = status, body.encode("iso-8859-1"), headers


class Faults:
    """Mixed into ShopSimulator: faults are checked after authentication and permissions (fail_next,
    fault_rate), or before PrestaShop runs at all (redirect_to_https, waf_block)."""

    def _init_faults(self) -> None:
        self._faults: list[dict] = []
        self._chaos: dict | None = None
        self._redirect: dict | None = None
        self._waf: dict | None = None

    def fail_next(
        self, method: str, resource: str, kind: str, *, times: int = 1, retry_after: float = 1, delay: float = 3.0, field: str = "message"
    ) -> None:
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
          refuse              nothing applied, 400 code 85 "Property <Class>-><field> is not valid", the answer
                              ObjectModel validation gives (a validator stricter than the simulated one)
        After-commit kinds only replace a successful answer: a request the shop refuses (4xx) gets its
        normal answer (the fault is used up all the same)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {FAULT_KINDS}")
        with self.lock:
            self._faults.append(
                {
                    "method": method.upper(),
                    "resource": resource,
                    "kind": kind,
                    "remaining": int(times),
                    "retry_after": retry_after,
                    "delay": float(delay),
                    "field": field,
                }
            )

    def fault_rate(self, probability: float, kinds=CHAOS_KINDS, seed: int = 0, *, delay: float = 3.0, retry_after: float = 1) -> None:
        """Random faults on every request (after fail_next ones); 0 disables. Deterministic for a seed and
        a request sequence."""
        for kind in kinds:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}")
        with self.lock:
            if not probability:
                self._chaos = None
            else:
                self._chaos = {
                    "p": float(probability),
                    "kinds": tuple(kinds),
                    "rng": random.Random(seed),
                    "delay": float(delay),
                    "retry_after": retry_after,
                }

    def redirect_to_https(self, *, writes_only: bool = False, status: int = 301) -> None:
        """The host answers `status` with `Location: https://…` (same host, path and query), as an http → https
        rewrite does, for every request or for writes only (POST/PUT/PATCH/DELETE). Nothing reaches PrestaShop:
        a client that follows it loses the method and body of a write (and finds no TLS on this port)."""
        with self.lock:
            self._redirect = {"writes_only": writes_only, "status": int(status)}

    def waf_block(self, methods=("PUT", "PATCH"), *, status: int = 403) -> None:
        """A web application firewall (mod_security-style) refuses these HTTP methods with `status` (403 or 405)
        and an HTML page: no PSWS-Version, no webservice error code, nothing applied. A POST carrying
        `ps_method=PUT|PATCH` passes: the dispatcher takes the method from it (recorded: ps_method_put_via_post,
        ps_method_patch_via_post)."""
        if status not in (403, 405):
            raise ValueError("a firewall answers 403 or 405")
        with self.lock:
            self._waf = {"methods": {m.upper() for m in methods}, "status": status}

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()
            self._chaos = self._redirect = self._waf = None

    def host_answer(self, http_method: str, host: str, raw_path: str) -> HostAnswer | None:
        """What the web server answers before PrestaShop runs (redirect, firewall), if anything."""
        with self.lock:
            redirect, waf = self._redirect, self._waf
        if redirect and (not redirect["writes_only"] or http_method in WRITE_METHODS):
            location = f"https://{host}{raw_path}"
            body = _APACHE_PAGE.format(
                status=redirect["status"], title="Moved Permanently", text=f'The document has moved <a href="{location}">here</a>.'
            )
            return HostAnswer(redirect["status"], body, {"Location": location, "Content-Type": "text/html; charset=iso-8859-1"})
        if waf and http_method in waf["methods"]:
            if waf["status"] == 405:
                body = _APACHE_PAGE.format(
                    status=405, title="Method Not Allowed", text=f"The requested method {http_method} is not allowed for this URL."
                )
                headers = {"Allow": "GET,POST,HEAD", "Content-Type": "text/html; charset=iso-8859-1"}
            else:
                body = _APACHE_PAGE.format(status=403, title="Forbidden", text="You don't have permission to access this resource.")
                headers = {"Content-Type": "text/html; charset=iso-8859-1"}
            return HostAnswer(waf["status"], body, headers)
        return None

    def take_fault(self, method: str, resource: str) -> dict | None:
        for fault in self._faults:
            if fault["method"] in ("*", method) and fault["resource"] in ("*", resource):
                fault["remaining"] -= 1
                if fault["remaining"] <= 0:
                    self._faults.remove(fault)
                return dict(fault)
        chaos = self._chaos
        if chaos and chaos["rng"].random() < chaos["p"]:
            return {
                "kind": chaos["rng"].choice(chaos["kinds"]),
                "delay": chaos["delay"],
                "retry_after": chaos["retry_after"],
                "method": method,
                "resource": resource,
            }
        return None

    def fault_before(self, ctx, fault: dict):
        """The answer of a fault that strikes before anything is applied."""
        kind = fault["kind"]
        if kind == "500":
            # webserviceErrorHandler: E_ERROR → code 2 (a warning would be code 3, a notice 5).
            return self.error_response(
                ctx,
                WsError(
                    500, 2, "[PHP Error #1] Simulated error raised by a module before anything was saved (modules/simulated/simulated.php, line 42)"
                ),
            )
        if kind == "503":
            ctx.authenticated = False  # isActivated() runs before authentication: PSWS-Version 0
            return self.error_response(
                ctx, WsError(503, 22, "The PrestaShop webservice is disabled. Please activate it in the PrestaShop Back Office")
            )
        if kind == "refuse":
            res = RESOURCES.get(ctx.resource)
            prop = self._property(res, fault.get("field", "message")) if res else f"{ctx.resource}->{fault.get('field', 'message')}"
            return self.error_response(ctx, WsError(400, 85, f'Validation error: "Property {prop} is not valid"'))
        if kind == "429":
            return Response(429, b"Too Many Requests\n", "text/plain; charset=utf-8", {"Retry-After": str(fault["retry_after"])})
        if kind == "reset":
            response = Response(0)
            response.reset = True
            return response
        if kind == "timeout_before":
            response = Response(504, b"Gateway Timeout\n", "text/plain; charset=utf-8")
            response.delay = fault["delay"]
            return response
        raise AssertionError(kind)
