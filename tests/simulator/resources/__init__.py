"""The shop's resources, one module each: what PrestaShop's class and back office do for that resource (its
webservice write, the back-office actions tests play, their mails and date_upd moves), with what a real 8.1.2
shop was seen doing in the module's docstring.

The generic webservice (reads.py, writes.py) finds a resource's rows and its special cases in HOOKS; each module's
mixin is part of the shop (ShopResources), so its back-office methods are ShopSimulator's.

What moves `orders.date_upd`, measured on 8.1.2 (date_upd.md) and kept for every version (the classes are the
same in 1.7 and 9.x, reference §3.2, §3.3): a state change (rows 1-3, order_histories.py) and a PATCH of the
order itself (row 8, orders.py) do; an order_carriers write (rows 5-7, order_carriers.py) and any message or
thread (rows 11-15: messages.py, customer_threads.py, customer_messages.py) do not.
"""

from __future__ import annotations

from ..shopdata import RESOURCES
from . import (
    carriers,
    configurations,
    customer_messages,
    customer_threads,
    customers,
    messages,
    order_carriers,
    order_histories,
    order_states,
    orders,
)
from .registry import Hooks, missing_hooks

HOOKS: dict[str, Hooks] = {
    name: hooks
    for module in (
        orders,
        order_carriers,
        order_histories,
        order_states,
        carriers,
        configurations,
        customers,
        messages,
        customer_threads,
        customer_messages,
    )
    for name, hooks in module.HOOKS.items()
}

if missing_hooks(HOOKS, RESOURCES):  # a resource added to shopdata.py without its module here
    raise ImportError("simulator resources without hooks: " + "; ".join(missing_hooks(HOOKS, RESOURCES)))


class ShopResources(
    orders.Orders,
    order_carriers.OrderCarriers,
    order_histories.OrderHistories,
    order_states.OrderStates,
    carriers.Carriers,
    configurations.Configurations,
    customers.Customers,
    messages.Messages,
    customer_threads.CustomerThreads,
    customer_messages.CustomerMessages,
):
    """Every resource's own behaviour, mixed into the shop."""


__all__ = ["HOOKS", "Hooks", "ShopResources"]
