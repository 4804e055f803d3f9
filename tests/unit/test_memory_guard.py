"""A shop order's memory changes only through the core's rules: no module but the mapping (sync/store/memory.py)
writes a memory column of `ShopOrder`. Read from the code itself, with `ast`."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

from models import ShopOrder
from sync.core.memory import OrderMemory

ROOT = Path(__file__).resolve().parents[2]
MAPPING = Path("sync/store/memory.py")
# Tests fabricate stored rows to start from; they change no one's memory.
NOT_READ = {"tests", ".venv", ".git"}
# The benchmark generator's own `Order` records (what it built in GesCom) have a `stage` too; no ShopOrder there.
NOT_SHOP_ORDERS = {Path("benchmarks/generate.py")}
# The columns of ShopOrder that hold an OrderMemory: one per field, of the same name.
MEMORY_COLUMNS = {item.name for item in fields(OrderMemory)}


def _targets(node: ast.AST):
    if isinstance(node, (ast.Tuple, ast.List)):
        for element in node.elts:
            yield from _targets(element)
    elif isinstance(node, ast.Starred):
        yield from _targets(node.value)
    else:
        yield node


def _callee(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def violations(source: str, where: str = "<source>") -> list[str]:
    """Each write of a memory column in `source`: `x.stage = …` (also in tuple targets), `x.state_rank += …`,
    `setattr(x, "stage", …)` and `ShopOrder(stage=…)`."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        written: list[str] = []
        if isinstance(node, ast.Assign):
            written = [t.attr for target in node.targets for t in _targets(target) if isinstance(t, ast.Attribute)]
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and isinstance(node.target, ast.Attribute):
            written = [node.target.attr]
        elif isinstance(node, ast.Call) and _callee(node) == "ShopOrder":
            written = [keyword.arg for keyword in node.keywords if keyword.arg]
        elif isinstance(node, ast.Call) and _callee(node) == "setattr" and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
            written = [node.args[1].value]
        found += [(node.lineno, f"{where}:{node.lineno} writes {name}") for name in written if name in MEMORY_COLUMNS]
    return [line for _, line in sorted(found, key=lambda item: item[0])]


def _sources():
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if relative.parts[0] not in NOT_READ and relative != MAPPING and relative not in NOT_SHOP_ORDERS:
            yield relative, path.read_text(encoding="utf-8")


def test_the_memory_columns_are_the_order_memory():
    assert MEMORY_COLUMNS.issubset(ShopOrder.__table__.columns.keys())
    assert MEMORY_COLUMNS.issuperset({"stage", "states_sent", "documents", "shop_tracking_seen", "messages_sent"})


def test_only_the_mapping_writes_a_shop_orders_memory():
    found = [line for relative, source in _sources() for line in violations(source, str(relative))]
    assert found == [], "change the memory through sync/core/memory.py and sync/store/memory.py:\n" + "\n".join(found)


def test_the_mapping_itself_is_seen_writing():
    """The guard reads what it should: the mapping writes every memory column, and is the only one allowed to."""
    written = {line.rsplit(" ", 1)[1] for line in violations((ROOT / MAPPING).read_text(encoding="utf-8"))}
    assert written == MEMORY_COLUMNS


def test_each_kind_of_write_is_caught():
    sample = """
order.stage = "shipped"
order.state_rank += 1
order.vanished_runs: int = 0
first.shop_tracking, (second.messages_sent, other) = "6A1", ([], 1)
setattr(order, "snapshot", {})
row = models.ShopOrder(order_key="4711", states_sent=[4], documents={})
order.updated_at = now  # not a memory column
run.status = "succeeded"
ShopCursor(value="1")
"""
    assert violations(sample) == [
        "<source>:2 writes stage",
        "<source>:3 writes state_rank",
        "<source>:4 writes vanished_runs",
        "<source>:5 writes shop_tracking",
        "<source>:5 writes messages_sent",
        "<source>:6 writes snapshot",
        "<source>:7 writes states_sent",
        "<source>:7 writes documents",
    ]
