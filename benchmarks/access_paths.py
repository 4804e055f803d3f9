"""Which access paths our runs take on a GesCom built like a real Sage base, counted by PostgreSQL itself.

On a base with only Sage's indexes (sync.gescom.demo.schema), ANALYZEd, it times and counts the sequential and index
scans of F_DOCLIGNE and F_DOCENTETE (pg_stat_user_tables) around: the first run, a run with nothing changed,
an incremental run after `changed` orders moved on, and a run where the safety-net scan is due.

    python -m benchmarks.access_paths --orders 11000 --changed 300     (about 50,000 lines)

Needs PostgreSQL (TEST_POSTGRES_URL, default postgres@127.0.0.1:5432/test); works in a schema of its own,
dropped afterwards. The store is SQLite in a temporary folder: only GesCom's counters matter here.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import timedelta
from functools import partial

from sqlalchemy import create_engine, text, update
from sqlalchemy.orm import Session

from sync.services.unit_of_work import UnitOfWork

TABLES = ("F_DOCLIGNE", "F_DOCENTETE")
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@dataclass
class Phase:
    name: str
    seconds: float
    seq_scans: dict[str, int]
    index_scans: dict[str, int]
    orders_checked: int
    updates_created: int
    modified_scan: bool


def counters(admin, schema: str) -> dict[str, tuple[int, int]]:
    """(seq_scan, idx_scan) per table, once PostgreSQL has flushed every backend's pending counts."""
    last = None
    for _ in range(50):  # a closed backend flushes its counts as it exits: wait until they stop moving
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_stat_clear_snapshot()"))
            rows = conn.execute(
                text("SELECT relname, seq_scan, COALESCE(idx_scan, 0) FROM pg_stat_user_tables WHERE schemaname = :s AND relname = ANY(:t)"),
                {"s": schema, "t": list(TABLES)},
            ).all()
        now = {name: (int(seq), int(idx)) for name, seq, idx in rows}
        if now == last:
            return now
        last = now
        time.sleep(0.2)
    return last or {}


def _phase(session, engine, admin, schema: str, config, phases: list[Phase], name: str, **options):
    """One run on the base, with PostgreSQL's scan counters read around it (appended to `phases`)."""
    from sync.gescom.adapter import GesCom
    from sync.services.runs import run_sync

    gescom = GesCom(engine)
    gescom.tables, gescom.catalog  # start-up work, not a run's  # noqa: B018
    engine.dispose()
    before = counters(admin, schema)
    started = time.perf_counter()
    run = run_sync(UnitOfWork(session), gescom, config=config, **options).run
    seconds = time.perf_counter() - started
    assert run.status == "succeeded", run.error
    engine.dispose()  # the backends exit and flush their counts
    after = counters(admin, schema)
    scans = {t: after[t][0] - before[t][0] for t in TABLES}
    index_scans = {t: after[t][1] - before[t][1] for t in TABLES}
    phases.append(Phase(name, round(seconds, 3), scans, index_scans, run.orders_checked, run.updates_created, run.modified_scan))
    return run


def measure(orders: int, changed: int, url: str = PG_URL) -> dict:
    from benchmarks.generate import build, change
    from models import SyncRun, db
    from sync.services.run_config import RunConfig

    schema = f"paths_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    workdir = tempfile.mkdtemp(prefix="access-paths-")
    store = create_engine(f"sqlite:///{workdir}/store.db")
    db.metadata.create_all(store)
    phases: list[Phase] = []
    try:
        built = build(engine, orders)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        config = RunConfig(initial_lookback=timedelta(days=3650), full_scan_interval=timedelta(hours=1))
        with Session(store) as session:
            phase = partial(_phase, session, engine, admin, schema, config, phases)
            phase("first run (looks back: scans once)")
            phase("nothing changed")
            moved = change(engine, built, changed)
            phase(f"{len(moved)} orders moved on")
            phase("nothing changed, again")
            last = session.query(SyncRun).order_by(SyncRun.id.desc()).first()
            session.execute(update(SyncRun).where(SyncRun.id == last.id).values(watermark_modified=last.watermark_modified - timedelta(hours=2)))
            session.commit()
            phase("safety-net scan due")
        with engine.connect() as conn:
            lines = conn.execute(text('SELECT count(*) FROM "F_DOCLIGNE"')).scalar()
            headers = conn.execute(text('SELECT count(*) FROM "F_DOCENTETE"')).scalar()
        return {"orders": orders, "lines": lines, "headers": headers, "changed": changed, "phases": [asdict(p) for p in phases]}
    finally:
        engine.dispose()
        store.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=11000)
    parser.add_argument("--changed", type=int, default=300)
    parser.add_argument("--json", help="write the figures to this file too")
    args = parser.parse_args()
    result = measure(args.orders, args.changed)
    print(f"{result['lines']} lines, {result['headers']} headers, {args.orders} web orders")
    print(f"{'phase':<40} {'s':>7} {'seq F_DOCLIGNE':>15} {'seq F_DOCENTETE':>16} {'idx F_DOCLIGNE':>15} {'checked':>8} {'updates':>8} scan")
    for p in result["phases"]:
        print(
            f"{p['name']:<40} {p['seconds']:>7.3f} {p['seq_scans']['F_DOCLIGNE']:>15} {p['seq_scans']['F_DOCENTETE']:>16} "
            f"{p['index_scans']['F_DOCLIGNE']:>15} {p['orders_checked']:>8} {p['updates_created']:>8} {p['modified_scan']}"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
