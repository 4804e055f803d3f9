"""What a resource module tells the generic webservice (reads.py, writes.py) about its resource: where its rows
are and what is special in reading or writing them. Every callable takes the simulator as its first argument."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Hooks:
    rows: Callable[..., Iterable[dict]]  # (shop) -> the table's rows
    # (shop, ctx, existing row or None, object as PHP filled it) -> the row saved; None: read-only resource
    save: Callable[..., dict] | None = None
    getters: dict[str, Callable[..., object]] = field(default_factory=dict)  # virtual field -> (shop, row) -> value
    setters: dict[str, Callable[..., None]] = field(default_factory=dict)  # field with a setter -> (shop, row or None, text)
    associations: dict[str, Callable[..., list[dict]]] = field(default_factory=dict)  # name -> (shop, row) -> items
    in_context_shop: bool = False  # lists and details hold only the rows of the request's shop (id_shop)
    stored_order: bool = False  # listed in the order the rows were stored, not by id


def missing_hooks(hooks: dict[str, Hooks], resources: dict) -> list[str]:
    """What a resource definition (shopdata.RESOURCES) needs and its module does not give, as readable lines."""
    missing = []
    for name, res in resources.items():
        found = hooks.get(name)
        if found is None:
            missing.append(f"{name}: no module registers it")
            continue
        if res.methods - {"GET", "HEAD"} and found.save is None:
            missing.append(f"{name}: writable but no save")
        missing += [f"{name}.{f.name}: no getter" for f in res.fields if f.getter and f.name not in found.getters]
        missing += [f"{name}.{f.name}: no setter" for f in res.fields if f.setter and f.name not in found.setters]
        missing += [f"{name}.{a.name}: no association" for a in res.associations if a.name not in found.associations]
    return missing
