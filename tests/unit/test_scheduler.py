"""One scheduler tick with fakes: a run, then the push and the shop poll, each isolated; the loop around it."""

from __future__ import annotations

import logging
import os
import signal
import threading
from contextlib import contextmanager
from types import SimpleNamespace

import pytest

from sync.prestashop.client import ShopError
from sync.services import scheduler
from sync.services.run_config import RunConfig
from sync.services.runs import RunInProgress

CONFIG = RunConfig()


class FakeSession:
    def __init__(self):
        self.rollbacks = 0
        self.runs = {7: SimpleNamespace(id=7)}

    def rollback(self):
        self.rollbacks += 1

    def get(self, model, key):
        return self.runs.get(key)


@pytest.fixture
def steps(monkeypatch):
    """The services a tick calls, replaced by fakes that record each call, and how many rollbacks the tick's
    unit of work had done when it started (`seen`); `fail[step]` makes one raise."""
    calls, fail, seen = [], {}, []

    def step(name, result):
        def fake(uow, *args, **kwargs):
            calls.append((name, kwargs))
            seen.append(uow.session.rollbacks)
            if name in fail:
                raise fail[name]
            return result

        return fake

    run = SimpleNamespace(id=1, status="succeeded", orders_checked=3, updates_created=2)
    monkeypatch.setattr(scheduler, "run_sync", step("run", SimpleNamespace(run=run)))
    monkeypatch.setattr(scheduler, "push_pending", step("push", SimpleNamespace(pushed=2, failed=0, retry_later=0, held=0, error=None)))
    monkeypatch.setattr(scheduler, "poll_shop_tracking", step("poll", SimpleNamespace(written=1, warnings=[])))
    return SimpleNamespace(calls=calls, fail=fail, seen=seen, names=lambda: [name for name, _ in calls])


def test_a_tick_runs_then_pushes_then_polls(steps):
    session, stop = FakeSession(), threading.Event()
    scheduler.tick(session, "gescom", "shop", CONFIG, stop, employee_id=5, workers=3)
    assert steps.names() == ["run", "push", "poll"]
    run_options, push_options = steps.calls[0][1], steps.calls[1][1]
    assert run_options["config"] is CONFIG and run_options["should_stop"] == stop.is_set
    assert push_options == {"employee_id": 5, "workers": 3}
    assert steps.seen == [0, 0, 0]  # each step committed its own work: nothing to roll back between them


def test_without_a_shop_a_tick_only_runs(steps):
    scheduler.tick(FakeSession(), "gescom", None, CONFIG, threading.Event())
    assert steps.names() == ["run"]


def test_a_stop_during_the_run_skips_the_push_and_the_poll(steps, monkeypatch):
    stop = threading.Event()
    interrupted = SimpleNamespace(run=SimpleNamespace(id=1, status="interrupted", orders_checked=0, updates_created=0))

    def run_sync(*args, **kwargs):
        steps.calls.append(("run", kwargs))
        stop.set()  # SIGTERM while the run reads GesCom
        return interrupted

    monkeypatch.setattr(scheduler, "run_sync", run_sync)
    scheduler.tick(FakeSession(), "gescom", "shop", CONFIG, stop)
    assert steps.names() == ["run"]


@pytest.mark.parametrize("failing", ["run", "push", "poll"])
def test_a_failing_step_is_logged_rolled_back_and_the_others_still_happen(steps, failing, caplog):
    steps.fail[failing] = RuntimeError("boom")
    session = FakeSession()
    with caplog.at_level(logging.INFO, logger=scheduler.__name__):
        scheduler.tick(session, "gescom", "shop", CONFIG, threading.Event())
    assert steps.names() == ["run", "push", "poll"]
    failed_at = steps.names().index(failing)  # the steps after the failing one start from a rolled-back transaction
    assert steps.seen == [0] * (failed_at + 1) + [1] * (2 - failed_at)
    assert session.rollbacks == 2  # the failing step's, then the end of the tick's unit of work
    step = {"run": "run", "push": "push", "poll": "shop poll"}[failing]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [f"{step} failed this tick"]


def test_an_unreachable_shop_is_a_warning_and_the_poll_still_happens(steps, caplog):
    steps.fail["push"] = ShopError("connection refused")
    with caplog.at_level(logging.INFO, logger=scheduler.__name__):
        scheduler.tick(FakeSession(), "gescom", "shop", CONFIG, threading.Event())
    assert steps.names() == ["run", "push", "poll"]
    assert "shop unreachable this tick (push): connection refused" in [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_run_in_progress_elsewhere_skips_the_run_quietly(steps, caplog):
    steps.fail["run"] = RunInProgress("held")
    session = FakeSession()
    with caplog.at_level(logging.INFO, logger=scheduler.__name__):
        scheduler.tick(session, "gescom", "shop", CONFIG, threading.Event())
    assert steps.names() == ["run", "push", "poll"] and steps.seen == [0, 0, 0]
    assert "a run is already in progress; skipping this tick" in caplog.messages
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_the_loop_survives_a_failing_job_and_stops_after_max_runs():
    seen = []

    def job():
        seen.append(len(seen))
        if len(seen) == 1:
            raise RuntimeError("first tick fails")

    assert scheduler.run_periodically(job, 0, threading.Event(), max_runs=3) == 3 and seen == [0, 1, 2]


def test_serve_stops_on_sigterm_and_gives_the_signal_handlers_back():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    stops = []

    def job(stop):
        stops.append(stop.is_set())
        os.kill(os.getpid(), signal.SIGTERM)  # what `kill` or gunicorn's master sends

    assert scheduler.serve(job, 0, max_runs=5) == 1 and stops == [False]
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_a_recorded_run_is_done_in_a_thread_with_its_own_session(monkeypatch, caplog):
    session, done = FakeSession(), []

    @contextmanager
    def open_session():
        yield session
        done.append("closed")

    def execute_run(uow, gescom, run, holder, *, config):
        done.append((uow.session is session, gescom, run.id, holder, config))
        raise RuntimeError("a bug, recorded on the run")

    monkeypatch.setattr(scheduler, "execute_run", execute_run)
    with caplog.at_level(logging.ERROR, logger=scheduler.__name__):
        scheduler.execute_in_background(open_session, "gescom", 7, "holder", CONFIG).join(5)
    assert done == [(True, "gescom", 7, "holder", CONFIG), "closed"]
    assert caplog.messages == ["run 7 failed"]
