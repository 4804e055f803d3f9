"""The periodic job: a run every SYNC_INTERVAL seconds, until told to stop. One per deployment (see gunicorn.conf.py)."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


def run_periodically(job: Callable[[], None], interval: float, stop: threading.Event, max_runs: int | None = None) -> int:
    """Call `job` every `interval` seconds (measured start to start) until `stop` is set; returns how many ran.

    A failing job is logged and the loop goes on: the next tick is a fresh chance.
    """
    runs = 0
    while not stop.is_set():
        started = time.monotonic()
        try:
            job()
        except Exception:  # the scheduler must survive anything a run throws
            log.exception("scheduled run failed")
        runs += 1
        if max_runs is not None and runs >= max_runs:
            break
        stop.wait(max(0.0, interval - (time.monotonic() - started)))
    return runs
