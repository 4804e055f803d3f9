"""Rate limits (Flask-Limiter): one limiter for the app, counted per client address: the admin login, failed API key checks.

The address is the one the request came from, or with TRUSTED_PROXIES the one the trusted proxies forwarded
(werkzeug's ProxyFix, set up by app.py, has rewritten `remote_addr` before this runs). Counters live in
RATELIMIT_STORAGE_URI: `memory://` (the default) keeps them per worker process; a shared store
(`redis://...`, `memcached://...`) makes the limit hold across workers and hosts.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse

LOG = logging.getLogger(__name__)

DEFAULT_STORAGE = "memory://"
# Where limits are: the limiter's hooks run on these blueprints' requests only (a limit on another blueprint's
# view needs its blueprint named here). Limits for the whole app (RATELIMIT_DEFAULT, _APPLICATION, _META) keep
# them on every request.
LIMITED_BLUEPRINTS = ("admin",)
APP_WIDE_LIMITS = ("RATELIMIT_DEFAULT", "RATELIMIT_APPLICATION", "RATELIMIT_META")
DEFAULT_AUTH_FAILURE_LIMIT = "30 per minute"
FAILED_AUTH = "api-auth-failure"  # the counters' namespace in the storage
RECENT_ADDRESSES = 10_000  # addresses a worker remembers as having failed lately (the oldest forgotten first)

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
    _init_failed_auth_throttle(app)
    return limiter


def _scope_new_hooks(funcs: dict, had: list) -> None:
    """Move the hooks init_app added for every request to the limited blueprints' requests: an API request then
    spends nothing on limits it does not have (the limiter's hooks were a fifth of the pull feed's CPU)."""
    added = [func for func in funcs.get(None, ()) if func not in had]
    funcs[None] = [func for func in funcs.get(None, ()) if func not in added]
    for blueprint in LIMITED_BLUEPRINTS:
        funcs.setdefault(blueprint, [])[0:0] = added  # first, as the app's hooks were: before the blueprint's own


class FailedAuthThrottle:
    """Failed API key checks counted per client address in the limiter's storage (API_AUTH_FAILURE_LIMIT).

    The limiter's hooks stay on the admin blueprint: this calls its strategy itself. Only an address that failed
    lately (in this worker) is looked up, so an API request from an address that never failed touches no storage.
    """

    def __init__(self, limit: str, remembered: int = RECENT_ADDRESSES):
        try:
            self.item = parse(limit)
        except ValueError as error:
            raise RuntimeError(f"API_AUTH_FAILURE_LIMIT must read like '30 per minute', not {limit!r}: {error}") from None
        self.remembered = remembered
        self._failed_at: OrderedDict[str, float] = OrderedDict()  # address -> monotonic time of its last failure
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> int | None:
        """Seconds this address must wait before its key is checked again; None when it may go on."""
        last = self._failed_at.get(address)
        if last is None:
            return None
        if time.monotonic() - last > self.item.get_expiry():
            self._forget(address)  # its failures have all left the window
            return None
        try:
            strategy = limiter.limiter
            if strategy.test(self.item, FAILED_AUTH, address):
                return None
            reset, _ = strategy.get_window_stats(self.item, FAILED_AUTH, address)
        except Exception:  # a shared store out of reach must not lock everyone out
            LOG.warning("failed-authentication throttle: the rate limit storage did not answer", exc_info=True)
            return None
        return max(1, math.ceil(reset - time.time()))

    def failed(self, address: str) -> None:
        """Count one failed key check from this address."""
        with self._lock:
            self._failed_at[address] = time.monotonic()
            self._failed_at.move_to_end(address)
            while len(self._failed_at) > self.remembered:
                self._failed_at.popitem(last=False)  # the oldest: its next failure is counted (and remembered) again
        try:
            limiter.limiter.hit(self.item, FAILED_AUTH, address)
        except Exception:
            LOG.warning("failed-authentication throttle: the rate limit storage did not answer", exc_info=True)

    def _forget(self, address: str) -> None:
        with self._lock:
            self._failed_at.pop(address, None)


def failed_auth_throttle(app: Flask) -> FailedAuthThrottle | None:
    """This app's throttle of failed API key checks; None when rate limits are off (RATELIMIT_ENABLED)."""
    return app.extensions.get("failed_auth_throttle")


def _init_failed_auth_throttle(app: Flask) -> None:
    limit = app.config.get("API_AUTH_FAILURE_LIMIT") or DEFAULT_AUTH_FAILURE_LIMIT
    throttle = FailedAuthThrottle(limit)  # checked even when off: a wrong setting fails at start
    app.extensions["failed_auth_throttle"] = throttle if app.config.get("RATELIMIT_ENABLED") else None
