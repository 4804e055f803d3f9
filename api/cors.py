"""CORS for /api/v1 (flask-cors): off unless CORS_ALLOWED_ORIGINS names the origins allowed; never on the admin page.

A browser's preflight (OPTIONS with Origin and Access-Control-Request-Method) from an allowed origin is answered
without a key (api/auth lets it through); from any other origin it is an ordinary request, refused without a key.
"""

from __future__ import annotations

import re

from flask import Flask, current_app, request
from flask_cors import CORS

API_PATHS = r"/api/v1/.*"
# What a shop module's browser code sends and reads.
ALLOWED_HEADERS = ("Authorization", "X-Api-Key", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key", "X-Request-Id")
EXPOSED_HEADERS = ("ETag", "Retry-After", "X-Request-Id", "Idempotent-Replayed")
PREFLIGHT_MAX_AGE = 600  # seconds a browser may keep a preflight's answer
# scheme://host[:port], nothing flask-cors would take for a regular expression
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\*")


def allowed_origins(value) -> tuple[str, ...]:
    """CORS_ALLOWED_ORIGINS (comma-separated, or a list) as origins; empty when CORS is off."""
    items = value.split(",") if isinstance(value, str) else list(value or ())
    origins = tuple(item.strip().rstrip("/") for item in items if item.strip())
    for origin in origins:
        if not _ORIGIN.fullmatch(origin):
            raise RuntimeError(f"CORS_ALLOWED_ORIGINS: {origin!r} is not an origin like https://shop.example.com (or *)")
    return origins


def is_allowed_preflight() -> bool:
    """This request is a CORS preflight to the API from an allowed origin (answered without a key)."""
    if request.method != "OPTIONS":
        return False
    origins = current_app.extensions.get("cors_origins")
    if not origins or not request.headers.get("Access-Control-Request-Method"):
        return False
    origin = request.headers.get("Origin", "").casefold()
    return bool(origin) and request.path.startswith("/api/v1/") and ("*" in origins or origin in origins)


def init_cors(app: Flask) -> None:
    origins = allowed_origins(app.config.get("CORS_ALLOWED_ORIGINS"))
    app.extensions["cors_origins"] = frozenset(origin.casefold() for origin in origins)
    if not origins:
        return
    CORS(
        app,
        resources={API_PATHS: {}},
        origins=list(origins),
        allow_headers=list(ALLOWED_HEADERS),
        expose_headers=list(EXPOSED_HEADERS),
        max_age=PREFLIGHT_MAX_AGE,
        supports_credentials=False,  # keys travel in headers, never cookies
    )
