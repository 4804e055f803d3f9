"""Request body guards, whatever the transfer encoding: size (MAX_CONTENT_LENGTH), JSON only, nesting depth.

`BodyLimit` (WSGI) reads every body, Content-Length or chunked, into memory up to MAX_CONTENT_LENGTH and
hands the app a plain Content-Length body: a chunked body can no longer slip past a check that looks at
Content-Length, and the webhook's signature is checked on exactly the bytes that were read. `check_body` (a
before_request hook, after the API key's) answers what the middleware found, then refuses API bodies that are
not JSON or are nested deeper than MAX_JSON_DEPTH before any parser (webargs, json) sees them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from itertools import accumulate

from flask import Flask, current_app, request

from .problems import ApiProblem

MAX_JSON_DEPTH = 64  # far above any body of the API (3 levels); Python's parser recurses once per level
BODY_KEY = "middleware.body"  # the environ key where BodyLimit leaves what it found
DEFAULT_MAX_CONTENT_LENGTH = 1024 * 1024  # the app's setting; without one, bodies are still bounded
READ_SIZE = 64 * 1024

_KEEP_BRACKETS_AND_QUOTES = bytes(set(range(256)) - set(b'[]{}"'))  # the bytes translate() deletes
_SIGNS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # opening +1, closing -1 (as signed bytes)
# Bodies BodyLimit could not read as they were announced: (status, code, detail).
REFUSALS = {
    "bad_length": (400, "bad_request", "the Content-Length header is not a length"),
    "incomplete": (400, "bad_request", "the body ended before the length its Content-Length announced"),
    "unreadable": (400, "bad_request", "the body could not be read: a malformed chunk, or the connection broke"),
    "unframed": (411, "length_required", "this server cannot decode a body with that Transfer-Encoding: send a Content-Length"),
}


@dataclass(frozen=True)
class Body:
    """What BodyLimit found: `state` is ok or a reason to refuse (REFUSALS); `sent` whether a body came."""

    state: str
    sent: bool


def json_depth(data: bytes) -> int:
    """How deep arrays and objects nest in this JSON text, strings skipped; no recursion, linear in C whatever the input."""
    # Escaped backslashes, then escaped quotes, go first: what is left of the quotes opens and closes strings, in
    # turn, and split() puts what lies outside strings at even places (a string left open runs to the end).
    skeleton = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _KEEP_BRACKETS_AND_QUOTES)
    outside = b"".join(skeleton.split(b'"')[::2]).translate(_SIGNS)
    return max(accumulate(memoryview(outside).cast("b")), default=0)


def _content_length(environ: dict) -> int | None:
    """The announced length; None when there is none, -1 when it is not a length."""
    value = (environ.get("CONTENT_LENGTH") or "").strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit()):
        return -1
    return int(value[:19])  # 19 digits are more than any limit; int() refuses thousands of them


def _read(stream, most: int) -> bytes:
    """Up to `most` bytes of the stream, fewer if it ends first."""
    parts, got = [], 0
    while got < most:
        part = stream.read(min(READ_SIZE, most - got))
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def read_body(environ: dict, limit: int) -> tuple[Body, bytes]:
    """The request's body, read within the limit, and what it was like; nothing is read past limit + 1 bytes."""
    length = _content_length(environ)
    try:
        if environ.get("HTTP_TRANSFER_ENCODING", "").strip():
            if not environ.get("wsgi.input_terminated"):
                return Body("unframed", True), b""  # the server did not decode the chunks: where the body ends is unknown
            data = _read(environ["wsgi.input"], limit + 1)
            return (Body("too_large", True), b"") if len(data) > limit else (Body("ok", True), data)
        if length is not None and length < 0:
            return Body("bad_length", True), b""
        if not length:
            return Body("ok", False), b""  # no Content-Length and no Transfer-Encoding: no body (RFC 9112 6.3)
        if length > limit:
            return Body("too_large", True), b""  # announced: refused before a byte is read
        data = _read(environ["wsgi.input"], length)
    except OSError:  # the servers' own errors for a malformed chunk, a client gone or too slow
        return Body("unreadable", True), b""
    return (Body("incomplete", True), b"") if len(data) < length else (Body("ok", True), data)


class BodyLimit:
    """WSGI middleware: the body read whole within MAX_CONTENT_LENGTH, then given to the app with its exact length."""

    def __init__(self, wsgi_app, app: Flask):
        self.wsgi_app, self.app = wsgi_app, app

    def __call__(self, environ, start_response):
        body, data = read_body(environ, self.app.config.get("MAX_CONTENT_LENGTH") or DEFAULT_MAX_CONTENT_LENGTH)
        environ.pop("HTTP_TRANSFER_ENCODING", None)  # decoded here: what follows sees a Content-Length body
        environ.update({BODY_KEY: body, "wsgi.input": io.BytesIO(data), "CONTENT_LENGTH": str(len(data)), "wsgi.input_terminated": True})
        return self.wsgi_app(environ, start_response)


def check_body():
    """Refuse what BodyLimit found wrong, then API bodies that are not JSON or nest too deeply (before any parser)."""
    body = request.environ.get(BODY_KEY) or Body("ok", bool(request.content_length))
    if body.state == "too_large":
        limit = current_app.config.get("MAX_CONTENT_LENGTH") or DEFAULT_MAX_CONTENT_LENGTH
        raise ApiProblem(413, "payload_too_large", f"the body is larger than {limit} bytes")
    if body.state in REFUSALS:
        raise ApiProblem(*REFUSALS[body.state])
    if not body.sent or not request.path.startswith("/api/"):
        return None
    # A body sent as anything but JSON would be silently ignored (a dry run taken for a real one): refuse it.
    if not request.is_json:
        raise ApiProblem(415, "unsupported_media_type", "send the body as JSON, with Content-Type: application/json")
    if json_depth(request.get_data(cache=True)) > MAX_JSON_DEPTH:
        raise ApiProblem(400, "invalid_json", f"the JSON body nests arrays and objects more than {MAX_JSON_DEPTH} levels deep")
    return None


def init_limits(app: Flask) -> None:
    """The middleware around the app, and the check as a before_request hook (after the key's: keyed clients only spend CPU)."""
    app.wsgi_app = BodyLimit(app.wsgi_app, app)
    app.before_request(check_body)
