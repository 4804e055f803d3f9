"""Side-by-side benchmarks, measured in one run on the same data: `python -m benchmarks.bench` (or `make bench`).

Every measured phase runs in its own process (spawned), so its peak RSS is its own. The GesCom is built the way a
real Sage base is (sync.gescom.demo.schema: Sage's indexes only, computed shadow columns, case-insensitive text),
on SQLite by default or on PostgreSQL over TCP (`--gescom-url`), where PostgreSQL's own counters tell how many
sequential scans of F_DOCLIGNE each run made. Runs use the production strategy (RunConfig's defaults): new rows by
their cbMarq, the re-read of open orders, the cbModification scan at most hourly.

Figures are printed as one table, each target of the performance issue met or missed, and written to
benchmarks/results/latest.json; `--plot` draws run time against database size.
"""

from __future__ import annotations

import argparse
import gc
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
    """This process's peak RSS. Linux's VmHWM belongs to the process's own memory since its exec; ru_maxrss does
    not: a spawned child starts from its parent's peak (the bench's parent holds the generated orders), which had
    made every phase look as big as the parent."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _counted(store_url: str, gescom_url: str, captured: list | None = None):
    """The store engine, GesCom (its reflection done: start-up work, not a run's) and the statements sent to each,
    counted from now on; the SELECTs sent to GesCom kept in `captured` too (for the floor) when given."""
    from sqlalchemy import create_engine, event

    from sync.gescom.adapter import GesCom

    store, gescom_engine = create_engine(store_url), create_engine(gescom_url)
    gescom = GesCom(gescom_engine)
    gescom.tables, gescom.catalog  # noqa: B018
    gescom.schema()
    counts = {"gescom": 0, "store": 0}

    def before(conn, cursor, statement, parameters, context, executemany):
        counts["gescom"] += 1
        if captured is not None and statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    event.listen(gescom_engine, "before_cursor_execute", before)
    event.listen(store, "before_cursor_execute", lambda *a: counts.__setitem__("store", counts["store"] + 1))
    return store, gescom, counts


def _print_progress(label: str):
    """A progress line every tenth of the way, as the CLI's bar would move (the bench's output is a log)."""
    shown = [-1]

    def progress(done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth != shown[0]:
            shown[0] = tenth
            print(f"[bench]     {label}: {done:,} / {total:,} shop orders", flush=True)

    return progress


def _run(store_url: str, gescom_url: str, full: bool = False, capture: bool = False) -> dict:
    """One run with the production strategy (RunConfig's defaults; the first run looks back ten years)."""
    from sqlalchemy.orm import Session

    from sync.services.run_config import RunConfig
    from sync.services.runs import run_sync
    from sync.services.unit_of_work import UnitOfWork

    captured = [] if capture else None
    store, gescom, counts = _counted(store_url, gescom_url, captured)
    config = RunConfig(initial_lookback=timedelta(days=3650))
    progress = _print_progress("full run") if full else None
    with Session(store) as session:
        started = time.perf_counter()
        cpu = time.process_time()
        result = run_sync(UnitOfWork(session), gescom, full=full, config=config, progress=progress)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        run = result.run
        assert run.status == "succeeded", run.error
        figures = {
            "run_id": run.id,
            "seconds": elapsed,
            "cpu_seconds": cpu,
            "orders_checked": run.orders_checked,
            "updates": run.updates_created,
            "modified_scan": run.modified_scan,
            "gescom_statements": counts["gescom"],
            "store_statements": counts["store"],
            "rss_mb": _rss_mb(),
        }
    if captured is not None:
        figures["statements"] = captured
    return figures


def _quiet(store_url: str, gescom_url: str, repeat: int = 5) -> dict:
    """Runs with nothing changed, one after another in one process, as the scheduler makes them: the first pays
    for compiling the statements (`cold`), the others are what a run costs every minute."""
    from sqlalchemy.orm import Session

    from sync.services.run_config import RunConfig
    from sync.services.runs import run_sync
    from sync.services.unit_of_work import UnitOfWork

    store, gescom, counts = _counted(store_url, gescom_url)
    times, statements = [], []
    for _ in range(repeat + 1):
        counts.update(gescom=0, store=0)
        with Session(store) as session:
            started = time.perf_counter()
            run = run_sync(UnitOfWork(session), gescom, config=RunConfig()).run
            times.append(time.perf_counter() - started)
            assert run.status == "succeeded" and run.orders_checked == 0, (run.status, run.error, run.orders_checked)
        statements.append((counts["gescom"], counts["store"]))
    return {
        "seconds": statistics.median(times[1:]),
        "cold_seconds": times[0],
        "all_seconds": times[1:],
        "gescom_statements": statements[-1][0],
        "store_statements": statements[-1][1],
        "rss_mb": _rss_mb(),
    }


def _floor(gescom_url: str, statements: list, repeat: int = 3) -> dict:
    """The bare SQL of a run: exactly the SELECTs it sent to GesCom, replayed through the driver's cursor and
    fetched, with nothing else (no conversion, no judging, no store). The best of `repeat`, warm."""
    from sqlalchemy import create_engine

    engine = create_engine(gescom_url)
    times, rows = [], 0
    for _ in range(repeat):
        gc.collect()  # not on the floor's clock: a collection landing in one fetch doubled its time
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            started = time.perf_counter()
            rows = 0
            for statement, parameters in statements:
                cursor.execute(statement, parameters)
                rows += len(cursor.fetchall())
            times.append(time.perf_counter() - started)
            connection.rollback()
        finally:
            connection.close()
    return {"seconds": min(times), "all_seconds": times, "statements": len(statements), "rows": rows, "rss_mb": _rss_mb()}


def _baseline(store_url: str, gescom_url: str) -> dict:
    """A straightforward per-order connector: for every shop order it follows, one indexed chain query (the
    lines whose order is its BC, by IDL_PIECECOM, or of the BC itself, by IDL_PIECE, each with its header by
    IDO_TPIECE), then the same stage logic. The BC numbers come from the store, as such a connector keeps them."""
    from sqlalchemy import String, and_, bindparam, create_engine, or_, select

    from models import OrderPiece, ShopOrder
    from sync.core.stages import Chain, Document, Line, stage_of
    from sync.gescom.adapter import GesCom

    gescom = GesCom(create_engine(gescom_url))
    header, line = gescom.tables["F_DOCENTETE"], gescom.tables["F_DOCLIGNE"]
    by_bc, by_piece = gescom.catalog.shadow("F_DOCLIGNE", "DL_PieceBC"), gescom.catalog.shadow("F_DOCLIGNE", "DO_Piece")
    bc = bindparam("bc", type_=String())
    statement = (
        select(line.c.DO_Type, line.c.DO_Piece, line.c.AR_Ref, line.c.DL_Qte, line.c.DL_PieceBC, header.c.DO_Date)
        .select_from(
            line.join(
                header, and_(header.c.DO_Domaine == line.c.DO_Domaine, header.c.DO_Type == line.c.DO_Type, header.c.cbDO_Piece == line.c.cbDO_Piece)
            )
        )
        .where(
            or_(
                line.c.cbDL_PieceBC == by_bc.parameter.converted(bc),
                and_(line.c.DO_Domaine == 0, line.c.DO_Type == 1, line.c.cbDO_Piece == by_piece.parameter.converted(bc)),
            )
        )
    )
    with create_engine(store_url).connect() as conn:
        known = conn.execute(select(ShopOrder.order_key, ShopOrder.stage, OrderPiece.piece).join(OrderPiece)).all()
    changed = 0
    with gescom.engine.connect() as conn:
        started = time.perf_counter()
        for _key, stage, piece in known:
            rows = conn.execute(statement, {"bc": piece}).all()
            chain = Chain(
                documents=list({(t, p): Document(doc_type=t, piece=p) for t, p, *_ in rows}.values()),
                lines=[Line(doc_type=t, piece=p, sku=s or "", quantity=q, origin_piece=o or "") for t, p, s, q, o, _ in rows],
            )
            now = stage_of(chain)
            changed += int(now is not None and now.value != stage)
        elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "orders_checked": len(known), "stage_changes": changed, "gescom_statements": len(known), "rss_mb": _rss_mb()}


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


# --- the bases ----------------------------------------------------------------------------------------------------


class Base:
    """One generated GesCom and the store that follows it; on PostgreSQL, in a schema of its own (dropped at the end)."""

    def __init__(self, workdir: Path, name: str, gescom_url: str | None):
        self.store_url = f"sqlite:///{workdir / (name + '-store.db')}"
        self.server_url, self.schema = gescom_url, None
        if gescom_url:
            from sqlalchemy import create_engine, text

            self.schema = f"bench_{name}".replace("-", "_")
            self.admin = create_engine(gescom_url, isolation_level="AUTOCOMMIT")
            with self.admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
                conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            separator = "&" if "?" in gescom_url else "?"
            self.gescom_url = f"{gescom_url}{separator}options=-csearch_path%3D{self.schema}"
        else:
            self.gescom_url = f"sqlite:///{workdir / (name + '-gescom.db')}"

    def line_scans(self) -> int | None:
        """Sequential scans of F_DOCLIGNE so far (PostgreSQL's counters, once every backend has flushed them)."""
        if not self.schema:
            return None
        from benchmarks.access_paths import counters

        return counters(self.admin, self.schema).get("F_DOCLIGNE", (0, 0))[0]

    def measured(self, target, *args) -> dict:
        """A phase in its own process, with the sequential scans of F_DOCLIGNE it made."""
        before = self.line_scans()
        figures = in_process(target, *args)
        if before is not None:
            figures["line_seq_scans"] = self.line_scans() - before
        return figures

    def drop(self) -> None:
        if self.schema:
            from sqlalchemy import text

            with self.admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
            self.admin.dispose()


def prepare(workdir: Path, name: str, orders: int, changed: int, gescom_url: str | None) -> tuple[Base, dict]:
    """Build the base, follow every order once (the first run, a full one), then change C orders."""
    from sqlalchemy import create_engine

    from benchmarks.generate import build, change
    from models import db

    base = Base(workdir, name, gescom_url)
    engine = create_engine(base.gescom_url)
    started = time.perf_counter()
    built = build(engine, orders)
    generated = time.perf_counter() - started
    db.metadata.create_all(create_engine(base.store_url))
    first = base.measured(_run, base.store_url, base.gescom_url, True)
    changed_keys = change(engine, built, changed) if changed else []
    engine.dispose()
    return base, {
        "orders": orders,
        "header_rows": built.header_rows,
        "line_rows": built.line_rows,
        "generate_seconds": generated,
        "first_full_run": first,
        "changed_keys": changed_keys,
    }


def _detected(store_url: str, run_id: int, keys: list[str]) -> int:
    """How many of the changed shop orders the run stored an update for."""
    from sqlalchemy import create_engine, select

    from models import Update

    with create_engine(store_url).connect() as conn:
        updated = set(conn.scalars(select(Update.order_key).where(Update.run_id == run_id)))
    return len(updated & set(keys))


# --- the measures -------------------------------------------------------------------------------------------------


def _incremental_runs(args: argparse.Namespace, workdir: Path) -> tuple[list[dict], Base]:
    """Ours, the floor and the baseline on C changed orders, at each size; and the last size's base, for the feed."""
    runs = []
    for orders in [args.orders // 10, args.orders] if args.growth else [args.orders]:
        changed = max(1, args.changed * orders // args.orders)
        print(f"[bench] N={orders:,} C={changed:,}: generating, then the first run follows every order…", flush=True)
        base, built = prepare(workdir, f"n{orders}", orders, changed, args.gescom_url)
        print(f"[bench]   {built['line_rows']:,} lines, first run {built['first_full_run']['seconds']:.1f} s; ours (incremental)…", flush=True)
        far_away = bool(args.gescom_rtt_ms and base.schema)
        if far_away:  # the store as ours found it, for ours again at a distance
            shutil.copyfile(base.store_url.removeprefix("sqlite:///"), base.store_url.removeprefix("sqlite:///") + ".before")
        ours = base.measured(_run, base.store_url, base.gescom_url, False, True)
        statements = ours.pop("statements")
        ours["detected"] = _detected(base.store_url, ours["run_id"], built["changed_keys"])
        print(f"[bench]   {ours['seconds']:.2f} s; floor (the same {len(statements)} SELECTs, raw)…", flush=True)
        floor = in_process(_floor, base.gescom_url, statements)
        print("[bench]   baseline (one indexed chain query per shop order)…", flush=True)
        baseline = in_process(_baseline, base.store_url, base.gescom_url)
        far = _at_a_distance(base, args.gescom_rtt_ms, statements) if far_away else None
        print("[bench]   no-change run right after…", flush=True)
        quiet = base.measured(_run, base.store_url, base.gescom_url)
        runs.append(
            {
                "orders": orders,
                "changed": changed,
                "lines": built["line_rows"],
                "headers": built["header_rows"],
                "generate_seconds": built["generate_seconds"],
                "first_full_run": built["first_full_run"],
                "ours": ours,
                "floor": floor,
                "baseline": baseline,
                "no_change": quiet,
                "far": far,
                "ours_vs_floor": ours["seconds"] / floor["seconds"] if floor["seconds"] else None,
                "baseline_vs_ours": baseline["seconds"] / ours["seconds"] if ours["seconds"] else None,
                "statement_budget": math.ceil(changed / 1000) * 10,
            }
        )
        if orders != args.orders:
            base.drop()
    return runs, base


def _at_a_distance(base: Base, rtt_ms: float, statements: list) -> dict:
    """Ours (on the store as it was before ours), the floor and the per-order connector again, with GesCom's answers
    `rtt_ms` away (benchmarks.latency_proxy), as a SQL Server on the LAN is."""
    from sqlalchemy.engine import make_url

    print(f"[bench]   the same with GesCom {rtt_ms} ms away…", flush=True)
    url = make_url(base.server_url)
    proxy = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.latency_proxy", f"{url.host or '127.0.0.1'}:{url.port or 5432}", str(rtt_ms)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(proxy.stdout.readline())
        far_url = make_url(base.gescom_url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
        store_path = base.store_url.removeprefix("sqlite:///")
        shutil.copyfile(store_path + ".before", store_path + ".far")
        store_url = f"sqlite:///{store_path}.far"
        ours = in_process(_run, store_url, far_url)
        floor = in_process(_floor, far_url, statements)
        baseline = in_process(_baseline, store_url, far_url)
    finally:
        proxy.terminate()
        proxy.wait(10)
    return {
        "rtt_ms": rtt_ms,
        "ours": ours,
        "floor": floor,
        "baseline": baseline,
        "ours_vs_floor": ours["seconds"] / floor["seconds"],
        "baseline_vs_ours": baseline["seconds"] / ours["seconds"],
    }


def _no_change_runs(args: argparse.Namespace, workdir: Path) -> list[dict]:
    """Runs with nothing changed at each size in lines, after the first (full) run: the median of five in one process."""
    figures = []
    for lines in [int(x) for x in args.no_change_lines.split(",") if x.strip()]:
        orders = max(10, lines * 10 // 46)  # ≈ 4.6 lines per web order, with the counter sales
        print(f"[bench] no-change runs at ~{lines:,} lines ({orders:,} orders)…", flush=True)
        base, built = prepare(workdir, f"quiet{lines}", orders, 0, args.gescom_url)
        quiet = base.measured(_quiet, base.store_url, base.gescom_url)
        figures.append({"lines": built["line_rows"], "orders": orders, **quiet, "first_full_run": built["first_full_run"]})
        base.drop()
    return figures


def _push_figures(args: argparse.Namespace, workdir: Path) -> dict:
    """Push to a shop answering after latency_ms: our workers against one request at a time, on the store given."""
    from benchmarks.push import measure_push

    workers, updates = args.push_workers, args.push_updates
    stores = [args.push_store_url or f"sqlite:///{workdir / name}" for name in ("push-ours.db", "push-sequential.db")]
    print(f"[bench] push of {updates} updates, {args.latency_ms} ms per request: ours ({workers} workers) vs one at a time…", flush=True)
    ours = in_process(measure_push, stores[0], workers, args.latency_ms / 1000, updates)  # a PostgreSQL store: a schema each
    sequential = in_process(measure_push, stores[1], 1, args.latency_ms / 1000, updates)
    store = stores[0]
    return {
        "store": store.split(":", 1)[0].split("+")[0],
        "ours": ours,
        "sequential": sequential,
        "speedup": sequential["seconds"] / ours["seconds"] if ours["seconds"] else None,
    }


# --- the feed -----------------------------------------------------------------------------------------------------


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


# --- the targets of the performance issue, met or missed -----------------------------------------------------------


def _target(measure: str, target: str, measured: str, met: bool | None) -> dict:
    return {"measure": measure, "target": target, "measured": measured, "met": met}


def _run_targets(figures: dict) -> list[dict]:
    run = figures["runs"][-1]
    ours, n, c = run["ours"], run["orders"], run["changed"]
    full_budget = 15 * n / 100_000
    return [
        _target(
            f"incremental run, C = {c:,} in N = {n:,} ({run['lines']:,} lines)",
            "≤ 3 × the floor",
            f"{ours['seconds']:.2f} s = {run['ours_vs_floor']:.1f} × the floor ({run['floor']['seconds']:.3f} s); "
            f"{ours['detected']:,} of {c:,} detected",
            run["ours_vs_floor"] <= 3,
        ),
        _target(
            f"the same against a per-order connector (GesCom on {figures['machine']['gescom']})",
            "ours ≥ 20 × faster",
            f"{run['baseline']['seconds']:.2f} s = {run['baseline_vs_ours']:.1f} × ours",
            run["baseline_vs_ours"] >= 20,
        ),
        *_far_targets(run),
        _target(
            f"first full run, N = {n:,}",
            f"≤ {full_budget:.1f} s (15 s at N = 100,000)",
            f"{run['first_full_run']['seconds']:.1f} s, {run['first_full_run']['rss_mb']:.0f} MB",
            run["first_full_run"]["seconds"] <= full_budget,
        ),
        _target(
            "GesCom statements per run",
            f"≤ ⌈C / 1000⌉ × 10 = {run['statement_budget']}",
            f"{ours['gescom_statements']}",
            ours["gescom_statements"] <= run["statement_budget"],
        ),
    ]


def _far_targets(run: dict) -> list[dict]:
    far = run.get("far")
    if not far:
        return []
    return [
        _target(
            f"the per-order connector again, GesCom {far['rtt_ms']} ms away (a delaying proxy, as on a LAN)",
            "ours ≥ 20 × faster",
            f"{far['baseline']['seconds']:.1f} s = {far['baseline_vs_ours']:.1f} × ours ({far['ours']['seconds']:.2f} s, "
            f"{far['ours_vs_floor']:.1f} × its floor)",
            far["baseline_vs_ours"] >= 20,
        )
    ]


def _quiet_targets(figures: dict) -> list[dict]:
    quiet = sorted(figures["no_change"], key=lambda q: q["lines"])
    if not quiet:
        return []
    times = [q["seconds"] for q in quiet]
    scans = [q["line_seq_scans"] for q in quiet if q.get("line_seq_scans") is not None]
    sizes = ", ".join(f"{q['seconds'] * 1000:.1f} ms at {q['lines']:,}" for q in quiet)
    largest = quiet[-1]
    peak = max(largest["rss_mb"], largest["first_full_run"]["rss_mb"])
    smaller = [q for q in quiet[:-1] if q["lines"] * 20 >= largest["lines"]] or quiet[:1]  # about a tenth of the largest
    below = max(smaller[0]["rss_mb"], smaller[0]["first_full_run"]["rss_mb"])
    return [
        _target(
            "run with nothing changed",
            "flat (largest / smallest ≤ 1.3), ≤ 50 ms, 0 sequential scans of F_DOCLIGNE",
            f"{sizes}; ratio {max(times) / min(times):.2f}; sequential scans {sum(scans) if scans else 'not counted (SQLite)'}",
            max(times) / min(times) <= 1.3 and max(times) <= 0.05 and (not scans or sum(scans) == 0),
        ),
        _target(
            f"peak RSS of a run at {largest['lines']:,} lines (first run and no-change runs)",
            "≤ 200 MB, flat from a tenth of that size",
            f"{peak:.0f} MB (at {smaller[0]['lines']:,} lines: {below:.0f} MB)",
            peak <= 200 and peak / below <= 1.3,
        ),
    ]


def _delivery_targets(figures: dict) -> list[dict]:
    push, feed = figures["push"], figures["feed"]
    head, full = feed["at_head"], feed["full_page"]
    return [
        _target(
            f"push of {push['ours']['updates']} updates, {push['ours']['latency_ms']:.0f} ms per request, {push['store']} store",
            "≥ 8 × a sequential client, order kept",
            f"{push['ours']['seconds']:.2f} s vs {push['sequential']['seconds']:.2f} s = {push['speedup']:.1f} ×; "
            f"order kept: {push['ours']['ordering_ok']}",
            push["speedup"] >= 8 and push["ours"]["ordering_ok"],
        ),
        _target(
            "pull feed at the head of the cursor, under gunicorn",
            "≥ 1,000 requests/s, p99 ≤ 50 ms",
            f"{head['requests_per_second']:.0f} requests/s, p99 {head['p99_ms']:.1f} ms",
            head["requests_per_second"] >= 1000 and head["p99_ms"] <= 50,
        ),
        _target(
            "pull feed, full pages of 500",
            "≥ 50,000 updates/s",
            f"{full['requests_per_second'] * 500:,.0f} updates/s (p99 {full['p99_ms']:.0f} ms)",
            full["requests_per_second"] * 500 >= 50_000,
        ),
    ]


def targets(figures: dict) -> list[dict]:
    """Each target of the performance issue with what this run measured."""
    return _run_targets(figures) + _quiet_targets(figures) + _delivery_targets(figures)


def print_table(figures: dict) -> None:
    rows = [(t["measure"], t["target"], t["measured"], "met" if t["met"] else "MISSED") for t in figures["targets"]]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(("measure", "target", "measured"), widths, strict=True)) + "  result")
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  " + row[3])


def markdown_table(figures: dict) -> str:
    """The targets as the Markdown table docs/performance.md shows (`python -m benchmarks.bench --table FILE`)."""
    lines = ["| Measure | Target | Measured | |", "|---|---|---|---|"]
    for t in figures["targets"]:
        lines.append(f"| {t['measure']} | {t['target']} | {t['measured']} | {'met' if t['met'] else '**missed**'} |")
    return "\n".join(lines)


def plot(figures: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    quiet = sorted(figures["no_change"], key=lambda q: q["lines"])
    if quiet:
        ax.plot([q["lines"] for q in quiet], [q["seconds"] * 1000 for q in quiet], "o-", label="no-change run")
        ax.plot([q["lines"] for q in quiet], [q["first_full_run"]["seconds"] * 1000 for q in quiet], "s--", label="first run (every order)")
    runs = sorted(figures["runs"], key=lambda r: r["lines"])
    ax.plot([r["lines"] for r in runs], [r["ours"]["seconds"] * 1000 for r in runs], "^-", label="incremental run (C = N/10 changed)")
    ax.plot([r["lines"] for r in runs], [r["floor"]["seconds"] * 1000 for r in runs], "x-.", label="floor (its SQL, raw)")
    ax.plot([r["lines"] for r in runs], [r["baseline"]["seconds"] * 1000 for r in runs], "v:", label="per-order connector")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("GesCom lines (F_DOCLIGNE rows)")
    ax.set_ylabel("run time (ms)")
    ax.set_title(f"Run time vs database size (GesCom on {figures['machine']['gescom']})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


# --- the benchmark ------------------------------------------------------------------------------------------------


def _arguments(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Side-by-side benchmarks of the middleware, each target met or missed.")
    parser.add_argument("--orders", type=int, default=100_000, help="N web orders (about 4.6 lines each)")
    parser.add_argument("--changed", type=int, default=10_000, help="C orders changed since the last run")
    parser.add_argument("--no-change-lines", default="10000,100000,1000000", help="sizes (in lines) of the no-change runs")
    parser.add_argument("--growth", action="store_true", help="also measure the incremental run at N/10")
    parser.add_argument("--push-updates", type=int, default=459)
    parser.add_argument("--push-workers", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--feed-seconds", type=float, default=10.0)
    parser.add_argument("--feed-threads", type=int, default=8)
    parser.add_argument("--gescom-url", default=None, help="a PostgreSQL URL for the generated GesCom (default SQLite)")
    parser.add_argument("--gescom-rtt-ms", type=float, default=None, help="with --gescom-url: also measure with GesCom this far (ms)")
    parser.add_argument("--push-store-url", default=None, help="the push's store (default: --gescom-url's server if given, else SQLite)")
    parser.add_argument("--output", default=str(RESULTS / "latest.json"))
    parser.add_argument("--plot", default=None, help="write a PNG plot of run time vs database size here")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--table", default=None, help="print the targets of a results file as a Markdown table, and stop")
    args = parser.parse_args(argv)
    if args.push_store_url is None and args.gescom_url:
        args.push_store_url = args.gescom_url
    return args


def main(argv=None) -> dict:
    args = _arguments(argv)
    if args.table:
        figures = json.loads(Path(args.table).read_text())
        print(markdown_table(figures))
        return figures
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
        "parameters": vars(args) | {"workdir": None, "gescom_url": bool(args.gescom_url), "push_store_url": bool(args.push_store_url)},
        "started": datetime.now().isoformat(timespec="seconds"),
    }
    figures["runs"], base = _incremental_runs(args, workdir)
    try:
        figures["no_change"] = _no_change_runs(args, workdir)
        figures["push"] = _push_figures(args, workdir)
        print(f"[bench] feed under gunicorn (2 workers), {args.feed_threads} connections, {args.feed_seconds} s…", flush=True)
        figures["feed"] = feed(base.store_url, args.feed_seconds, args.feed_threads)
    finally:
        base.drop()
    figures["finished"] = datetime.now().isoformat(timespec="seconds")
    figures["targets"] = targets(figures)

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(figures, indent=2, default=str))
    print_table(figures)
    if args.plot:
        plot(figures, Path(args.plot))
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
