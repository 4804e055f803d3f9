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
    limiter.init_app(app)
    return limiter
