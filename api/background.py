"""A run started over HTTP goes on in a thread of the web worker, so the request answers at once."""
from __future__ import annotations

import threading

from flask import Flask

from models import SyncRun, db
from sync.services.runs import RunConfig, execute_run


def execute_in_background(app: Flask, run_id: int, holder: str) -> None:
    """Do the run `start_run` recorded (it holds the run lock) in a daemon thread with its own app context."""

    def target():
        with app.app_context():
            try:
                run = db.session.get(SyncRun, run_id)
                execute_run(db.session, app.extensions["gescom"], run, holder, config=RunConfig.from_mapping(app.config))
            except Exception:  # recorded on the run by execute_run; the thread must not die loudly
                app.logger.exception("run %s failed", run_id)
            finally:
                db.session.remove()

    threading.Thread(target=target, name=f"sync-run-{run_id}", daemon=True).start()
