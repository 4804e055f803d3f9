"""API keys on every endpoint but the public ones, checked before any view runs (default deny).

A view's needed scope: `@requires("admin")`, else read for GET/HEAD/OPTIONS and write for the rest.
Keys come in `Authorization: Bearer <key>` or `X-Api-Key: <key>`; they are never logged. Each worker remembers
a checked key for API_KEY_CACHE_SECONDS (`KeyCache`): a key revoked elsewhere is refused at most that much later.
Failed checks are counted per client address (API_AUTH_FAILURE_LIMIT, api/ratelimit); a CORS preflight from an
allowed origin needs no key (api/cors).
"""

from __future__ import annotations

import math

from flask import Flask, after_this_request, current_app, g, request
from flask_limiter.util import get_remote_address

from models import db
from sync.store.keys import CACHE_SECONDS, KeyCache, KeyGrant, check_key, scope_allows, touch_key

from .cors import is_allowed_preflight
from .problems import ApiProblem
from .ratelimit import FailedAuthThrottle, failed_auth_throttle

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


def needed_scope(view, method: str) -> str:
    """The scope a key needs to call this view with this method."""
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
    if is_allowed_preflight():
        return None  # a browser asking whether it may: flask-cors answers, no key is sent
    key_hash, grant = _checked_key(failed_auth_throttle(current_app))
    _touch_after_the_view(grant, key_hash, current_app.extensions["api_key_cache"])
    needed = needed_scope(current_app.view_functions[endpoint], request.method)
    if not scope_allows(grant.scope, needed):
        raise ApiProblem(403, "insufficient_scope", f"this endpoint needs a key with scope {needed!r}; this key has {grant.scope!r}")
    g.api_key = grant
    return None


def _checked_key(throttle: FailedAuthThrottle | None) -> tuple[str, KeyGrant]:
    """The presented key, checked; 401 for none or a wrong one, 429 first when this address has failed too often."""
    address = get_remote_address()
    wait = throttle.retry_after(address) if throttle else None
    if wait is not None:
        detail = f"too many requests from this address without a valid API key: wait {wait} s"
        raise ApiProblem(429, "too_many_failures", detail, headers={"Retry-After": str(wait)})
    challenge = {"WWW-Authenticate": 'Bearer realm="api"'}
    key = presented_key()
    checked = None if key is None else check_key(db.session, key, current_app.extensions["api_key_cache"])
    if checked is None:
        if throttle:
            throttle.failed(address)
        if key is None:
            raise ApiProblem(401, "unauthorized", "send an API key: Authorization: Bearer <key> (or X-Api-Key)", headers=challenge)
        raise ApiProblem(401, "invalid_api_key", "this API key is unknown or revoked", headers=challenge)
    return checked


def _touch_after_the_view(grant: KeyGrant, key_hash: str, cache: KeyCache) -> None:
    """Record the key's use once the view is done, in a short transaction of its own: the request never writes
    for it, and a store that cannot take the write (read-only, locked) delays the answer a quarter second at most."""
    engine = db.engine

    @after_this_request
    def record_use(response):
        when = touch_key(engine, grant)  # logs its own failure, never raises it
        if when is not None:
            cache.used(key_hash, when)  # this worker's next requests need not write it again
        return response


def _cache_seconds(app: Flask) -> float:
    """API_KEY_CACHE_SECONDS (app.py reads it from the environment); 0 turns the cache off."""
    value = app.config.get("API_KEY_CACHE_SECONDS", CACHE_SECONDS)
    if not 0 <= value < math.inf:  # nan and inf too: a revoked key must be refused some time
        raise RuntimeError(f"API_KEY_CACHE_SECONDS must be 0 (off) or a finite number of seconds, not {value!r}")
    return value


def init_auth(app: Flask) -> None:
    app.extensions["api_key_cache"] = KeyCache(_cache_seconds(app))
    app.before_request(authenticate)
