"""Concurrency on PostgreSQL: two schedulers, four push workers, feed readers and an acknowledger at once.

Promises: one run at a time; each update pushed once (one history row, one state mail per order); the
feed cursor never skips nor repeats an update, whatever is inserted or acknowledged meanwhile.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import SyncRun, Update
from sync.prestashop.client import PrestaShopClient
from sync.services.push import push_pending
from sync.services.run_config import RunConfig
from sync.services.runs import RunInProgress, run_sync
from sync.services.unit_of_work import UnitOfWork
from sync.store.feed import acknowledge, updates_after
from tests.simulator import ShopSimulator

KEY = "Q" * 32
ORDERS = int(os.environ.get("CONCURRENCY_ORDERS", "40"))


def test_everything_at_once(sync, warehouse, clock, store_db, gescom, backend):
    if backend != "postgresql":
        pytest.skip("concurrent writers are PostgreSQL's job (SQLite serialises them by design)")
    sim = ShopSimulator(version="8.1.5", key=KEY).start()
    sim.latency = 0.002
    stop = threading.Event()
    errors: list[BaseException] = []
    in_progress = {"refused": 0, "runs": 0}
    feeds: list[list[int]] = [[], []]

    def guarded(target):
        def run():
            try:
                target()
            except BaseException as error:  # surfaced below
                errors.append(error)
                stop.set()

        return run

    def scheduler():
        with Session(store_db.engine) as session:
            while not stop.is_set():
                try:
                    run_sync(UnitOfWork(session), gescom, config=RunConfig(recheck_age=timedelta(0)))
                    in_progress["runs"] += 1
                except RunInProgress:
                    in_progress["refused"] += 1
                time.sleep(0.01)

    def pusher():
        client = PrestaShopClient(sim.url, KEY, timeout=(5, 5), sleep=lambda s: None)
        with Session(store_db.engine) as session:
            while not stop.is_set():
                push_pending(UnitOfWork(session), client)
                time.sleep(0.01)

    def reader(index: int):
        cursor = 0
        with Session(store_db.engine) as session:
            while True:  # until stopped and drained
                page = updates_after(session, cursor, 7, include_acked=True)
                session.rollback()
                feeds[index] += [u.id for u in page.updates]
                cursor = page.next
                if stop.is_set() and not page.has_more and not page.updates:
                    return

    def acknowledger():
        with Session(store_db.engine) as session:
            while not stop.is_set():
                page = updates_after(session, 0, 5)
                if page.updates:
                    acknowledge(session, ids=[u.id for u in page.updates])
                    session.commit()
                session.rollback()
                time.sleep(0.005)

    threads = [threading.Thread(target=guarded(scheduler)) for _ in range(2)]
    threads += [threading.Thread(target=guarded(pusher)) for _ in range(4)]
    threads += [threading.Thread(target=guarded(lambda i=i: reader(i))) for i in range(2)]
    threads.append(threading.Thread(target=guarded(acknowledger)))
    try:
        keys = [str(9000 + n) for n in range(ORDERS)]
        for key in keys:
            sim.add_order(int(key), current_state=2)
        for thread in threads:
            thread.start()
        for key in keys:  # the warehouse works meanwhile
            piece = warehouse.create_order(key, [("MUG", "Mug", 2)])
            warehouse.transform((1, piece), 3, header={"DO_Coord01": f"6A{key}"})
        deadline = time.monotonic() + 120
        with Session(store_db.engine) as session:
            while time.monotonic() < deadline and not errors:
                session.expire_all()
                shipped = session.scalars(select(Update).where(Update.stage == "shipped")).all()
                if len(shipped) == ORDERS and all(u.push_status == "pushed" for u in shipped):
                    break
                time.sleep(0.2)
        stop.set()
        for thread in threads:
            thread.join(60)
    finally:
        stop.set()
        sim.stop()
    assert not errors, errors
    with Session(store_db.engine) as session:
        runs = session.scalars(select(SyncRun).where(SyncRun.status == "succeeded").order_by(SyncRun.started_at)).all()
        everything = list(session.scalars(select(Update.id).order_by(Update.id)))
        statuses = {u.push_status for u in session.scalars(select(Update))}
    for earlier, later in zip(runs, runs[1:]):
        assert later.started_at >= earlier.finished_at  # one run at a time
    assert statuses == {"pushed"}  # every update, the "ordered" ones included (nothing for the shop in them)
    for key in keys:
        states = [row["id_order_state"] for row in sim.histories if int(row["id_order"]) == int(key)]
        assert states.count(4) == 1, (key, states)  # pushed once
        assert len([m for m in sim.mails if int(m["id_order"]) == int(key) and m["kind"] == "state"]) == 1
    for seen in feeds:
        assert seen == everything  # never skipped, never repeated, in order
    assert in_progress["runs"] > 2 and in_progress["refused"] > 0  # the two schedulers really competed
