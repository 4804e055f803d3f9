"""The push benchmark: `updates` pending updates pushed to a simulated shop answering after `latency` seconds.

    python -m benchmarks.push --store postgresql+psycopg://postgres@127.0.0.1:5432/test --workers 16 --repeat 3
    python -m benchmarks.push --held 1000     # orders cancelled in the shop: what holding them, then judging them again, costs

The simulated shop runs in a process of its own (spawned), so its CPU is not the pusher's, as with a real shop;
the store is SQLite or PostgreSQL (in a schema of its own, made and dropped here).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import secrets
import statistics
import time
from contextlib import contextmanager

from benchmarks.bench import _rss_mb  # a phase's own peak RSS (VmHWM)

KEY = "B" * 32
FIRST_ID = 200000


# --- the shop, in its own process ----------------------------------------------------------------------------------


def _shop_process(connection) -> None:
    """Serve a simulated 8.1.5 shop; answer the parent's commands on `connection` until told to stop."""
    from tests.simulator import ShopSimulator

    sim = ShopSimulator(version="8.1.5", key=KEY).start()
    connection.send(sim.url)
    try:
        while True:
            command, *args = connection.recv()
            if command == "stop":
                return
            connection.send(_shop_command(sim, command, *args))
    finally:
        sim.stop()
        connection.close()


def _shop_command(sim, command: str, *args):
    if command == "add_orders":
        for id_order in args[0]:
            sim.add_order(id_order, current_state=args[1] if len(args) > 1 else 2)
        return len(args[0])
    if command == "writes":
        return sum(1 for request in sim.requests if request["method"] not in ("GET", "HEAD")) + len(sim.mails)
    if command == "latency":
        sim.latency = args[0]
        return None
    if command == "reset_log":
        sim.reset_log()
        return None
    if command == "check":
        used = resource.getrusage(resource.RUSAGE_SELF)
        return {"ordering_ok": _ordering_ok(sim, args[0]), "requests": len(sim.requests), "cpu_seconds": used.ru_utime + used.ru_stime}
    raise ValueError(f"unknown command {command!r}")


def _ordering_ok(sim, ids: list[int]) -> bool:
    """Order kept: every order ends in state 4, saw 4 exactly once, and never 3 after 4."""
    with sim.lock:
        seen: dict[int, list[int]] = {id_order: [] for id_order in ids}
        for row in sim.histories:
            if int(row["id_order"]) in seen:
                seen[int(row["id_order"])].append(int(row["id_order_state"]))
        current = {id_order: int(sim.orders[id_order]["current_state"]) for id_order in ids}
    return all(states.count(4) == 1 and current[id_order] == 4 and 3 not in states[states.index(4) :] for id_order, states in seen.items())


class _Shop:
    """The parent's handle on the shop process."""

    def __init__(self):
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_shop_process, args=(child,), name="push-bench-shop", daemon=True)
        self.process.start()
        child.close()
        self.url = self._answer(60)

    def _answer(self, timeout: float):
        if not self.connection.poll(timeout):
            raise RuntimeError("the simulated shop did not answer")
        return self.connection.recv()

    def __call__(self, command: str, *args):
        self.connection.send((command, *args))
        return self._answer(600)

    def stop(self) -> None:
        try:
            self.connection.send(("stop",))
        except OSError:
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


# --- the store ---------------------------------------------------------------------------------------------------


@contextmanager
def _store(store_url: str):
    """The store's URL to use: a PostgreSQL store gets a schema of its own, dropped afterwards."""
    if not store_url.startswith("postgresql"):
        yield store_url
        return
    from sqlalchemy import create_engine, text

    schema = f"bench_push_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(store_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in store_url else "?"
        yield f"{store_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def _seed(session, shop: _Shop, updates: int, shop_state: int = 2) -> tuple[list[int], int]:
    """Shipped shop orders in the shop (in `shop_state`) and the store, with `updates` pending updates; about one
    order in ten has two (a partial shipment, then the rest), so that the order they are pushed in is checked too."""
    from models import ShopOrder, Update, utcnow
    from sync.core.memory import OrderMemory
    from sync.store.memory import save_memory

    ids = [FIRST_ID + n for n in range(max(1, updates * 10 // 11))]
    shop("add_orders", ids, shop_state)
    now = utcnow()
    for id_order in ids:
        order = ShopOrder(order_key=str(id_order), id_order=id_order)
        save_memory(order, OrderMemory(stage="shipped", states_sent=(4,)))
        session.add(order)
    session.flush()
    made, twice = 0, updates - len(ids)  # orders with two updates, one in ten
    for n, id_order in enumerate(ids):
        numbers = [f"6A{id_order}1", f"6A{id_order}2"]
        steps = [("partially_shipped", 3, numbers[:1])] if n // 10 < twice and n % 10 == 0 else []
        for stage, state_id, tracking in [*steps, ("shipped", 4, numbers)]:
            session.add(
                Update(
                    order_key=str(id_order),
                    id_order=id_order,
                    stage=stage,
                    state_id=state_id,
                    tracking_numbers=tracking,
                    changes=["state", "stage", "tracking"],
                    created_at=now,
                )
            )
            made += 1
    session.commit()
    return ids, made


def measure_push(store_url: str, workers: int, latency: float, updates: int) -> dict:
    """Push `updates` state+tracking updates to a shop answering after `latency` seconds, `workers` orders at a time."""
    from sqlalchemy import create_engine, func, select
    from sqlalchemy.orm import Session

    from app import store_engine_options
    from models import Update, db
    from sync.prestashop.client import PrestaShopClient
    from sync.services.push import push_pending
    from sync.services.unit_of_work import UnitOfWork

    shop = _Shop()
    try:
        with _store(store_url) as url:
            engine = create_engine(url, **store_engine_options(url, workers))  # sized as the app sizes it
            try:
                db.metadata.create_all(engine)
                with Session(engine) as session:
                    ids, made = _seed(session, shop, updates)
                    shop("latency", latency)
                    shop("reset_log")
                    client = PrestaShopClient(shop.url, KEY, timeout=(5, 30))
                    cpu, started = time.process_time(), time.perf_counter()
                    report = push_pending(UnitOfWork(session), client, workers=workers, max_orders=10**9)
                    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
                    pushed = session.scalar(select(func.count()).select_from(Update).where(Update.push_status == "pushed"))
            finally:
                engine.dispose()
        check = shop("check", ids)
    finally:
        shop.stop()
    return {
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "updates": made,
        "pushed": pushed,
        "orders": len(ids),
        "requests": check["requests"],
        "shop_cpu_seconds": check["cpu_seconds"],  # the shop process's, seeding included
        "workers": workers,
        "latency_ms": latency * 1000,
        "ordering_ok": check["ordering_ok"],
        "report_error": report.error,
        "rss_mb": _rss_mb(),
    }


def measure_held(store_url: str, workers: int, latency: float, updates: int) -> dict:
    """`updates` updates of orders the shop holds cancelled (state 6): the pass that holds them, then a pass that
    judges them all again (their recheck time come): seconds and requests of each, and what reached the shop."""
    from sqlalchemy import create_engine, func, select, update
    from sqlalchemy.orm import Session

    from app import store_engine_options
    from models import Update, db
    from sync.prestashop.client import PrestaShopClient
    from sync.services.push import push_pending
    from sync.services.unit_of_work import UnitOfWork

    shop, passes = _Shop(), {}
    try:
        with _store(store_url) as url:
            engine = create_engine(url, **store_engine_options(url, workers))
            try:
                db.metadata.create_all(engine)
                with Session(engine) as session:
                    ids, made = _seed(session, shop, updates, shop_state=6)
                    shop("latency", latency)
                    client = PrestaShopClient(shop.url, KEY, timeout=(5, 30))
                    for name in ("hold", "recheck"):
                        shop("reset_log")
                        started = time.perf_counter()
                        report = push_pending(UnitOfWork(session), client, workers=workers, max_orders=10**9)
                        passes[name] = {"seconds": time.perf_counter() - started, "held": report.held, "requests": shop("check", ids)["requests"]}
                        passes[name]["writes_and_mails"] = shop("writes")
                        session.execute(update(Update).values(next_attempt_at=None))  # the recheck time has come
                        session.commit()
                    held = session.scalar(select(func.count()).select_from(Update).where(Update.push_status == "conflict"))
            finally:
                engine.dispose()
    finally:
        shop.stop()
    return {"updates": made, "orders": len(ids), "held_at_the_end": held, "workers": workers, "latency_ms": latency * 1000, **passes}


def _phase(arguments: tuple, queue) -> None:
    queue.put(measure_push(*arguments))


def _measured(store_url: str, workers: int, latency: float, updates: int) -> dict:
    """measure_push in a fresh spawned process: its RSS and its pools are its own."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_phase, args=((store_url, workers, latency, updates), queue))
    process.start()
    figures = queue.get(timeout=3600)
    process.join(60)
    return figures


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.push", description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--updates", type=int, default=459)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, interleaved; the medians are compared")
    parser.add_argument("--held", type=int, default=0, help="instead: this many updates of orders cancelled in the shop (conflicts)")
    args = parser.parse_args(argv)
    if args.held:
        figures = measure_held(args.store, args.workers, args.latency_ms / 1000, args.held)
        print(json.dumps({"held": figures}), flush=True)
        return figures
    runs: dict[str, list[dict]] = {"ours": [], "sequential": []}
    for _ in range(args.repeat):  # interleaved: a noisy neighbour slows both alike
        for name, workers in (("ours", args.workers), ("sequential", 1)):
            figures = _measured(args.store, workers, args.latency_ms / 1000, args.updates)
            runs[name].append(figures)
            print(json.dumps({name: figures}), flush=True)
    medians = {name: statistics.median(run["seconds"] for run in figures) for name, figures in runs.items()}
    result = {"runs": runs, "medians": medians, "speedup": medians["sequential"] / medians["ours"]}
    print(json.dumps({"medians": medians, "speedup": result["speedup"]}), flush=True)
    return result


if __name__ == "__main__":
    main()
