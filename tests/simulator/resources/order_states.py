"""Order states (class OrderState), read-only over the webservice (§3.4). What a real 8.1.2 shop does with them:

* lists them in the order they were stored, not by id: 2..17, then 1 and 10 (recorded: order_states_full_json);
  the names of core states are English, those added by modules French (README);
* their flags drive a state change (order_histories.py): invoice, logable, paid, delivery, and send_email with a
  template per language, an empty template meaning no mail even with send_email=1 (§3.4);
* native state ids are kept in configuration keys (PS_OS_SHIPPING = 4, recorded:
  configuration_ps_os_shipping_json), which add_state fills for `config_key`.
"""

from __future__ import annotations

from .registry import Hooks


class OrderStates:
    def _add_native_state(
        self, state_id, keys, english, french, template, invoice, send_email, logable, delivery, shipped, paid, pdf_invoice, module, color
    ):
        self.add_state(
            {1: english, 2: french},
            id=state_id,
            config_key=list(keys),
            template=template,
            invoice=invoice,
            send_email=send_email,
            logable=logable,
            delivery=delivery,
            shipped=shipped,
            paid=paid,
            pdf_invoice=pdf_invoice,
            module_name=module,
            color=color,
            unremovable=1,
        )

    def add_state(
        self,
        name,
        *,
        id: int | None = None,
        template="",
        send_email=0,
        logable=0,
        invoice=0,
        delivery=0,
        shipped=0,
        paid=0,
        pdf_invoice=0,
        pdf_delivery=0,
        hidden=0,
        deleted=0,
        unremovable=0,
        module_name="",
        color="#3498D8",
        config_key=None,
    ) -> dict:
        """A custom (or native) order state. `name`/`template`: one string, or a dict per language id."""
        with self.lock:
            state_id = id if id is not None else max(self.states, default=0) + 1
            state = {
                "id": state_id,
                "unremovable": int(unremovable),
                "delivery": int(delivery),
                "hidden": int(hidden),
                "send_email": int(send_email),
                "module_name": module_name,
                "invoice": int(invoice),
                "color": color,
                "logable": int(logable),
                "shipped": int(shipped),
                "paid": int(paid),
                "pdf_delivery": int(pdf_delivery),
                "pdf_invoice": int(pdf_invoice),
                "deleted": int(deleted),
                "name": self._ml(name),
                "template": self._ml(template),
            }
            self.states[state_id] = state
            for key in [config_key] if isinstance(config_key, str) else config_key or []:
                self.configuration[key] = str(state_id)
            return state


# Stored order: the recorded shop does not sort them (order_states_full_json).
HOOKS = {"order_states": Hooks(rows=lambda shop: shop.states.values(), stored_order=True)}
