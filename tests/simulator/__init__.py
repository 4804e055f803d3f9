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
* multistore: `add_order(..., id_shop=n)` adds shop n; each logged request says the `id_shop` it carried
  (`requests[i]["id_shop"]`, None when absent). An `id_shop` that is no number answers 404 code 999 (§2.4); a
  number that is no shop of the installation answers 403 code 132, as the core does (shopExists lets any number
  through, then shopHasRight finds no webservice_account_shop row for it), and so does a shop the key is not
  enabled on (`key_shops`);
* `POST messages` for an unknown order answers 400 code 85;
* `add_order` logs no mail (the order confirmation is outside the sync);
* faults: see ShopSimulator.fail_next, redirect_to_https, waf_block.
"""

from .server import CHAOS_KINDS, FAULT_KINDS, REALM, ShopSimulator, WsError

__all__ = ["ShopSimulator", "FAULT_KINDS", "CHAOS_KINDS", "REALM", "WsError"]
