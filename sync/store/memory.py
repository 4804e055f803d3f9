"""The one mapping between a stored shop order and what we remember of it (`OrderMemory`).

Only this module writes the memory columns of `ShopOrder` (a test parses the code to hold it to that): services
load the memory, call a rule of sync/core/memory.py, and save the result.
"""

from __future__ import annotations

from collections.abc import Callable

from models import ShopOrder
from sync.core.memory import OrderMemory


def load_memory(order: ShopOrder | None) -> OrderMemory:
    """What we remember of this shop order (nothing yet for one not stored); a row of the shop_orders table does too."""
    if order is None:
        return OrderMemory()
    return OrderMemory(
        stage=order.stage,
        current_stage=order.current_stage,
        state_rank=order.state_rank,
        states_sent=tuple(order.states_sent or ()),
        snapshot=dict(order.snapshot or {}),
        documents=dict(order.documents or {}),
        vanished_runs=order.vanished_runs,
        is_open=order.is_open,
        shop_state_id=order.shop_state_id,
        shop_id_order=order.shop_id_order,
        shop_state_pushed=order.shop_state_pushed,
        shop_tracking=order.shop_tracking,
        shop_tracking_seen=order.shop_tracking_seen,
        messages_sent=tuple(order.messages_sent or ()),
    )


def memory_values(memory: OrderMemory) -> dict:
    """The `ShopOrder` columns holding `memory`, by name, for a bulk write (the same mapping as `save_memory`)."""
    return {
        "stage": memory.stage,
        "current_stage": memory.current_stage,
        "state_rank": memory.state_rank,
        "states_sent": list(memory.states_sent),
        "snapshot": memory.snapshot,
        "documents": memory.documents,
        "vanished_runs": memory.vanished_runs,
        "is_open": memory.is_open,
        "shop_state_id": memory.shop_state_id,
        "shop_id_order": memory.shop_id_order,
        "shop_state_pushed": memory.shop_state_pushed,
        "shop_tracking": memory.shop_tracking,
        "shop_tracking_seen": memory.shop_tracking_seen,
        "messages_sent": list(memory.messages_sent),
    }


def save_memory(order: ShopOrder, memory: OrderMemory) -> None:
    """Store `memory` on the shop order (columns whose value is unchanged are not written)."""
    order.stage = memory.stage
    order.current_stage = memory.current_stage
    order.state_rank = memory.state_rank
    order.states_sent = list(memory.states_sent)
    order.snapshot = memory.snapshot
    order.documents = memory.documents
    order.vanished_runs = memory.vanished_runs
    order.is_open = memory.is_open
    order.shop_state_id = memory.shop_state_id
    order.shop_id_order = memory.shop_id_order
    order.shop_state_pushed = memory.shop_state_pushed
    order.shop_tracking = memory.shop_tracking
    order.shop_tracking_seen = memory.shop_tracking_seen
    order.messages_sent = list(memory.messages_sent)


def change_memory(order: ShopOrder, rule: Callable[..., OrderMemory], *args) -> OrderMemory:
    """Load the order's memory, apply one rule of sync/core/memory.py to it, save the result; returns it."""
    memory = rule(load_memory(order), *args)
    save_memory(order, memory)
    return memory
