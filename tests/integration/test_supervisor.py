"""The scheduler process of a gunicorn master: started, replaced when it dies, stopped on exit (with a stand-in
command: the real one is checked end to end in tests/e2e/test_serve.py)."""

from __future__ import annotations

import logging
import sys
import time

from sync.services import supervisor
from sync.services.supervisor import Supervisor

SLEEPER = (sys.executable, "-c", "import time; time.sleep(60)")
log = logging.getLogger(__name__)


def _wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


def test_sync_scheduler_off_means_no_scheduler(monkeypatch):
    for value in ("off", "OFF ", "0", "false", "no"):
        monkeypatch.setenv("SYNC_SCHEDULER", value)
        assert supervisor.start(log) is None
    for value in ("", "on", "1"):
        assert supervisor.scheduler_enabled({"SYNC_SCHEDULER": value})
    assert supervisor.scheduler_enabled({})
    supervisor.stop(None)  # nothing started: nothing to stop


def test_a_dead_scheduler_is_replaced_and_stop_ends_it():
    watched = Supervisor(log, command=SLEEPER, poll_interval=0.05, stop_timeout=5)
    watched.start()
    try:
        first = watched.process
        first.kill()
        first.wait()
        assert _wait_for(lambda: watched.process is not first), "no new scheduler after the first one died"
        second = watched.process
        assert second.poll() is None
    finally:
        watched.stop()
    assert second.poll() is not None
    watched.thread.join(5)
    assert not watched.thread.is_alive()
    time.sleep(0.3)
    assert watched.process is second  # none started after stop
