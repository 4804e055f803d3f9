"""The scheduler process of a gunicorn master: started once the master is ready, kept alive, stopped on exit.

Exactly one `flask sync schedule` child per master; web workers never run the sync. A scheduler that dies is
started again. Should two masters ever run against the same store (a USR2 upgrade, two deployments), the run
lock in the store still lets only one run proceed at a time. SYNC_SCHEDULER=off: no scheduler in this server
(the web hosts of a deployment whose scheduler runs as its own process). Standard library only: the master
imports this module, never the app.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCHEDULER_COMMAND = (sys.executable, "-m", "flask", "--app", "wsgi", "sync", "schedule")
STOP_TIMEOUT = 10.0  # seconds a stopping scheduler gets to finish before it is killed
POLL_INTERVAL = 2.0  # how often the master checks that its scheduler is alive
MAX_BACKOFF = 60.0  # longest pause between restarts of a scheduler that keeps dying at once
OFF = {"off", "0", "false", "no"}


def scheduler_enabled(environ=os.environ) -> bool:
    """False when SYNC_SCHEDULER says off (or 0, false, no)."""
    return environ.get("SYNC_SCHEDULER", "").strip().lower() not in OFF


def start(log) -> Supervisor | None:
    """The scheduler of this server, started and watched; None when SYNC_SCHEDULER is off."""
    if not scheduler_enabled():
        log.info("SYNC_SCHEDULER=off: no sync scheduler in this server")
        return None
    supervisor = Supervisor(log)
    supervisor.start()
    return supervisor


def stop(supervisor: Supervisor | None) -> None:
    if supervisor is not None:
        supervisor.stop()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: have the kernel SIGTERM the scheduler should the master be killed without running its exit hook."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Supervisor:
    """One scheduler child, and the thread that keeps it alive."""

    def __init__(self, log, command: Sequence[str] = SCHEDULER_COMMAND, poll_interval: float = POLL_INTERVAL, stop_timeout: float = STOP_TIMEOUT):
        self.log = log
        self.command, self.poll_interval, self.stop_timeout = command, poll_interval, stop_timeout
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self._spawn()
        self.thread = threading.Thread(target=self._watch, name="sync-scheduler-watch", daemon=True)
        self.thread.start()

    def _spawn(self) -> None:
        with self.lock:
            if self.stopping.is_set():
                return
            self.process = subprocess.Popen(
                self.command,
                cwd=str(ROOT),
                # Its own session: a Ctrl-C in the terminal reaches the master only, which then stops it.
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
            self.started_at = time.monotonic()
            self.log.info("Started sync scheduler (pid: %s)", self.process.pid)

    def _watch(self) -> None:
        backoff = self.poll_interval
        while not self.stopping.wait(self.poll_interval):
            process = self.process
            # poll() also sees a child the master's own waitpid(-1) already reaped (it then reports 0).
            if process is None or process.poll() is None:
                continue
            lived = time.monotonic() - self.started_at
            backoff = self.poll_interval if lived > MAX_BACKOFF else min(backoff * 2, MAX_BACKOFF)
            # The exit code is lost when gunicorn's own waitpid(-1) reaped the child first.
            self.log.error("Sync scheduler (pid: %s) exited; starting a new one in %.0f s", process.pid, backoff)
            if self.stopping.wait(backoff):
                return
            self._spawn()

    def stop(self) -> None:
        with self.lock:
            self.stopping.set()
            process = self.process
        if process is None or process.poll() is not None:
            return
        self.log.info("Stopping sync scheduler (pid: %s)", process.pid)
        process.terminate()
        try:
            process.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.log.warning("Sync scheduler (pid: %s) still running after %.0f s; killing it", process.pid, self.stop_timeout)
            process.kill()
            process.wait()
