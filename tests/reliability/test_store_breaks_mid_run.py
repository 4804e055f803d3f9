"""The store breaking under a run started over the API: the run lock never stays stuck, the run never stays `running`.

A `before_cursor_execute` event on the store's engine plays a disk gone bad: from a chosen statement of the
background run on, every statement on the store fails with the driver's own OperationalError("disk I/O error"),
reads included, until the test heals it. Before the fix, every later run was refused (409 run_in_progress) for the
lock's whole TTL (15 minutes), and the run stayed `running` for good.

RELIABILITY_REPORT=1 prints the figures docs/reliability.md quotes.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from models import ShopOrder, SyncRun, Update, db
from sync.gescom.demo.schema import create_gescom
from sync.gescom.demo.warehouse import Warehouse
from sync.services.run_config import RunConfig
from sync.services.runs import RunInProgress, start_run
from sync.services.unit_of_work import UnitOfWork
from sync.store.locks import acquire_lock, lock_holder, release_lock
from tests.conftest import bearer

LINES = [("MUG", "Mug", 1)]
KEYS = ["501", "502", "503"]


def _writes_orders(statement: str) -> bool:
    return statement.lstrip().upper().startswith(("INSERT", "UPDATE")) and "shop_orders" in statement


class BrokenStore:
    """Every statement on the store fails from the first one `trigger` picks in a background run, until `heal()`."""

    def __init__(self, engine, trigger=_writes_orders):
        self.engine, self.trigger = engine, trigger
        self.broken, self.healed = threading.Event(), threading.Event()
        self.refused: list[str] = []
        event.listen(engine, "before_cursor_execute", self)

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        if not self.healed.is_set() and self.trigger(statement) and threading.current_thread().name.startswith("sync-run-"):
            self.broken.set()
        if self.broken.is_set():
            self.refused.append(statement)
            raise conn.dialect.loaded_dbapi.OperationalError("disk I/O error")
        return statement, parameters

    def refused_releases(self) -> int:
        """How many times the run has tried to give its lock back, and been refused."""
        return sum("UPDATE sync_locks SET holder" in statement for statement in list(self.refused))

    def heal(self) -> None:
        self.healed.set()  # for good: later runs are not broken again
        self.broken.clear()

    def remove(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self)


@pytest.fixture
def warehouse(app, clock):
    """A Sage-shaped GesCom with a few web orders, none of them followed yet."""
    engine = app.extensions["gescom"].engine
    create_gescom(engine)
    warehouse = Warehouse(engine, clock)
    for key in KEYS:
        warehouse.create_order(key, LINES)
    return warehouse


@pytest.fixture
def broken_store(app):
    faults = []

    def arm(trigger=_writes_orders) -> BrokenStore:
        with app.app_context():
            faults.append(BrokenStore(db.engine, trigger))
        return faults[-1]

    yield arm
    for fault in faults:
        fault.remove()


def _wait(predicate, timeout: float = 20.0) -> float:
    """Seconds until `predicate()` holds."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "timed out"
        time.sleep(0.01)
    return time.monotonic() - started


def _report(line: str) -> None:
    if os.environ.get("RELIABILITY_REPORT"):
        print(line)


def _break_a_run(client, write, fault: BrokenStore) -> int:
    """Start a run over the API, and wait until the store has refused its end (the lock's release included)."""
    started = client.post("/api/v1/sync/runs", json={}, headers=write)
    assert started.status_code == 202
    assert fault.broken.wait(20), "the run never reached the statement the fault waits for"
    _wait(fault.refused_releases)
    return started.json["id"]


def _run(client, write, run_id: int) -> dict:
    _wait(lambda: client.get(f"/api/v1/sync/runs/{run_id}", headers=write).json["status"] != "running")
    return client.get(f"/api/v1/sync/runs/{run_id}", headers=write).json


def _nothing_half_written(app) -> None:
    with app.app_context():
        assert list(db.session.scalars(select(Update.order_key).order_by(Update.order_key))) == KEYS  # each order once
        assert db.session.scalar(select(func.count()).select_from(ShopOrder)) == len(KEYS)
        assert db.session.scalar(select(func.count()).select_from(SyncRun).where(SyncRun.status == "running")) == 0


def test_a_store_broken_mid_run_lets_the_next_run_start_as_soon_as_it_heals(app, client, keys, warehouse, broken_store):
    write = bearer(keys["write"])
    fault = broken_store()
    broken_id = _break_a_run(client, write, fault)
    fault.heal()
    healed = time.monotonic()
    again = client.post("/api/v1/sync/runs", json={}, headers=write)
    accepted = time.monotonic() - healed
    assert again.status_code == 202, again.json  # at once: not after the lock's 15 minutes
    broken = _run(client, write, broken_id)
    assert broken["status"] == "failed", broken
    assert broken["error"].startswith("the run could not record its end: ") and "disk I/O error" in broken["error"], broken
    assert _run(client, write, again.json["id"])["status"] == "succeeded"
    _nothing_half_written(app)
    _report(f"store broken mid-run: next run accepted {accepted * 1000:.0f} ms after the store healed; {len(fault.refused)} statements refused")


def test_a_broken_run_gives_its_lock_back_by_itself_once_the_store_heals(app, client, keys, warehouse, broken_store):
    """No next run in this process: the run's thread retries, so another process need not wait for the lock's TTL."""
    write = bearer(keys["write"])
    fault = broken_store()
    broken_id = _break_a_run(client, write, fault)
    _wait(lambda: fault.refused_releases() >= 2)  # the store stays broken past the thread's first retry
    fault.heal()
    healed = time.monotonic()
    with app.app_context():

        def settled() -> bool:
            db.session.rollback()  # a fresh look each time
            return lock_holder(db.session, "sync") is None and db.session.get(SyncRun, broken_id).status != "running"

        # A bound against a hang, not a speed target: the thread's retries wait up to 10 s apart (`_settle`), and a
        # loaded machine adds to that; how long it took is reported (RELIABILITY_REPORT=1).
        _wait(settled, timeout=60.0)
        freed = time.monotonic() - healed
        # Another process's holder takes it as a free lease: no takeover, no TTL.
        assert acquire_lock(db.session, "sync", "another-host:1:a-scheduler", timedelta(minutes=1))
        release_lock(db.session, "sync", "another-host:1:a-scheduler")
        run = db.session.get(SyncRun, broken_id)
        assert run.status == "failed" and run.error.startswith("the run could not record its end: "), (run.status, run.error)
    _report(f"store broken mid-run, no next run: lock given back and run recorded failed {freed * 1000:.0f} ms after the store healed")


def test_a_run_whose_record_cannot_be_read_gives_its_lock_back(app, client, keys, warehouse, broken_store):
    """The store breaks before the background run could even load its record."""
    write = bearer(keys["write"])
    fault = broken_store(trigger=lambda statement: "sync_runs" in statement)
    broken_id = _break_a_run(client, write, fault)
    fault.heal()
    again = client.post("/api/v1/sync/runs", json={}, headers=write)
    assert again.status_code == 202, again.json
    broken = _run(client, write, broken_id)
    assert broken["status"] == "failed" and broken["error"].startswith("the run could not start: "), broken
    assert _run(client, write, again.json["id"])["status"] == "succeeded"
    _nothing_half_written(app)


def _race(engine, config: RunConfig) -> list[str | None]:
    """Two threads of this process start a run at the same instant: the holder each got, or None (RunInProgress)."""
    barrier, outcomes = threading.Barrier(2), []

    def start() -> None:
        with Session(engine) as session:
            barrier.wait()
            try:
                outcomes.append(start_run(UnitOfWork(session), config=config)[1])
            except RunInProgress:
                outcomes.append(None)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes


def test_two_threads_of_one_process_never_both_run(store_db, backend):
    """Whether the lock is free, held by a run of this process still going, or left by one the store would not let go."""
    config = RunConfig()
    rounds = 10
    for _ in range(rounds):
        outcomes = _race(store_db.engine, config)
        winners = [holder for holder in outcomes if holder is not None]
        assert len(outcomes) == 2 and len(winners) == 1, outcomes
        assert _race(store_db.engine, config) == [None, None]  # a run of this process still going is never taken over
        with Session(store_db.engine) as session:
            fault = BrokenStore(store_db.engine, trigger=lambda statement: True)
            fault.broken.set()
            try:
                with contextlib.suppress(OperationalError):  # raised before the fix; now False, the lease remembered
                    release_lock(session, "sync", winners[0])  # its run is over; the store refuses to let go
            finally:
                fault.remove()
            assert fault.refused
    with Session(store_db.engine) as session:
        runs = session.scalars(select(SyncRun.status)).all()
    assert len(runs) == rounds and runs.count("running") == 1  # one run at a time; the ones before it closed
