"""Is the middleware able to work: our store and GesCom, each said apart, answered in bounded time.

GesCom is asked in a thread of its own, one probe at a time per GesCom: a GesCom that never answers holds that one
thread (until its connect timeout), not one per health check, and a health check waits for it `GESCOM_WAIT` seconds.
"""

from __future__ import annotations

import threading
import time
import weakref
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from sqlalchemy.engine import Engine

from sync.gescom.adapter import GesCom
from sync.store.health import check_store

GESCOM_WAIT = 2.0  # seconds a health check waits for GesCom's answer, the store's check included

_probes: weakref.WeakKeyDictionary[GesCom, Future] = weakref.WeakKeyDictionary()
_probes_guard = threading.Lock()


def probe_gescom(gescom: GesCom) -> Future:
    """The probe of this GesCom in progress, or a new one: health checks at the same moment share it."""
    with _probes_guard:
        future = _probes.get(gescom)
        if future is None or future.done():
            future = _probes[gescom] = Future()
            threading.Thread(target=_ping, args=(gescom, future), name="gescom-probe", daemon=True).start()
    return future


def _ping(gescom: GesCom, future: Future) -> None:
    try:
        gescom.ping()
    except Exception as error:  # whatever went wrong is the answer
        future.set_exception(error)
    else:
        future.set_result(None)


def gescom_check(future: Future, wait: float = GESCOM_WAIT) -> dict:
    """The probe's answer within `wait` seconds: {"ok", "status": ok | down, "error"}."""
    try:
        future.result(timeout=wait)
    except FutureTimeout:
        return {"ok": False, "status": "down", "error": f"GesCom did not answer within {GESCOM_WAIT:g} s"}
    except Exception as error:  # the probe's failure, said as GesCom said it
        return {"ok": False, "status": "down", "error": str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__}
    return {"ok": True, "status": "ok"}


def health(store: Engine, gescom: GesCom) -> dict:
    """{"status": ok | degraded | unavailable, "checks": {"store": …, "gescom": …}}: degraded when the store reads
    but cannot write and GesCom answers; GesCom is asked while the store is checked."""
    started = time.monotonic()
    future = probe_gescom(gescom)
    checks = {"store": check_store(store)}
    checks["gescom"] = gescom_check(future, max(0.05, GESCOM_WAIT - (time.monotonic() - started)))
    statuses = {check["status"] for check in checks.values()}
    status = "ok" if statuses == {"ok"} else "unavailable" if "down" in statuses else "degraded"
    return {"status": status, "checks": checks}
