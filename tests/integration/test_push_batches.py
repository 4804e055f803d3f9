"""The push claims shop orders by batches: one store round trip per batch, never two claims of one order at once,
a batch whose worker dies claimed again, and a failure mid-batch keeps the orders pushed before it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

import sync.services.push as push_module
from models import ShopOrder, Update
from sync.services.push import _batch_size, _Claims
from tests.integration.test_push import KEY, LINES, client_for, histories, push
from tests.simulator import ShopSimulator

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def shop():
    sim = ShopSimulator(version="8.1.5", key=KEY).start()
    yield sim
    sim.stop()


def shipped(sync, warehouse, shop, count: int, start: int = 5000) -> list[int]:
    """`count` shop orders shipped in GesCom with a tracking number, each with one update (state 4, tracking)."""
    ids = [start + n for n in range(count)]
    for id_order in ids:
        shop.add_order(id_order, current_state=2)
        piece = warehouse.create_order(str(id_order), LINES)
        warehouse.transform((1, piece), 3, header={"DO_Coord01": f"6A{id_order}"})
    sync.run()
    return ids


def pending(sync) -> list[Update]:
    sync.session.expire_all()
    return list(sync.session.scalars(select(Update).where(Update.push_status == "pending")))


def writes(shop, resource: str) -> int:
    return len([r for r in shop.requests if r["method"] != "GET" and r["resource"] == resource])


def test_batches_claimed_at_once_never_overlap(sync, warehouse, clock, shop, store_db, backend):
    if backend != "postgresql":
        pytest.skip("FOR UPDATE SKIP LOCKED is PostgreSQL's; SQLite runs one push at a time (a lease)")
    shipped(sync, warehouse, shop, 30)
    every = set(sync.session.scalars(select(ShopOrder.id)))
    sync.session.rollback()
    sessions = [Session(store_db.engine) for _ in range(5)]
    barrier, claimed = threading.Barrier(4), {}

    def claim(n: int) -> None:
        barrier.wait()
        claimed[n] = {order.id for order in _Claims(10**6, 8).claim(sessions[n], postgres=True)}  # four processes at once

    try:
        threads = [threading.Thread(target=claim, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sum(len(ids) for ids in claimed.values()) == len(every) == 30  # 8 + 8 + 8 + 6: none twice
        assert set().union(*claimed.values()) == every
        assert all(len(ids) <= 8 for ids in claimed.values())
        sessions[0].rollback()  # a worker that ends without committing: its batch is free again, the others are not
        assert {order.id for order in _Claims(10**6, 8).claim(sessions[4], postgres=True)} == claimed[0]
    finally:
        for session in sessions:
            session.rollback()
            session.close()


def test_a_pass_claims_its_orders_by_batches(sync, warehouse, clock, shop):
    ids = shipped(sync, warehouse, shop, 20)
    bind = sync.session.get_bind()
    claims: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        if "FROM shop_orders" in statement and "EXISTS" in statement:
            claims.append(statement)

    event.listen(bind, "before_cursor_execute", count)
    try:
        report = push(sync, client_for(shop), batch=8)
    finally:
        event.remove(bind, "before_cursor_execute", count)
    assert report.pushed == report.orders == 20 and not pending(sync)
    assert len(claims) == 4  # by batches of 8: 8, 8, 4, then none due: one claim per batch, not one per shop order
    assert all(histories(shop, id_order) == [2, 4] for id_order in ids)


def test_workers_share_what_is_due_when_it_is_less_than_full_batches(sync, warehouse, clock, shop):
    shipped(sync, warehouse, shop, 20)
    assert _batch_size(sync.session, 32, 4, 500) == 5  # each of the 4 workers gets a share, none is left idle
    assert _batch_size(sync.session, 32, 4, 8) == 2  # of what this pass may push
    assert _batch_size(sync.session, 8, 2, 500) == 8  # enough for full batches
    assert _batch_size(sync.session, 32, 1, 500) == 32  # one worker: nobody to share with
    report = push(sync, client_for(shop), workers=4)
    assert report.pushed == report.orders == 20 and not pending(sync)


def _worker_env(store_db, shop) -> dict:
    env = {**os.environ, "STORE_URL": store_db.url, "SHOP_URL": shop.url, "SHOP_KEY": KEY, "PYTHONPATH": str(ROOT), "WORKERS": "1"}
    options = store_db.engine_options.get("connect_args", {}).get("options", "")
    if options.startswith("-csearch_path="):
        env["STORE_SEARCH_PATH"] = options.split("=", 1)[1]
    return env


def test_a_worker_killed_with_a_batch_claimed_leaves_it_to_the_next_push(sync, warehouse, clock, shop, store_db):
    ids = shipped(sync, warehouse, shop, 10)
    sync.session.commit()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.worker"],
        cwd=ROOT,
        env=_worker_env(store_db, shop),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    seen = [0]

    def kill_at_third_write(entry) -> None:
        seen[0] += 1
        if seen[0] == 3:  # the first order's tracking and state are in the shop, the second's tracking too
            os.kill(process.pid, signal.SIGKILL)

    shop.after_write = kill_at_third_write
    _, errors = process.communicate(timeout=60)
    shop.after_write = None
    assert process.returncode == -signal.SIGKILL, errors.decode()[-2000:]
    for _ in range(50):  # PostgreSQL ends the dead worker's transaction, and its row locks, as its connection drops
        push(sync, client_for(shop))
        if not pending(sync):
            break
        time.sleep(0.1)
    assert not pending(sync)
    for id_order in ids:
        assert histories(shop, id_order) == [2, 4]  # never posted twice, though the dead worker's results were never stored
        carrier = next(row for row in shop.order_carriers.values() if int(row["id_order"]) == id_order)
        assert carrier["tracking_number"] == f"6A{id_order}"
    assert writes(shop, "order_histories") == len(ids)
    assert writes(shop, "order_carriers") == len(ids)


def test_a_setup_error_mid_batch_keeps_the_orders_pushed_before_it(sync, warehouse, clock, shop):
    shipped(sync, warehouse, shop, 6)
    seen = [0]

    def revoke_key_after_two_orders(entry) -> None:
        seen[0] += 1
        if seen[0] == 4:  # two orders done (tracking, state): the next request is refused (401)
            shop.key = "R" * 32

    shop.after_write = revoke_key_after_two_orders
    report = push(sync, client_for(shop))
    shop.after_write = None
    assert report.error and report.pushed == report.orders == 2
    left = pending(sync)
    assert len(left) == 4
    assert all(item.push_attempts == 0 and item.push_answer is None for item in left)  # the stopped order kept nothing


def test_an_unexpected_error_mid_batch_keeps_the_orders_pushed_before_it(sync, warehouse, clock, shop, monkeypatch):
    shipped(sync, warehouse, shop, 6)
    real, calls = push_module._push_update, [0]

    def breaks_on_the_third(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 3:
            raise RuntimeError("a bug")
        return real(*args, **kwargs)

    monkeypatch.setattr(push_module, "_push_update", breaks_on_the_third)
    with pytest.raises(RuntimeError, match="a bug"):
        push(sync, client_for(shop))
    sync.session.rollback()
    left = pending(sync)
    assert len(left) == 4
    assert all(item.push_attempts == 0 and item.push_answer is None for item in left)
    monkeypatch.setattr(push_module, "_push_update", real)
    assert push(sync, client_for(shop)).pushed == 4


def _two_sets(sync, warehouse, shop) -> tuple[list[int], list[int]]:
    """Two sets of shop orders of the same shapes (a partial delivery then the rest, a piece number message, an
    order already shipped in the shop), the first set first in the store."""
    sync.settings(stage_states__partially_shipped=3, options__send_piece_number=True)
    sets = ([5000 + n for n in range(12)], [6000 + n for n in range(12)])
    for ids in sets:
        for n, id_order in enumerate(ids):
            shop.add_order(id_order, current_state=4 if n % 5 == 4 else 2)
            piece = warehouse.create_order(str(id_order), LINES)
            warehouse.transform((1, piece), 3, take={"MUG": 1} if n % 2 else None, header={"DO_Coord01": f"6A{id_order}1"})
        sync.run()
    for ids in sets:
        for id_order in ids[1::2]:
            warehouse.transform((1, warehouse.documents(str(id_order))[0][1]), 3, header={"DO_Coord01": f"6A{id_order}2"})
    sync.run()
    return sets


def _results(sync, ids: list[int]) -> list[tuple]:
    """What the store kept of each update of these orders, the shop's own numbers taken out."""
    sync.session.expire_all()
    rows = sync.session.scalars(select(Update).where(Update.id_order.in_(ids)).order_by(Update.id))
    return [(row.push_status, row.push_attempts, _plain(json.dumps(row.push_answer, sort_keys=True), row.id_order)) for row in rows]


def _plain(answer: str, id_order: int) -> str:
    answer = answer.replace(str(id_order), "ORDER")
    return re.sub(r'(customer_thread |"order_carrier": )\d+', r"\1N", answer)


def test_batches_push_what_one_order_at_a_time_pushes(sync, warehouse, clock, shop):
    one_by_one, batched = _two_sets(sync, warehouse, shop)
    shop.reset_log()
    assert push(sync, client_for(shop), batch=1, max_orders=len(one_by_one)).orders == len(one_by_one)
    first = [(r["method"], r["resource"]) for r in shop.requests]
    shop.reset_log()
    assert push(sync, client_for(shop), batch=8).orders == len(batched)
    then = [(r["method"], r["resource"]) for r in shop.requests]
    # The same writes, in the same order; the batch's first reads of its orders are one request per batch.
    assert [call for call in then if call[0] != "GET"] == [call for call in first if call[0] != "GET"]
    for resource in ("orders", "order_carriers", "order_histories"):
        alone, together = first.count(("GET", resource)), then.count(("GET", resource))
        assert together < alone, resource
    assert _results(sync, batched) == _results(sync, one_by_one)
    assert not pending(sync)
