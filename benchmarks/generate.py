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


class _Sage:
    """Writes one base's headers and lines in batches, numbering pieces and lines as Sage would."""

    HEADER_DEFAULTS = {"DO_Coord01": "", "DO_Reliquat": 0}
    LINE_DEFAULTS = {"DL_PieceBC": "", "DL_PieceBL": "", "DL_NoColis": ""}

    def __init__(self, conn, header: Table, line: Table):
        self.headers, self.lines = _Writer(conn, header), _Writer(conn, line)
        self.number = {"BL": 0, "PL": 0, "FA": 0}
        self.line_no = 0

    def piece(self, prefix: str) -> str:
        self.number[prefix] += 1
        return f"{prefix}{self.number[prefix]:07d}"

    def header(self, doc_type: int, doc_piece: str, key: str, when: datetime, **extra) -> None:
        self.headers.add(
            {
                **self.HEADER_DEFAULTS,
                "DO_Domaine": 0,
                "DO_Type": doc_type,
                "DO_Piece": doc_piece,
                "DO_Date": when.replace(hour=0, minute=0, second=0),
                "DO_NoWeb": key,
                "DO_Ref": f"REF{key}"[:17],
                "DO_Tiers": "CWEB",
                "DO_Expedit": 2,
                "cbModification": when,
                **extra,
            }
        )

    def line(self, doc_type: int, doc_piece: str, sku: str, qty: int, when: datetime, reference: str = "", **extra) -> None:
        self.line_no += 1
        self.lines.add(
            {
                **self.LINE_DEFAULTS,
                "DO_Domaine": 0,
                "DO_Type": doc_type,
                "DO_Piece": doc_piece,
                "AR_Ref": sku,
                "DL_Design": f"Article {sku}",
                "DL_Qte": qty,
                "DL_QteBC": qty,
                "DL_Ligne": self.line_no % 100000,
                "DL_No": self.line_no,
                "DO_Ref": reference,
                "cbModification": when,
                **extra,
            }
        )

    def flush(self) -> None:
        self.headers.flush()
        self.lines.flush()


def build(engine: Engine, orders: int, *, lines_per_order: int = 5, seed: int = 1, t0: datetime | None = None) -> Built:
    """N web orders in the states they have at T0 (an hour ago by default); other sales documents too."""
    rng = random.Random(seed)
    create_gescom(engine)
    t0 = t0 or datetime.now().replace(microsecond=0) - timedelta(hours=1)
    result: list[Order] = []
    with engine.begin() as conn:
        sage = _Sage(conn, *_tables(engine))
        pending_group: Order | None = None  # the last invoice's order, which the next one may join
        for index in range(orders):
            when = t0 - timedelta(days=60) + timedelta(seconds=index * (60 * 86400 / max(orders, 1)))
            count = max(1, min(9, int(rng.gauss(lines_per_order, 2))))
            order_lines = [(rng.choice(SKUS), rng.choice((1, 1, 2, 3))) for _ in range(count)]
            order = Order(key=str(FIRST_KEY + index), bc=f"BC{index + 1:07d}", lines=order_lines, stage="")
            roll = rng.random()
            if roll < 0.50:
                pending_group = _history(sage, rng, order, when, 7 if roll < 0.42 else 6, pending_group)
            else:
                stage = "shipped" if roll < 0.65 else "partially_shipped" if roll < 0.75 else "in_preparation" if roll < 0.85 else "ordered"
                AT_STAGE[stage](sage, rng, order, when)
            result.append(order)
        # Sales documents that are not web orders (counter sales): the middleware must ignore them.
        for _ in range(max(10, orders // 20)):
            bl = sage.piece("BL")
            sage.header(3, bl, "", t0 - timedelta(days=1))
            sage.line(3, bl, rng.choice(SKUS), 1, t0 - timedelta(days=1))
        sage.flush()
    _analyze(engine)
    return Built(orders=result, header_rows=sage.headers.count, line_rows=sage.lines.count, t0=t0)


def _history(sage: _Sage, rng: random.Random, order: Order, when: datetime, doc_type: int, pending_group: Order | None) -> Order | None:
    """Delivered and invoiced long ago (posted for most: doc_type 7), sometimes on the previous order's invoice.
    Returns the order whose invoice the next one may join."""
    bl = sage.piece("BL")
    if pending_group is not None and rng.random() < 0.3:
        fa, group_key = pending_group.documents[0][1], pending_group.key
        pending_group = None
        order.visible = False
    else:
        fa, group_key = sage.piece("FA"), order.key
        sage.header(doc_type, fa, group_key, when)
        pending_group = order
    for sku, qty in order.lines:  # each line keeps its own order's reference (Sage copies DO_Ref to lines)
        sage.line(doc_type, fa, sku, qty, when, reference=f"REF{order.key}"[:17], DL_PieceBC=order.bc, DL_PieceBL=bl, DL_NoColis=_tracking(rng))
    order.stage, order.documents = "invoiced", [(doc_type, fa)]
    return pending_group


def _shipped(sage: _Sage, rng: random.Random, order: Order, when: datetime) -> None:
    """The BC is gone, the BL carries the tracking number in Entête 1."""
    bl = sage.piece("BL")
    sage.header(3, bl, order.key, when, DO_Coord01=_tracking(rng))
    for sku, qty in order.lines:
        sage.line(3, bl, sku, qty, when, DL_PieceBC=order.bc)
    order.stage, order.documents = "shipped", [(3, bl)]


def _partially_shipped(sage: _Sage, rng: random.Random, order: Order, when: datetime) -> None:
    """A reliquat stays in the BC (so at least two lines): odd lines stay, even lines are on the BL."""
    if len(order.lines) < 2:
        order.lines.append((rng.choice(SKUS), 1))
    bl = sage.piece("BL")
    sage.header(1, order.bc, order.key, when, DO_Reliquat=1)
    sage.header(3, bl, order.key, when, DO_Coord01=_tracking(rng))
    for position, (sku, qty) in enumerate(order.lines):
        if position % 2:
            sage.line(1, order.bc, sku, qty, when)
        else:
            sage.line(3, bl, sku, qty, when, DL_PieceBC=order.bc)
    order.stage, order.documents = "partially_shipped", [(1, order.bc), (3, bl)]


def _in_preparation(sage: _Sage, rng: random.Random, order: Order, when: datetime) -> None:
    pl = sage.piece("PL")
    sage.header(2, pl, order.key, when)
    for sku, qty in order.lines:
        sage.line(2, pl, sku, qty, when, DL_PieceBC=order.bc)
    order.stage, order.documents = "in_preparation", [(2, pl)]


def _ordered(sage: _Sage, rng: random.Random, order: Order, when: datetime) -> None:
    """Just imported: the BC alone."""
    sage.header(1, order.bc, order.key, when)
    for sku, qty in order.lines:
        sage.line(1, order.bc, sku, qty, when)
    order.stage, order.documents = "ordered", [(1, order.bc)]


AT_STAGE = {"shipped": _shipped, "partially_shipped": _partially_shipped, "in_preparation": _in_preparation, "ordered": _ordered}


@dataclass
class _Changes:
    """What the warehouse did after T0, as rows to write."""

    new_headers: list[dict] = field(default_factory=list)
    line_moves: list[dict] = field(default_factory=list)  # lines moved from one document to another
    deleted_headers: list[tuple[int, str]] = field(default_factory=list)
    postings: list[str] = field(default_factory=list)  # invoices posted
    colis: list[dict] = field(default_factory=list)  # tracking numbers typed in the lines' N° colis


def change(engine: Engine, built: Built, count: int, *, seed: int = 2, when: datetime | None = None) -> list[str]:
    """Transform `count` open orders as a warehouse would after T0; returns their keys."""
    rng = random.Random(seed)
    header, line = _tables(engine)
    when = when or datetime.now().replace(second=0, microsecond=0)
    open_orders = [o for o in built.orders if o.stage in ("ordered", "in_preparation", "partially_shipped", "shipped")]
    posted_candidates = [o for o in built.orders if o.stage == "invoiced" and o.documents[0][0] == 6]
    chosen = rng.sample(open_orders, min(count, len(open_orders)))
    extra = count - len(chosen)
    chosen += posted_candidates[: max(0, extra)]
    changes = _warehouse_moves(chosen, rng)
    with engine.begin() as conn:
        _write_changes(conn, header, line, changes, when)
    _analyze(engine)
    return [order.key for order in chosen]


def _warehouse_moves(chosen: list[Order], rng: random.Random) -> _Changes:
    """Post the invoices, invoice the shipped orders (sometimes two on one invoice), ship the others in full."""
    changes = _Changes()
    serial = [0]

    def new_piece(prefix: str) -> str:
        serial[0] += 1
        return f"{prefix}9{serial[0]:06d}"

    grouped: list[tuple[Order, str]] = []
    for order in chosen:
        if order.stage == "invoiced":
            changes.postings.append(order.documents[0][1])
            continue
        if order.stage == "shipped":
            source = order.documents[0]
            if grouped and rng.random() < 0.3:  # invoiced together with the previous one
                fa = grouped[-1][1]
            else:
                fa = new_piece("FA")
                changes.new_headers.append({"DO_Type": 6, "DO_Piece": fa, "DO_NoWeb": order.key})
                grouped.append((order, fa))
            changes.line_moves.append({"ft": source[0], "fp": source[1], "tt": 6, "tp": fa, "bl": source[1]})
            changes.deleted_headers.append(source)
            continue
        bl = new_piece("BL")
        with_header_tracking = rng.random() < 0.7
        changes.new_headers.append(
            {"DO_Type": 3, "DO_Piece": bl, "DO_NoWeb": order.key, "DO_Coord01": _tracking(rng) if with_header_tracking else ""}
        )
        for doc_type, doc_piece in order.documents:
            if doc_type in (1, 2):
                changes.line_moves.append({"ft": doc_type, "fp": doc_piece, "tt": 3, "tp": bl, "bl": ""})
                changes.deleted_headers.append((doc_type, doc_piece))
        if not with_header_tracking:
            changes.colis.append({"p": bl, "n": _tracking(rng)})
    return changes


def _write_changes(conn, header: Table, line: Table, changes: _Changes, when: datetime) -> None:
    if changes.new_headers:
        conn.execute(
            insert(header),
            [
                {"DO_Domaine": 0, "DO_Date": when, "DO_Tiers": "CWEB", "DO_Expedit": 2, "cbModification": when, "DO_Coord01": "", **row}
                for row in changes.new_headers
            ],
        )
    # Rows are found the way Sage finds them, through the shadow column cbDO_Piece (IDO_TPIECE, IDL_PIECE):
    # the demo computes it as the piece's UTF-8 bytes. A predicate on DO_Piece itself would scan.
    if changes.line_moves:
        conn.execute(
            update(line)
            .where(line.c.DO_Domaine == 0, line.c.DO_Type == bindparam("ft"), line.c.cbDO_Piece == bindparam("fp"))
            .values(DO_Type=bindparam("tt"), DO_Piece=bindparam("tp"), DL_PieceBL=bindparam("bl"), cbModification=when),
            [{**move, "fp": move["fp"].encode()} for move in changes.line_moves],
        )
    if changes.colis:
        conn.execute(
            update(line).where(line.c.DO_Domaine == 0, line.c.DO_Type == 3, line.c.cbDO_Piece == bindparam("p")).values(DL_NoColis=bindparam("n")),
            [{**row, "p": row["p"].encode()} for row in changes.colis],
        )
    if changes.deleted_headers:
        conn.execute(
            delete(header).where(header.c.DO_Domaine == 0, header.c.DO_Type == bindparam("t"), header.c.cbDO_Piece == bindparam("p")),
            [{"t": t, "p": p.encode()} for t, p in changes.deleted_headers],
        )
    for table in (header, line) if changes.postings else ():
        conn.execute(
            update(table)
            .where(table.c.DO_Domaine == 0, table.c.DO_Type == 6, table.c.cbDO_Piece == bindparam("p"))
            .values(DO_Type=7, cbModification=when),
            [{"p": p.encode()} for p in changes.postings],
        )


def _analyze(engine: Engine) -> None:
    """Planner statistics, as SQL Server keeps them for a real Sage base: without them SQLite may walk
    IDO_TPIECE (DO_Domaine first, the same for every row) instead of the selective index."""
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
