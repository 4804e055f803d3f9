"""What telling shops apart costs a run: the same generated GesCom followed by one shop, then by two shops told
apart by the numbering series (DO_Souche), each with its own store.

    python -m benchmarks.shops --orders 20000 --changed 2000

About 30 % of the orders (their documents, all of them) are put in souche 1; with two shops, they are shop `b2b`'s.
Each configuration makes its first (full) run, then an incremental run after `changed` orders moved on, then a run
with nothing changed. Both configurations read the same base, one after the other, each in a process of its own.
GesCom is SQLite (the default) or PostgreSQL (`--gescom-url`, in a schema of its own, dropped afterwards).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

from benchmarks.bench import Base, in_process

B2B_SHARE = 3  # in ten orders


def _follow(store_url: str, gescom_url: str, shops: bool, full: bool) -> dict:
    """One run in this process; the store gets its shops first when it has none yet."""
    from datetime import timedelta

    from sqlalchemy.orm import Session

    from benchmarks.bench import _counted
    from models import ShopOrder
    from sync.services.run_config import RunConfig
    from sync.services.runs import run_sync
    from sync.services.unit_of_work import UnitOfWork
    from sync.store.shops import create_shop, list_shops, update_shop

    store, gescom, counts = _counted(store_url, gescom_url, None)
    with Session(store) as session:
        if shops and len(list_shops(session)) == 1:
            update_shop(session, "default", {"rule": {"kind": "souche", "values": [0]}})
            create_shop(session, {"code": "b2b", "name": "Boutique pro", "rule": {"kind": "souche", "values": [1]}})
            session.commit()
        started, cpu = time.perf_counter(), time.process_time()
        result = run_sync(UnitOfWork(session), gescom, full=full, config=RunConfig(initial_lookback=timedelta(days=3650)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        run = result.run
        assert run.status == "succeeded", run.error
        per_shop = dict(session.execute(select(ShopOrder.shop_id, func.count()).group_by(ShopOrder.shop_id)).all())
        return {
            "seconds": round(elapsed, 3),
            "cpu_seconds": round(cpu, 3),
            "orders_checked": run.orders_checked,
            "updates": run.updates_created,
            "documents_unclaimed": run.documents_unclaimed,
            "gescom_statements": counts["gescom"],
            "shop_orders_by_shop": {str(shop): count for shop, count in sorted(per_shop.items())},
        }


def create_all(url: str) -> None:
    from models import db

    engine = create_engine(url)
    db.metadata.create_all(engine)
    engine.dispose()


def _split_souches(engine) -> None:
    """Three orders in ten, every document carrying their link value, go to souche 1 (as a second shop's would)."""
    with engine.begin() as conn:
        conn.execute(text('UPDATE "F_DOCENTETE" SET "DO_Souche" = 0'))
        conn.execute(text(f"""UPDATE "F_DOCENTETE" SET "DO_Souche" = 1 WHERE "DO_NoWeb" <> '' AND CAST("DO_NoWeb" AS INTEGER) % 10 < {B2B_SHARE}"""))


def measure(orders: int, changed: int, gescom_url: str | None, workdir: Path) -> dict:
    from benchmarks.generate import build, change

    base = Base(workdir, f"shops{orders}", gescom_url)
    engine = create_engine(base.gescom_url)
    try:
        built = build(engine, orders)
        _split_souches(engine)
        stores = {"one_shop": f"sqlite:///{workdir / 'one.db'}", "two_shops": f"sqlite:///{workdir / 'two.db'}"}
        for url in stores.values():
            create_all(url)
        phases: dict[str, dict] = {}
        for name, url in stores.items():
            phases[name] = {"first_full_run": in_process(_follow, url, base.gescom_url, name == "two_shops", True)}
        change(engine, built, changed)
        _split_souches(engine)  # the new documents too
        for phase in ("incremental", "no_change"):
            for name, url in stores.items():
                phases[name][phase] = in_process(_follow, url, base.gescom_url, name == "two_shops", False)
        return {"orders": orders, "changed": changed, "header_rows": built.header_rows, "line_rows": built.line_rows, "phases": phases}
    finally:
        engine.dispose()
        base.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20000)
    parser.add_argument("--changed", type=int, default=2000)
    parser.add_argument("--gescom-url", default=None, help="a PostgreSQL URL for the generated GesCom (default SQLite)")
    parser.add_argument("--json", help="write the figures to this file too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        result = measure(args.orders, args.changed, args.gescom_url, Path(folder))
    print(f"{result['orders']:,} web orders ({result['line_rows']:,} lines), {result['changed']:,} changed; three in ten in souche 1")
    print(
        f"{'phase':<20} {'one shop s':>11} {'two shops s':>12} {'ratio':>6} {'checked (1 / 2)':>18} {'updates (1 / 2)':>18} "
        f"{'statements (1 / 2)':>19}"
    )
    one, two = result["phases"]["one_shop"], result["phases"]["two_shops"]
    for phase in ("first_full_run", "incremental", "no_change"):
        a, b = one[phase], two[phase]
        ratio = b["seconds"] / a["seconds"] if a["seconds"] else float("nan")
        print(
            f"{phase:<20} {a['seconds']:>11.2f} {b['seconds']:>12.2f} {ratio:>6.2f} "
            f"{a['orders_checked']:>8} / {b['orders_checked']:<8} {a['updates']:>8} / {b['updates']:<8} "
            f"{a['gescom_statements']:>8} / {b['gescom_statements']:<8}"
        )
    print("shop orders by shop id:", one["incremental"]["shop_orders_by_shop"], "then", two["incremental"]["shop_orders_by_shop"])
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
