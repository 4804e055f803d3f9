"""One webservice request, its answer, and the two ways PrestaShop fails: a webservice error document (WsError) or
a PHP fatal error that leaves an empty 500 (PhpFatal)."""

from __future__ import annotations

import time


class WsError(Exception):
    """A webservice error answer: status and one or more (code, message), rendered as <errors> or {"errors"}."""

    def __init__(self, status: int, code: int, message: str, headers: dict | None = None, more: tuple[tuple[int, str], ...] = ()):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}
        self.errors = [(code, message), *more]


class PhpFatal(Exception):
    """An uncaught PHP error: Apache answers 500, text/html, empty body, no webservice header (recorded:
    root_json, order_history_post_order_999, order_history_post_state_999)."""


class Response:
    def __init__(self, status: int, body: bytes | None = b"", content_type: str | None = None, headers: dict | None = None):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}
        self.delay = 0.0  # seconds to wait before answering ("timeout" faults)
        self.reset = False  # close the socket without any answer ("reset" faults)


class Ctx:
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
