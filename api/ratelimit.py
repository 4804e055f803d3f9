"""Rate limits (Flask-Limiter): one limiter for the app, counted per client address, for the admin login now and the API later.

The address is the one the request came from, or with TRUSTED_PROXIES the one the trusted proxies forwarded
(werkzeug's ProxyFix, set up by app.py, has rewritten `remote_addr` before this runs). Counters live in
RATELIMIT_STORAGE_URI: `memory://` (the default) keeps them per worker process; a shared store
(`redis://...`, `memcached://...`) makes the limit hold across workers and hosts.
"""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

DEFAULT_STORAGE = "memory://"
# Where limits are: the limiter's hooks run on these blueprints' requests only (a limit on another blueprint's
# view needs its blueprint named here). Limits for the whole app (RATELIMIT_DEFAULT, _APPLICATION, _META) keep
# them on every request.
LIMITED_BLUEPRINTS = ("admin",)
APP_WIDE_LIMITS = ("RATELIMIT_DEFAULT", "RATELIMIT_APPLICATION", "RATELIMIT_META")

limiter = Limiter(
    key_func=get_remote_address,
    headers_enabled=True,  # Retry-After and X-RateLimit-* on the limited routes' answers
    # A shared store that cannot be reached must not lock everyone out: count in this worker's memory meanwhile.
    in_memory_fallback_enabled=True,
    strategy="moving-window",  # no burst of twice the limit around a window's edge
)


def init_ratelimit(app: Flask) -> Limiter:
    """Bind the limiter to this app, its counters in RATELIMIT_STORAGE_URI."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", DEFAULT_STORAGE)
    # The limiter is shared by every app made in this process (the tests make many): say it each time, so that an
    # app made with RATELIMIT_ENABLED=False never switches it off for the next ones.
    app.config.setdefault("RATELIMIT_ENABLED", True)
    hooks = (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs)
    before = [list(funcs.get(None, ())) for funcs in hooks]
    limiter.init_app(app)
    if not any(app.config.get(name) for name in APP_WIDE_LIMITS):
        for funcs, had in zip(hooks, before, strict=True):
            _scope_new_hooks(funcs, had)
    return limiter


def _scope_new_hooks(funcs: dict, had: list) -> None:
    """Move the hooks init_app added for every request to the limited blueprints' requests: an API request then
    spends nothing on limits it does not have (the limiter's hooks were a fifth of the pull feed's CPU)."""
    added = [func for func in funcs.get(None, ()) if func not in had]
    funcs[None] = [func for func in funcs.get(None, ()) if func not in added]
    for blueprint in LIMITED_BLUEPRINTS:
        funcs.setdefault(blueprint, [])[0:0] = added  # first, as the app's hooks were: before the blueprint's own
