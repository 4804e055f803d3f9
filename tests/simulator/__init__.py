"""A faithful, stateful PrestaShop webservice simulator for tests and demos (see server.py).

    sim = ShopSimulator(version="8.1.5", key="A" * 32).start()
    sim.add_order(1001)
    ... point the middleware at sim.url ...
    sim.stop()

Simulator choices where the PrestaShop reference is silent (each also commented in server.py):

* a 32-character key that is not the shop's key answers 401 code 20 (unknown = inactive);
* `POST order_histories` / `POST messages` for an unknown order (or state) answer 400 code 85;
* a resource or a method the simulator does not model (products, DELETE, PUT orders, ...) answers 501
  code 124 once the key is allowed to use it;
* orders are restricted to the shop context (`id_shop`, default shop 1) in lists and details;
* a change to an order_carriers row or a new message moves the order's `date_upd`;
* `add_order` logs no mail (the order confirmation is outside the sync);
* `date_add`/`date_upd` filters or sorts without `date=1` answer 400 code 32 / 38, as the core does
  (those fields are then simply not among the available filters);
* faults: see ShopSimulator.fail_next.
"""
from .server import CHAOS_KINDS, FAULT_KINDS, REALM, ShopSimulator, WsError

__all__ = ["ShopSimulator", "FAULT_KINDS", "CHAOS_KINDS", "REALM", "WsError"]
