"""A run started over HTTP goes on in a thread of the web worker, so the request answers at once."""

from __future__ import annotations

from functools import partial

from flask import Flask

from app import gescom_of, run_config_of, session_in
from sync.services import scheduler


def execute_in_background(app: Flask, run_id: int, holder: str) -> None:
    """Do the run `start_run` recorded (it holds the run lock) in a daemon thread with its own app context."""
    scheduler.execute_in_background(partial(session_in, app), gescom_of(app), run_id, holder, run_config_of(app))
