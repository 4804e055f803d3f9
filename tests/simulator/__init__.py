"""A faithful, stateful PrestaShop webservice simulator for tests and demos (see server.py).

    sim = ShopSimulator(version="8.1.5", key="A" * 32).start()
    sim.add_order(1001)
    ... point the middleware at sim.url ...
    sim.stop()

    sim = ShopSimulator.recorded_8_1_2(key=...).start()   # the shop the 8.1.2 recording starts from

It is checked against a real PrestaShop 8.1.2 by tests/integration/test_simulator_conformance.py, which replays
recordings/prestashop-8.1.2/transcripts.jsonl. Simulator choices where neither the recording nor the PrestaShop
reference says (each also commented where it is made):

* a resource or a write the simulator does not model (products, DELETE, PUT orders, ...) answers 501
  code 124 once the key is allowed to use it;
* orders are restricted to the shop context (`id_shop`, default shop 1) in lists and details;
* `POST messages` for an unknown order answers 400 code 85;
* `add_order` logs no mail (the order confirmation is outside the sync);
* faults: see ShopSimulator.fail_next, redirect_to_https, waf_block.
"""

from .server import CHAOS_KINDS, FAULT_KINDS, REALM, ShopSimulator, WsError

__all__ = ["ShopSimulator", "FAULT_KINDS", "CHAOS_KINDS", "REALM", "WsError"]
