"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app` (what `make run` starts).

Environment (or .env): BIND (default 127.0.0.1:8000), WEB_CONCURRENCY (workers, default 2),
SYNC_SCHEDULER=off to serve the API without running the periodic detection.

The periodic detection runs in exactly one child process per gunicorn master, `flask sync schedule`,
started by the master once it is ready and stopped when the master exits; web workers never run it.
A scheduler that dies is started again. Should two masters ever run against the same store (a USR2
upgrade, two deployments), the run lock in the store still lets only one run proceed at a time.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent
load_dotenv(ROOT / ".env")  # the app reads .env too; this makes BIND, WEB_CONCURRENCY, SYNC_SCHEDULER work from it

bind = [os.environ.get("BIND") or "127.0.0.1:8000"]
workers = int(os.environ.get("WEB_CONCURRENCY") or 2)
# Threads per worker: requests waiting on the database or GesCom overlap (the app keeps no per-request globals).
threads = int(os.environ.get("WEB_THREADS") or 4)
worker_class = "gthread"
timeout = 60
graceful_timeout = 20
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# gunicorn's control socket defaults to one path per user ($XDG_RUNTIME_DIR or ~/.gunicorn): two servers
# (a test run beside `make run`) would fight over it, and nothing here uses it.
control_socket_disable = True

SCHEDULER_COMMAND = [sys.executable, "-m", "flask", "--app", "wsgi", "sync", "schedule"]
STOP_TIMEOUT = 10.0  # seconds a stopping scheduler gets to finish before it is killed
POLL_INTERVAL = 2.0  # how often the master checks that its scheduler is alive
MAX_BACKOFF = 60.0  # longest pause between restarts of a scheduler that keeps dying at once


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: have the kernel SIGTERM the scheduler should the master be killed without running on_exit."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Scheduler:
    """The master's one scheduler child, and the thread that keeps it alive."""

    def __init__(self, log):
        self.log = log
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
                SCHEDULER_COMMAND,
                cwd=str(ROOT),
                # Its own session: a Ctrl-C in the terminal reaches the master only, which then stops it.
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
            self.started_at = time.monotonic()
            self.log.info("Started sync scheduler (pid: %s)", self.process.pid)

    def _watch(self) -> None:
        backoff = POLL_INTERVAL
        while not self.stopping.wait(POLL_INTERVAL):
            process = self.process
            # poll() also sees a child the master's own waitpid(-1) already reaped (it then reports 0).
            if process is None or process.poll() is None:
                continue
            lived = time.monotonic() - self.started_at
            backoff = POLL_INTERVAL if lived > MAX_BACKOFF else min(backoff * 2, MAX_BACKOFF)
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
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.log.warning("Sync scheduler (pid: %s) still running after %.0f s; killing it", process.pid, STOP_TIMEOUT)
            process.kill()
            process.wait()


# Module state: the scheduler of this master. Also kept on the arbiter, because gunicorn re-reads this
# file on SIGHUP (a new module), while when_ready runs only once per master.
scheduler: Scheduler | None = None


def when_ready(server) -> None:
    global scheduler
    if os.environ.get("SYNC_SCHEDULER", "").strip().lower() in {"off", "0", "false", "no"}:
        server.log.info("SYNC_SCHEDULER=off: no sync scheduler in this server")
        return
    scheduler = Scheduler(server.log)
    server.sync_scheduler = scheduler
    scheduler.start()


def on_exit(server) -> None:
    running = getattr(server, "sync_scheduler", None) or scheduler
    if running is not None:
        running.stop()
