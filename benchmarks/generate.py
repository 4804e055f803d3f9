"""A large Sage-shaped GesCom, generated in bulk (the warehouse of sync.gescom.demo is too slow for 10^5 orders).

`build()` lays down N web orders (~5 lines each) as they stand at T0: history (invoiced, posted, grouped
invoices), shipped, partly shipped, in preparation, ordered. `change()` then transforms C of them the way
the warehouse would after the last run (partial and full BLs, PLs, invoices, grouped invoices, postings),
stamped after T0, with tracking numbers in Entête 1 and in N° colis.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import MetaData, Table, bindparam, delete, insert, update
from sqlalchemy.engine import Engine

from sync.gescom.demo.schema import create_gescom

SKUS = [f"ART-{n:04d}" for n in range(400)]
BATCH = 5000
FIRST_KEY = 100000


@dataclass
class Order:
    key: str
    bc: str
    lines: list[tuple[str, int]]  # (sku, quantity)
    stage: str
    documents: list[tuple[int, str]] = field(default_factory=list)
    visible: bool = True  # False when its only document is a grouped invoice carrying another order's key


@dataclass
class Built:
    orders: list[Order]
    header_rows: int
    line_rows: int
    t0: datetime


class _Writer:
    """Buffers rows and inserts them in batches."""

    def __init__(self, conn, table: Table):
        self.conn, self.table, self.rows, self.count = conn, table, [], 0

    def add(self, row: dict) -> None:
        self.rows.append(row)
        if len(self.rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.conn.execute(insert(self.table), self.rows)
            self.count += len(self.rows)
            self.rows = []


def _tables(engine: Engine) -> tuple[Table, Table]:
    metadata = MetaData()
    return Table("F_DOCENTETE", metadata, autoload_with=engine), Table("F_DOCLIGNE", metadata, autoload_with=engine)


def _tracking(rng: random.Random) -> str:
    return "6A" + "".join(rng.choice("0123456789") for _ in range(11))


def build(engine: Engine, orders: int, *, lines_per_order: int = 5, seed: int = 1, t0: datetime | None = None) -> Built:
    """N web orders in the states they have at T0 (an hour ago by default); other sales documents too."""
    rng = random.Random(seed)
    create_gescom(engine)
    header, line = _tables(engine)
    t0 = t0 or datetime.now().replace(microsecond=0) - timedelta(hours=1)
    result: list[Order] = []
    number = {"BL": 0, "PL": 0, "FA": 0}
    line_no = [0]

    def piece(prefix: str) -> str:
        number[prefix] += 1
        return f"{prefix}{number[prefix]:07d}"

    with engine.begin() as conn:
        headers, lines = _Writer(conn, header), _Writer(conn, line)

        header_defaults = {"DO_Coord01": "", "DO_Reliquat": 0}
        line_defaults = {"DL_PieceBC": "", "DL_PieceBL": "", "DL_NoColis": ""}

        def add_header(doc_type: int, doc_piece: str, key: str, when: datetime, **extra) -> None:
            headers.add({**header_defaults, "DO_Domaine": 0, "DO_Type": doc_type, "DO_Piece": doc_piece, "DO_Date": when.replace(hour=0, minute=0, second=0),
                         "DO_NoWeb": key, "DO_Ref": f"REF{key}"[:17], "DO_Tiers": "CWEB", "DO_Expedit": 2, "cbModification": when, **extra})

        def add_line(doc_type: int, doc_piece: str, sku: str, qty: int, when: datetime, reference: str = "", **extra) -> None:
            line_no[0] += 1
            lines.add({**line_defaults, "DO_Domaine": 0, "DO_Type": doc_type, "DO_Piece": doc_piece, "AR_Ref": sku, "DL_Design": f"Article {sku}",
                       "DL_Qte": qty, "DL_QteBC": qty, "DL_Ligne": line_no[0] % 100000, "DL_No": line_no[0], "DO_Ref": reference,
                       "cbModification": when, **extra})

        pending_group: Order | None = None
        for index in range(orders):
            key = str(FIRST_KEY + index)
            when = t0 - timedelta(days=60) + timedelta(seconds=index * (60 * 86400 / max(orders, 1)))
            count = max(1, min(9, int(rng.gauss(lines_per_order, 2))))
            order_lines = [(rng.choice(SKUS), rng.choice((1, 1, 2, 3))) for _ in range(count)]
            order = Order(key=key, bc=f"BC{index + 1:07d}", lines=order_lines, stage="")
            roll = rng.random()
            if roll < 0.50:  # history: delivered and invoiced long ago (posted for most), sometimes grouped
                bl = piece("BL")
                if pending_group is not None and rng.random() < 0.3:
                    fa, group_key = pending_group.documents[0][1], pending_group.key
                    pending_group = None
                    order.visible = False
                else:
                    fa, group_key = piece("FA"), key
                    add_header(7 if roll < 0.42 else 6, fa, group_key, when)
                    pending_group = order
                for sku, qty in order_lines:  # each line keeps its own order's reference (Sage copies DO_Ref to lines)
                    add_line(7 if roll < 0.42 else 6, fa, sku, qty, when, reference=f"REF{key}"[:17], DL_PieceBC=order.bc, DL_PieceBL=bl, DL_NoColis=_tracking(rng))
                order.stage, order.documents = "invoiced", [(7 if roll < 0.42 else 6, fa)]
            elif roll < 0.65:  # shipped: the BC is gone, the BL carries the tracking number in Entête 1
                bl = piece("BL")
                add_header(3, bl, key, when, DO_Coord01=_tracking(rng))
                for sku, qty in order_lines:
                    add_line(3, bl, sku, qty, when, DL_PieceBC=order.bc)
                order.stage, order.documents = "shipped", [(3, bl)]
            elif roll < 0.75:  # partly shipped: a reliquat stays in the BC (so at least two lines)
                if len(order_lines) < 2:
                    order_lines.append((rng.choice(SKUS), 1))
                bl = piece("BL")
                add_header(1, order.bc, key, when, DO_Reliquat=1)
                add_header(3, bl, key, when, DO_Coord01=_tracking(rng))
                for position, (sku, qty) in enumerate(order_lines):
                    if position % 2:
                        add_line(1, order.bc, sku, qty, when)
                    else:
                        add_line(3, bl, sku, qty, when, DL_PieceBC=order.bc)
                order.stage, order.documents = "partially_shipped", [(1, order.bc), (3, bl)]
            elif roll < 0.85:  # in preparation
                pl = piece("PL")
                add_header(2, pl, key, when)
                for sku, qty in order_lines:
                    add_line(2, pl, sku, qty, when, DL_PieceBC=order.bc)
                order.stage, order.documents = "in_preparation", [(2, pl)]
            else:  # just imported
                add_header(1, order.bc, key, when)
                for sku, qty in order_lines:
                    add_line(1, order.bc, sku, qty, when)
                order.stage, order.documents = "ordered", [(1, order.bc)]
            result.append(order)
        # Sales documents that are not web orders (counter sales): the middleware must ignore them.
        for index in range(max(10, orders // 20)):
            bl = piece("BL")
            add_header(3, bl, "", t0 - timedelta(days=1))
            add_line(3, bl, rng.choice(SKUS), 1, t0 - timedelta(days=1))
        headers.flush()
        lines.flush()
    _analyze(engine)
    return Built(orders=result, header_rows=headers.count, line_rows=lines.count, t0=t0)


def change(engine: Engine, built: Built, count: int, *, seed: int = 2, when: datetime | None = None) -> list[str]:
    """Transform `count` open orders as a warehouse would after T0; returns their keys."""
    rng = random.Random(seed)
    header, line = _tables(engine)
    when = when or datetime.now().replace(second=0, microsecond=0)
    open_orders = [o for o in built.orders if o.stage in ("ordered", "in_preparation", "partially_shipped", "shipped")]
    posted_candidates = [o for o in built.orders if o.stage == "invoiced" and o.documents[0][0] == 6]
    chosen = rng.sample(open_orders, min(count, len(open_orders)))
    extra = count - len(chosen)
    chosen += posted_candidates[:max(0, extra)]
    serial = [0]

    def new_piece(prefix: str) -> str:
        serial[0] += 1
        return f"{prefix}9{serial[0]:06d}"

    new_headers, line_moves, deleted_headers, postings, noc = [], [], [], [], []
    grouped: list[tuple[Order, str]] = []
    for order in chosen:
        if order.stage == "invoiced":
            postings.append(order.documents[0][1])
            continue
        if order.stage == "shipped":
            source = order.documents[0]
            if grouped and rng.random() < 0.3:  # invoiced together with the previous one
                fa = grouped[-1][1]
            else:
                fa = new_piece("FA")
                new_headers.append({"DO_Type": 6, "DO_Piece": fa, "DO_NoWeb": order.key})
                grouped.append((order, fa))
            line_moves.append({"ft": source[0], "fp": source[1], "tt": 6, "tp": fa, "bl": source[1]})
            deleted_headers.append(source)
            continue
        bl = new_piece("BL")
        with_header_tracking = rng.random() < 0.7
        new_headers.append({"DO_Type": 3, "DO_Piece": bl, "DO_NoWeb": order.key, "DO_Coord01": _tracking(rng) if with_header_tracking else ""})
        for doc_type, doc_piece in order.documents:
            if doc_type in (1, 2):
                line_moves.append({"ft": doc_type, "fp": doc_piece, "tt": 3, "tp": bl, "bl": ""})
                deleted_headers.append((doc_type, doc_piece))
        if not with_header_tracking:
            noc.append({"p": bl, "n": _tracking(rng)})
    with engine.begin() as conn:
        if new_headers:
            conn.execute(insert(header), [
                {"DO_Domaine": 0, "DO_Date": when, "DO_Tiers": "CWEB", "DO_Expedit": 2, "cbModification": when, "DO_Coord01": "", **row}
                for row in new_headers
            ])
        # Rows are found the way Sage finds them, through the shadow column cbDO_Piece (IDO_TPIECE, IDL_PIECE):
        # the demo computes it as the piece's UTF-8 bytes. A predicate on DO_Piece itself would scan.
        if line_moves:
            conn.execute(
                update(line).where(line.c.DO_Domaine == 0, line.c.DO_Type == bindparam("ft"), line.c.cbDO_Piece == bindparam("fp"))
                .values(DO_Type=bindparam("tt"), DO_Piece=bindparam("tp"), DL_PieceBL=bindparam("bl"), cbModification=when),
                [{**move, "fp": move["fp"].encode()} for move in line_moves],
            )
        if noc:
            conn.execute(
                update(line).where(line.c.DO_Domaine == 0, line.c.DO_Type == 3, line.c.cbDO_Piece == bindparam("p")).values(DL_NoColis=bindparam("n")),
                [{**row, "p": row["p"].encode()} for row in noc],
            )
        if deleted_headers:
            conn.execute(delete(header).where(header.c.DO_Domaine == 0, header.c.DO_Type == bindparam("t"), header.c.cbDO_Piece == bindparam("p")),
                         [{"t": t, "p": p.encode()} for t, p in deleted_headers])
        if postings:
            for table in (header, line):
                conn.execute(
                    update(table).where(table.c.DO_Domaine == 0, table.c.DO_Type == 6, table.c.cbDO_Piece == bindparam("p")).values(DO_Type=7, cbModification=when),
                    [{"p": p.encode()} for p in postings],
                )
    _analyze(engine)
    return [order.key for order in chosen]


def _analyze(engine: Engine) -> None:
    """Planner statistics, as SQL Server keeps them for a real Sage base: without them SQLite may walk
    IDO_TPIECE (DO_Domaine first, the same for every row) instead of the selective index."""
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
