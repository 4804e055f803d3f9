"""Crash recovery: a push worker process SIGKILLed at random points, restarted until done.

Kill points: right after the shop applied a write and before the worker could store its result (a hook of
the simulator kills the worker at that instant: between the tracking write and the state write, after a
state write...), and at random moments. Whatever the seed: every update pushed, no history row or mail
twice, nothing lost. Figures are written to benchmarks/results/reliability.json when RELIABILITY_REPORT is set.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import select, update

from models import Update
from tests.simulator import ShopSimulator

ROOT = Path(__file__).resolve().parents[2]
KEY = "C" * 32
LINES = [("TSHIRT-M", "T-shirt M", 2), ("MUG", "Mug", 1)]
SEEDS = int(os.environ.get("CRASH_SEEDS", "6"))
ORDERS = 8


def _worker_env(store_db, sim) -> dict:
    env = {**os.environ, "STORE_URL": store_db.url, "SHOP_URL": sim.url, "SHOP_KEY": KEY, "PYTHONPATH": str(ROOT)}
    options = store_db.engine_options.get("connect_args", {}).get("options", "")
    if options.startswith("-csearch_path="):
        env["STORE_SEARCH_PATH"] = options.split("=", 1)[1]
    return env


def _prepare(sync, warehouse, clock, sim) -> list[int]:
    """Orders with two updates each: a partial delivery (state 3, tracking) then the rest (state 4, tracking)."""
    sync.settings(stage_states__partially_shipped=3, options__send_piece_number=True)
    ids = []
    for n in range(ORDERS):
        id_order = 8000 + n
        sim.add_order(id_order, current_state=2)
        piece = warehouse.create_order(str(id_order), LINES)
        warehouse.transform((1, piece), 3, take={"MUG": 1}, header={"DO_Coord01": f"6A{id_order}1"})
        ids.append(id_order)
    sync.run()
    for id_order in ids:
        clock.tick()
        warehouse.transform((1, warehouse.documents(str(id_order))[0][1]), 3, header={"DO_Coord01": f"6A{id_order}2"})
        sync.run()  # a run per order: the partial update is pushed, or not, independently of the rest
    return ids


def _pending(sync) -> int:
    sync.session.expire_all()
    return len([u for u in sync.session.scalars(select(Update)) if u.push_status == "pending"])


@pytest.mark.parametrize("seed", range(SEEDS))
def test_sigkill_anywhere_loses_nothing_and_repeats_nothing(sync, warehouse, clock, store_db, seed):
    rng = random.Random(seed)
    sim = ShopSimulator(version=rng.choice(["8.1.5", "1.7.8.11"]), key=KEY).start()
    try:
        ids = _prepare(sync, warehouse, clock, sim)
        sim.latency = 0.003
        env = _worker_env(store_db, sim)
        kills = {"after_write": 0, "random": 0}
        for attempt in range(40):
            if _pending(sync) == 0:
                break
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.reliability.worker"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            if attempt == 0:
                mode = "after_write"  # every seed kills at least once, right after a write the shop applied
            else:
                mode = rng.choice(["after_write", "after_write", "random", "none"]) if attempt < 30 else "none"
            timer = None
            if mode == "after_write":
                target, seen = rng.randint(1, 6), [0]

                def hook(entry, target=target, seen=seen, pid=process.pid):
                    seen[0] += 1
                    if seen[0] == target:
                        os.kill(pid, signal.SIGKILL)  # the shop applied the write; the worker never hears of it

                sim.after_write = hook
            elif mode == "random":
                timer = threading.Timer(rng.uniform(0.05, 0.5), lambda pid=process.pid: _kill(pid))
                timer.start()
            _, errors = process.communicate(timeout=120)
            sim.after_write = None
            if timer:
                timer.cancel()
            if process.returncode == -signal.SIGKILL:
                kills[mode] += 1
            else:
                assert process.returncode == 0, errors.decode()[-2000:]
            # What a restart finds: updates waiting for a retry are made due now (the test does not wait).
            sync.session.execute(update(Update).values(next_attempt_at=None))
            sync.session.commit()
        assert _pending(sync) == 0, "every update pushed"
        assert kills["after_write"] >= 1  # the crash really happened
        assert not sim.internal_errors
        for id_order in ids:
            states = [row["id_order_state"] for row in sim.histories if int(row["id_order"]) == id_order]
            assert states.count(4) == 1, (id_order, states)  # no duplicate history row
            assert states.count(3) <= 1
            assert states[-1] == 4 and int(sim.orders[id_order]["current_state"]) == 4  # never moved back to 3
            mails = [m for m in sim.mails if int(m["id_order"]) == id_order and m["kind"] == "state"]
            assert len(mails) == len({m["state_id"] for m in mails})  # no duplicate mail
            carrier = next(row for row in sim.order_carriers.values() if int(row["id_order"]) == id_order)
            assert carrier["tracking_number"] == f"6A{id_order}1 6A{id_order}2"  # nothing lost
            texts = [m["message"] for m in sim.messages if int(m["id_order"]) == id_order]
            assert len(texts) == len(set(texts))  # no message twice
        statuses = {u.push_status for u in sync.session.scalars(select(Update))}
        assert statuses == {"pushed"}
        if os.environ.get("RELIABILITY_REPORT"):
            _report({"seed": seed, "kills": kills, "orders": len(ids), "requests": len(sim.requests), "duplicates": 0, "lost": 0})
    finally:
        sim.stop()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _report(entry: dict) -> None:
    path = ROOT / "benchmarks" / "results" / "reliability.json"
    data = json.loads(path.read_text()) if path.exists() else {"crash_recovery": []}
    data.setdefault("crash_recovery", []).append(entry)
    path.write_text(json.dumps(data, indent=2))
