"""The caller owns the transaction: no service commits. Read from the code itself, with `ast`.

Under sync/, api/ and cli.py a store transaction ends only through a unit of work (`uow.commit()`,
`uow.rollback()`), opened by the entry point. Allowed besides: the unit of work's own module; the short sessions
of their own (`own`) that leases and a key's last use are written in; ending a read on a GesCom connection
(`conn`, `scout`). sync/gescom/ keeps GesCom's own transactions (the guarded write) and cannot reach our store.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READ = ("sync", "api", "cli.py")
UNIT_OF_WORK = "sync/services/unit_of_work.py"
GESCOM = "sync/gescom"  # GesCom's transactions only: checked below never to import the store
# Leases, a key's last use, an Idempotency-Key's claim: written at once, apart.
OWN_SESSIONS = {"sync/store/locks.py", "sync/store/keys.py", "sync/store/idempotency.py"}
GESCOM_READS = {"conn", "scout"}  # GesCom connections whose read transaction a service ends between steps
ENDINGS = {"commit", "rollback", "begin"}  # `with session.begin():` commits at its end too


def _name(node: ast.AST) -> str:
    """The last name of an expression: `uow` for `uow`, `session` for `self.uow.session`."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ast.unparse(node)


def allowed(where: str, receiver: str, ending: str) -> bool:
    if receiver == "uow":
        return ending != "begin"
    if receiver == "own":
        return where in OWN_SESSIONS and ending == "commit"
    return receiver in GESCOM_READS and ending == "rollback"


def violations(source: str, where: str = "<source>") -> list[str]:
    """Each call in `source` that commits, rolls back or begins a transaction other than through a unit of work."""
    found = []
    for node in ast.walk(ast.parse(source)):
        ending = node.func.attr if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) else None
        if ending in ENDINGS and not allowed(where, _name(node.func.value), ending):
            found.append((node.lineno, f"{where}:{node.lineno} {ast.unparse(node.func)}()"))
    return [line for _, line in sorted(found)]


def _sources(exempt: tuple[str, ...] = (UNIT_OF_WORK, GESCOM)):
    for top in READ:
        paths = [ROOT / top] if top.endswith(".py") else sorted((ROOT / top).rglob("*.py"))
        for path in paths:
            relative = path.relative_to(ROOT).as_posix()
            if not relative.startswith(exempt):
                yield relative, path.read_text(encoding="utf-8")


def test_no_service_commits_and_entry_points_commit_through_their_unit_of_work():
    found = [line for relative, source in _sources() for line in violations(source, relative)]
    assert found == [], "end the transaction through the entry point's unit of work (uow.commit()):\n" + "\n".join(found)


def test_the_guard_reads_the_services():
    """It reads what it should: the run, the push and the shop poll commit their steps through the unit of work."""
    read = dict(_sources())
    for module in ("sync/services/runs.py", "sync/services/push.py", "sync/services/shop_poll.py"):
        assert "uow.commit()" in read[module]
    assert "api/resources.py" in read and "cli.py" in read and UNIT_OF_WORK not in read


def test_the_gescom_adapter_cannot_reach_our_store():
    """Its transactions are GesCom's: it imports neither our models nor the store's modules."""
    reached = []
    for path in sorted((ROOT / GESCOM).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            store = [name for name in names if name == "models" or name.startswith(("models.", "sync.store"))]
            reached += [f"{path.relative_to(ROOT)} imports {name}" for name in store]
    assert reached == []


def test_each_way_of_ending_a_transaction_is_caught():
    sample = """
def service(session, uow, conn, own, db, self):
    session.commit()
    db.session.rollback()
    self.session.commit()
    uow.session.commit()
    with session.begin():
        pass
    conn.commit()
    own.commit()
    uow.commit()
    uow.rollback()
    conn.rollback()
    scout.rollback()
    with session.begin_nested():
        pass
"""
    assert violations(sample) == [
        "<source>:3 session.commit()",
        "<source>:4 db.session.rollback()",
        "<source>:5 self.session.commit()",
        "<source>:6 uow.session.commit()",
        "<source>:7 session.begin()",
        "<source>:9 conn.commit()",
        "<source>:10 own.commit()",
    ]
    assert violations("own.commit()", "sync/store/locks.py") == []
    assert violations("own.rollback()", "sync/store/locks.py") == ["sync/store/locks.py:1 own.rollback()"]
