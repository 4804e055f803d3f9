"""API keys on every endpoint but the public ones, checked before any view runs (default deny).

A view's needed scope: `@requires("admin")`, else read for GET/HEAD/OPTIONS and write for the rest.
Keys come in `Authorization: Bearer <key>` or `X-Api-Key: <key>`; they are never logged.
"""

from __future__ import annotations

from flask import Flask, after_this_request, current_app, g, request

from models import db
from sync.store.keys import KeyUse, scope_allows, touch_key, verify_key

from .problems import ApiProblem

# Endpoints anyone may call: health, the OpenAPI document and the documentation page.
PUBLIC_ENDPOINTS = frozenset(
    {
        "health.Health",
        "api-docs.openapi_json",
        "api-docs.openapi_swagger_ui",
        "openapi_v1",
        "swagger_assets",
        "static",
    }
)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def requires(scope: str):
    """Mark a view (function or MethodView method) as needing at least this scope."""

    def mark(view):
        view.required_scope = scope
        return view

    return mark


def _needed_scope(view, method: str) -> str:
    handler = getattr(getattr(view, "view_class", None), method.lower(), None) or view
    return getattr(handler, "required_scope", None) or ("read" if method in READ_METHODS else "write")


def presented_key() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.headers.get("X-Api-Key", "").strip() or None


def authenticate():
    endpoint = request.endpoint
    if endpoint is None or endpoint in PUBLIC_ENDPOINTS:
        return None  # unknown routes get their 404/405 from Flask
    if request.blueprint == "admin":
        return None  # the admin pages: guarded by the admin blueprint's own session check (api/admin), every endpoint
    challenge = {"WWW-Authenticate": 'Bearer realm="api"'}
    key = presented_key()
    if key is None:
        raise ApiProblem(401, "unauthorized", "send an API key: Authorization: Bearer <key> (or X-Api-Key)", headers=challenge)
    row = verify_key(db.session, key)
    if row is None:
        raise ApiProblem(401, "invalid_api_key", "this API key is unknown or revoked", headers=challenge)
    _touch_after_the_view(row)
    needed = _needed_scope(current_app.view_functions[endpoint], request.method)
    if not scope_allows(row.scope, needed):
        raise ApiProblem(403, "insufficient_scope", f"this endpoint needs a key with scope {needed!r}; this key has {row.scope!r}")
    g.api_key = row
    return None


def _touch_after_the_view(row) -> None:
    """Record the key's use once the view is done, in a short transaction of its own: the request never writes
    for it, and a store that cannot take the write (read-only, locked) delays the answer a quarter second at most."""
    engine, use = db.engine, KeyUse.of(row)

    @after_this_request
    def record_use(response):
        touch_key(engine, use)  # logs its own failure, never raises it
        return response


def init_auth(app: Flask) -> None:
    app.before_request(authenticate)
