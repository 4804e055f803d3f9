"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app` (what `make run` starts).

Environment (or .env): BIND (default 127.0.0.1:8000), WEB_CONCURRENCY (workers, default 2),
SYNC_SCHEDULER=off to serve the API without running the periodic sync. The master starts the one scheduler
process (`flask sync schedule`) once it is ready and stops it when it exits: see sync/services/supervisor.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent
load_dotenv(ROOT / ".env")  # the app reads .env too; this makes BIND, WEB_CONCURRENCY, SYNC_SCHEDULER work from it
if str(ROOT) not in sys.path:  # started from another directory: the project is still found
    sys.path.insert(0, str(ROOT))

from sync.services import supervisor  # noqa: E402  (after the path)

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


# The scheduler is kept on the arbiter: gunicorn re-reads this file on SIGHUP, while when_ready runs once per master.
def when_ready(server) -> None:
    server.sync_scheduler = supervisor.start(server.log)


def on_exit(server) -> None:
    supervisor.stop(getattr(server, "sync_scheduler", None))
