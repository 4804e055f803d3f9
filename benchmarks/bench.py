"""Side-by-side benchmarks, measured in one run on the same data: `python -m benchmarks.bench` (or `make bench`).

Every measured phase runs in its own process (spawned), so its peak RSS is its own. Figures are printed as one
table and written to benchmarks/results/latest.json; `--plot` draws run time against database size.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


# --- helpers running inside phase processes ---------------------------------------------------------------------


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _engines(store_url: str, gescom_url: str):
    from sqlalchemy import create_engine, event

    store = create_engine(store_url)
    gescom = create_engine(gescom_url)
    counts = {"gescom": 0, "store": 0}
    event.listen(gescom, "before_cursor_execute", lambda *a: counts.__setitem__("gescom", counts["gescom"] + 1))
    event.listen(store, "before_cursor_execute", lambda *a: counts.__setitem__("store", counts["store"] + 1))
    return store, gescom, counts


def _run(store_url: str, gescom_url: str, full: bool = False, recheck_hours: float = 1.0) -> dict:
    from sqlalchemy.orm import Session

    from sync.gescom.adapter import GesCom
    from sync.services.run_config import RunConfig
    from sync.services.runs import run_sync
    from sync.services.unit_of_work import UnitOfWork

    store, gescom_engine, counts = _engines(store_url, gescom_url)
    gescom = GesCom(gescom_engine)
    gescom.tables  # reflection is start-up work, not a run's  # noqa: B018
    gescom.schema()
    counts.update(gescom=0, store=0)
    # The safety-net scan every run, so every changed order is detected as before (the faithful-schema
    # strategy, new rows + re-read of open orders, is measured by its own test and by the performance issue).
    config = RunConfig(recheck_age=timedelta(hours=recheck_hours), initial_lookback=timedelta(days=3650), full_scan_interval=timedelta(0))
    with Session(store) as session:
        started = time.perf_counter()
        result = run_sync(UnitOfWork(session), gescom, full=full, config=config)
        elapsed = time.perf_counter() - started
        run = result.run
        assert run.status == "succeeded", run.error
        return {
            "seconds": elapsed,
            "orders_checked": run.orders_checked,
            "updates": run.updates_created,
            "gescom_statements": counts["gescom"],
            "store_statements": counts["store"],
            "rss_mb": _rss_mb(),
        }


def _floor(gescom_url: str, since: str) -> dict:
    """The bare SQL reading exactly the changed headers and lines, with the columns a run needs."""
    from sqlalchemy import MetaData, Table, create_engine, select

    engine = create_engine(gescom_url)
    metadata = MetaData()
    header = Table("F_DOCENTETE", metadata, autoload_with=engine)
    line = Table("F_DOCLIGNE", metadata, autoload_with=engine)
    moment = datetime.fromisoformat(since)
    h_cols = [header.c[n] for n in ("DO_Type", "DO_Piece", "DO_Date", "DO_NoWeb", "DO_Coord01", "DO_Expedit", "cbMarq")]
    l_cols = [line.c[n] for n in ("DO_Type", "DO_Piece", "DL_PieceBC", "DL_PieceBL", "AR_Ref", "DL_Design", "DL_Qte", "DL_NoColis", "cbMarq")]
    with engine.connect() as conn:
        started = time.perf_counter()
        headers = conn.execute(select(*h_cols).where(header.c.DO_Domaine == 0, header.c.cbModification >= moment)).all()
        lines = conn.execute(select(*l_cols).where(line.c.DO_Domaine == 0, line.c.cbModification >= moment)).all()
        elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "headers": len(headers), "lines": len(lines), "rss_mb": _rss_mb()}


def _baseline(store_url: str, gescom_url: str) -> dict:
    """A straightforward connector: for every known shop order, read its chain (two queries), judge its stage."""
    from sqlalchemy import MetaData, Table, create_engine, select

    from models import OrderPiece, ShopOrder
    from sync.core.stages import Chain, Document, Line, stage_of

    store = create_engine(store_url)
    engine = create_engine(gescom_url)
    metadata = MetaData()
    header = Table("F_DOCENTETE", metadata, autoload_with=engine)
    line = Table("F_DOCLIGNE", metadata, autoload_with=engine)
    with store.connect() as conn:
        known = conn.execute(select(ShopOrder.order_key, ShopOrder.stage)).all()
        pieces = dict(conn.execute(select(ShopOrder.order_key, OrderPiece.piece).join(OrderPiece)).all())
    changed = 0
    statements = 0
    with engine.connect() as conn:
        started = time.perf_counter()
        for key, stage in known:
            docs = conn.execute(
                select(header.c.DO_Type, header.c.DO_Piece, header.c.DO_Date).where(header.c.DO_Domaine == 0, header.c.DO_NoWeb == key)
            ).all()
            bc = pieces.get(key) or next((p for t, p, _ in docs if t == 1), None)
            rows = []
            if bc:  # two indexed look-ups (IDL_PIECECOM, IDL_PIECE): a fair connector, not a scan per order
                columns = (line.c.DO_Type, line.c.DO_Piece, line.c.AR_Ref, line.c.DL_Qte, line.c.DL_PieceBC)
                rows = conn.execute(select(*columns).where(line.c.DL_PieceBC == bc)).all()
                rows += conn.execute(select(*columns).where(line.c.DO_Domaine == 0, line.c.DO_Type == 1, line.c.DO_Piece == bc)).all()
            statements += 1 + 2 * bool(bc)
            chain = Chain(
                documents=[Document(doc_type=t, piece=p) for t, p, _ in docs],
                lines=[Line(doc_type=t, piece=p, sku=s or "", quantity=q, origin_piece=o or "") for t, p, s, q, o in rows],
            )
            now = stage_of(chain)
            changed += int(now is not None and now.value != stage)
        elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "orders_checked": len(known), "stage_changes": changed, "gescom_statements": statements, "rss_mb": _rss_mb()}


def _seed_push(session, sim, updates: int) -> tuple[int, int]:
    """Shipped shop orders in the simulator and the store, with `updates` pending updates; about one order in ten
    has two (a partial shipment, then the rest), so that the order they are pushed in is checked too."""
    from models import ShopOrder, Update, utcnow
    from sync.core.memory import OrderMemory
    from sync.store.memory import save_memory

    orders = max(1, updates * 10 // 11)
    now = utcnow()
    for n in range(orders):
        id_order = 200000 + n
        sim.add_order(id_order, current_state=2)
        order = ShopOrder(order_key=str(id_order), id_order=id_order)
        save_memory(order, OrderMemory(stage="shipped", states_sent=(4,)))
        session.add(order)
    session.flush()
    made = 0
    for n in range(orders):
        id_order = 200000 + n
        numbers = [f"6A{id_order}1", f"6A{id_order}2"]
        steps = [("partially_shipped", 3, numbers[:1])] if made < updates - orders and n % 10 == 0 else []
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
    return orders, made


def _push(store_url: str, workers: int, latency: float, updates: int) -> dict:
    """Push `updates` state+tracking updates to the simulator; `workers` orders at a time."""
    from sqlalchemy import create_engine, func, select
    from sqlalchemy.orm import Session

    from models import Update, db
    from sync.prestashop.client import PrestaShopClient
    from sync.services.push import push_pending
    from sync.services.unit_of_work import UnitOfWork
    from tests.simulator import ShopSimulator

    key = "B" * 32
    sim = ShopSimulator(version="8.1.5", key=key).start()
    try:
        engine = create_engine(store_url)
        db.metadata.create_all(engine)
        with Session(engine) as session:
            orders, made = _seed_push(session, sim, updates)
            sim.latency = latency
            sim.reset_log()
            client = PrestaShopClient(sim.url, key, timeout=(5, 30))
            started = time.perf_counter()
            report = push_pending(UnitOfWork(session), client, workers=workers, max_orders=10**9)
            elapsed = time.perf_counter() - started
            pushed = session.scalar(select(func.count()).select_from(Update).where(Update.push_status == "pushed"))
        # Order kept: every order ends in state 4, none saw 3 after 4, and each got exactly one 4.
        ordering_ok = all(
            [row["id_order_state"] for row in sim.histories if int(row["id_order"]) == 200000 + n].count(4) == 1
            and int(sim.orders[200000 + n]["current_state"]) == 4
            for n in range(orders)
        )
        return {
            "seconds": elapsed,
            "updates": made,
            "pushed": pushed,
            "orders": orders,
            "requests": len(sim.requests),
            "workers": workers,
            "latency_ms": latency * 1000,
            "ordering_ok": ordering_ok,
            "report_error": report.error,
            "rss_mb": _rss_mb(),
        }
    finally:
        sim.stop()


def _phase(target, args, queue):
    try:
        queue.put(("ok", target(*args)))
    except BaseException as error:  # reported to the parent with its type
        import traceback

        queue.put(("error", f"{error.__class__.__name__}: {error}\n{traceback.format_exc()}"))


def in_process(target, *args, timeout: float = 7200) -> dict:
    """Run a phase in a fresh (spawned) process; its figures and its own peak RSS come back."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_phase, args=(target, args, queue))
    process.start()
    status, value = queue.get(timeout=timeout)
    process.join(60)
    if status != "ok":
        raise RuntimeError(value)
    return value


# --- the benchmark ------------------------------------------------------------------------------------------------


def _urls(workdir: Path, name: str, gescom_url: str | None) -> tuple[str, str]:
    store = f"sqlite:///{workdir / (name + '-store.db')}"
    if gescom_url:
        from sqlalchemy import create_engine, text

        schema = f"bench_{name}".replace("-", "_")
        admin = create_engine(gescom_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in gescom_url else "?"
        return store, f"{gescom_url}{separator}options=-csearch_path%3D{schema}"
    return store, f"sqlite:///{workdir / (name + '-gescom.db')}"


def prepare(workdir: Path, name: str, orders: int, changed: int, gescom_url: str | None) -> dict:
    """Build the base, follow every order once (the previous run), then change C orders."""
    from sqlalchemy import create_engine

    from benchmarks.generate import build, change
    from models import db

    store_url, g_url = _urls(workdir, name, gescom_url)
    started = time.perf_counter()
    built = build(create_engine(g_url), orders)
    generated = time.perf_counter() - started
    db.metadata.create_all(create_engine(store_url))
    previous = in_process(_run, store_url, g_url, True)
    changed_keys = change(create_engine(g_url), built, changed) if changed else []
    return {
        "store_url": store_url,
        "gescom_url": g_url,
        "orders": orders,
        "header_rows": built.header_rows,
        "line_rows": built.line_rows,
        "generate_seconds": generated,
        "previous_full_run": previous,
        "changed": len(changed_keys),
        "since": (datetime.now() - timedelta(minutes=2)).replace(second=0, microsecond=0).isoformat(),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def feed(store_url: str, seconds: float, threads: int) -> dict:
    """GET /api/v1/updates?limit=500 under gunicorn (2 workers), from a loopback load generator."""
    import requests
    from sqlalchemy import create_engine, func, select
    from sqlalchemy.orm import Session

    from models import Update
    from sync.store.keys import create_key

    engine = create_engine(store_url)
    with Session(engine) as session:
        _, key = create_key(session, f"bench-{time.time_ns()}", "read")
        session.commit()
        last = session.scalar(select(func.max(Update.id))) or 0
    port = _free_port()
    scratch = tempfile.mkdtemp(prefix="bench-feed-")
    env = {
        **os.environ,
        "DATABASE_URL": store_url,
        "GESCOM_DATABASE_URL": f"sqlite:///{scratch}/none.db",
        "INSTANCE_PATH": scratch,
        "SYNC_SCHEDULER": "off",
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--access-logfile", "/dev/null", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/api/v1/updates"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(base.replace("/updates", "/health"), timeout=1).status_code in (200, 503):
                    break
            except requests.RequestException:
                time.sleep(0.2)
        results = {}
        for label, query in (("full_page", "?limit=500&after=0&include_acked=true"), ("at_head", f"?limit=500&after={last}")):
            if shutil.which("wrk"):
                results[label] = _wrk(base + query, key, seconds, threads)
            else:
                results[label] = _python_load(base + query, key, seconds, threads)
            results[label]["updates_per_page"] = 500 if label == "full_page" else 0
        return results
    finally:
        server.terminate()
        server.wait(20)
        shutil.rmtree(scratch, ignore_errors=True)


def _wrk(url: str, key: str, seconds: float, connections: int) -> dict:
    """wrk (C, from Debian) as the loopback load generator: it leaves the CPU to the server."""
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{max(1, int(seconds))}s", "--latency", "-H", f"Authorization: Bearer {key}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def latency(percent: str) -> float | None:
        for line in output.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == percent:
                value = parts[1]
                for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
                    if value.endswith(unit):
                        return float(value[: -len(unit)]) * factor
        return None

    rps = next((float(line.split()[1]) for line in output.splitlines() if line.startswith("Requests/sec:")), 0.0)
    total = next((int(line.split()[0]) for line in output.splitlines() if "requests in" in line), 0)
    non_2xx = next((int(line.split()[-1]) for line in output.splitlines() if "Non-2xx" in line), 0)
    return {"tool": "wrk", "requests": total, "requests_per_second": rps, "errors": non_2xx, "p50_ms": latency("50%"), "p99_ms": latency("99%")}


def _python_load(url: str, key: str, seconds: float, threads: int) -> dict:
    import requests

    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def load():
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {key}"
        mine = []
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            response = session.get(url, timeout=30)
            mine.append(time.perf_counter() - started)
            if response.status_code != 200:
                errors[0] += 1
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=load) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "tool": "python",
        "requests": len(latencies),
        "requests_per_second": len(latencies) / elapsed,
        "errors": errors[0],
        "p50_ms": statistics.median(latencies) * 1000 if latencies else None,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000 if latencies else None,
    }


def _arguments(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Side-by-side benchmarks of the middleware.")
    parser.add_argument("--orders", type=int, default=100_000, help="N web orders (about 5 lines each)")
    parser.add_argument("--changed", type=int, default=10_000, help="C orders changed since the last run")
    parser.add_argument("--no-change-lines", default="10000,100000,1000000", help="sizes (in lines) of the no-change runs")
    parser.add_argument("--growth", action="store_true", help="also measure at N/10 to show how figures grow")
    parser.add_argument("--push-updates", type=int, default=500)
    parser.add_argument("--push-workers", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--feed-seconds", type=float, default=10.0)
    parser.add_argument("--feed-threads", type=int, default=8)
    parser.add_argument("--gescom-url", default=None, help="a PostgreSQL URL for the generated GesCom (default SQLite)")
    parser.add_argument("--output", default=str(RESULTS / "latest.json"))
    parser.add_argument("--plot", default=None, help="write a PNG plot of run time vs database size here")
    parser.add_argument("--workdir", default=None)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = _arguments(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    figures: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "gescom": "postgresql" if args.gescom_url else "sqlite",
            "store": "sqlite",
        },
        "parameters": vars(args) | {"workdir": None},
        "started": datetime.now().isoformat(timespec="seconds"),
    }
    figures["runs"], feed_store = _incremental_runs(args, workdir)
    figures["no_change"] = _no_change_runs(args, workdir)
    figures["push"] = _push_figures(args, workdir)
    print(f"[bench] feed under gunicorn (2 workers), {args.feed_threads} client threads, {args.feed_seconds} s…", flush=True)
    figures["feed"] = feed(feed_store, args.feed_seconds, args.feed_threads)
    figures["finished"] = datetime.now().isoformat(timespec="seconds")

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(figures, indent=2, default=str))
    print_table(figures)
    if args.plot:
        plot(figures, Path(args.plot))
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


def _incremental_runs(args: argparse.Namespace, workdir: Path) -> tuple[list[dict], str]:
    """Ours, the floor and the baseline on C changed orders, at each size; and the last size's store, for the feed."""
    runs = []
    for orders in [args.orders // 10, args.orders] if args.growth else [args.orders]:
        changed = max(1, args.changed * orders // args.orders)
        print(f"[bench] N={orders} C={changed}: generating and following every order once…", flush=True)
        base = prepare(workdir, f"n{orders}", orders, changed, args.gescom_url)
        print(f"[bench]   {base['line_rows']} lines; ours…", flush=True)
        ours = in_process(_run, base["store_url"], base["gescom_url"])
        print("[bench]   floor…", flush=True)
        floor = in_process(_floor, base["gescom_url"], base["since"])
        print("[bench]   baseline (one chain query per known order)…", flush=True)
        baseline = in_process(_baseline, base["store_url"], base["gescom_url"])
        print("[bench]   no-change run right after…", flush=True)
        quiet = in_process(_run, base["store_url"], base["gescom_url"])
        runs.append(
            {
                "orders": orders,
                "changed": changed,
                "lines": base["line_rows"],
                "headers": base["header_rows"],
                "generate_seconds": base["generate_seconds"],
                "previous_full_run": base["previous_full_run"],
                "ours": ours,
                "floor": floor,
                "baseline": baseline,
                "no_change": quiet,
                "ours_vs_floor": ours["seconds"] / floor["seconds"] if floor["seconds"] else None,
                "baseline_vs_ours": baseline["seconds"] / ours["seconds"] if ours["seconds"] else None,
                "statement_budget": math.ceil(changed / 1000) * 10,
            }
        )
    return runs, base["store_url"]


def _no_change_runs(args: argparse.Namespace, workdir: Path) -> list[dict]:
    """The best of three runs with nothing changed, at each size in lines."""
    figures = []
    for lines in [int(x) for x in args.no_change_lines.split(",") if x.strip()]:
        orders = max(10, lines // 5)
        print(f"[bench] no-change run at ~{lines} lines ({orders} orders)…", flush=True)
        base = prepare(workdir, f"quiet{lines}", orders, 0, args.gescom_url)
        quiet = [in_process(_run, base["store_url"], base["gescom_url"]) for _ in range(3)]
        best = min(quiet, key=lambda r: r["seconds"])
        figures.append(
            {
                "lines": base["line_rows"],
                "orders": orders,
                "seconds": best["seconds"],
                "all_seconds": [r["seconds"] for r in quiet],
                "gescom_statements": best["gescom_statements"],
                "store_statements": best["store_statements"],
                "rss_mb": best["rss_mb"],
                "full_run_seconds": base["previous_full_run"]["seconds"],
            }
        )
    return figures


def _push_figures(args: argparse.Namespace, workdir: Path) -> dict:
    """Push to a shop answering after latency_ms: our workers against one request at a time."""
    workers, updates = args.push_workers, args.push_updates
    print(f"[bench] push of {updates} updates, {args.latency_ms} ms per request: ours ({workers} workers) vs one at a time…", flush=True)
    ours = in_process(_push, f"sqlite:///{workdir / 'push-ours.db'}", workers, args.latency_ms / 1000, updates)
    sequential = in_process(_push, f"sqlite:///{workdir / 'push-seq.db'}", 1, args.latency_ms / 1000, updates)
    return {"ours": ours, "sequential": sequential, "speedup": sequential["seconds"] / ours["seconds"] if ours["seconds"] else None}


def print_table(figures: dict) -> None:
    rows = []
    for run in figures["runs"]:
        n = run["orders"]
        rows += [
            (
                f"N={n} ours (incremental, C={run['changed']})",
                f"{run['ours']['seconds']:.3f} s",
                f"{run['ours']['gescom_statements']} GesCom stmts (budget {run['statement_budget']}), {run['ours']['rss_mb']:.0f} MB",
            ),
            (f"N={n} floor (bare SQL of the changes)", f"{run['floor']['seconds']:.3f} s", f"ours/floor = {run['ours_vs_floor']:.1f}×"),
            (f"N={n} baseline (per order)", f"{run['baseline']['seconds']:.3f} s", f"baseline/ours = {run['baseline_vs_ours']:.1f}×"),
            (f"N={n} no-change run", f"{run['no_change']['seconds'] * 1000:.1f} ms", f"{run['no_change']['gescom_statements']} GesCom stmts"),
            (f"N={n} full run (every order)", f"{run['previous_full_run']['seconds']:.2f} s", f"{run['previous_full_run']['rss_mb']:.0f} MB"),
        ]
    for quiet in figures["no_change"]:
        rows.append((f"no-change run at {quiet['lines']} lines", f"{quiet['seconds'] * 1000:.1f} ms", f"{quiet['rss_mb']:.0f} MB"))
    push = figures["push"]
    rows.append(("push ours", f"{push['ours']['seconds']:.2f} s", f"{push['ours']['updates']} updates, ordering ok: {push['ours']['ordering_ok']}"))
    rows.append(("push sequential", f"{push['sequential']['seconds']:.2f} s", f"speed-up {push['speedup']:.1f}×"))
    for label, result in figures["feed"].items():
        rows.append(
            (
                f"feed {label}",
                f"{result['requests_per_second']:.0f} req/s",
                f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, errors {result['errors']}",
            )
        )
    width = max(len(r[0]) for r in rows)
    print()
    for label, value, note in rows:
        print(f"{label.ljust(width)}  {value:>12}  {note}")


def plot(figures: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    quiet = sorted(figures["no_change"], key=lambda q: q["lines"])
    if quiet:
        ax.plot([q["lines"] for q in quiet], [q["seconds"] * 1000 for q in quiet], "o-", label="no-change run")
        ax.plot([q["lines"] for q in quiet], [q["full_run_seconds"] * 1000 for q in quiet], "s--", label="full run (every order)")
    runs = sorted(figures["runs"], key=lambda r: r["lines"])
    ax.plot([r["lines"] for r in runs], [r["ours"]["seconds"] * 1000 for r in runs], "^-", label="incremental run (C = N/10 changed)")
    ax.plot([r["lines"] for r in runs], [r["baseline"]["seconds"] * 1000 for r in runs], "v:", label="baseline (per order)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("GesCom lines (F_DOCLIGNE rows)")
    ax.set_ylabel("run time (ms)")
    ax.set_title("Run time vs database size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
